"""A ModelScope stand-in: the three routes a model download needs, on 127.0.0.1.

Files come from memory or from a folder on disk (one sub-folder per repository)::

    ms = ModelScopeEndpoint().start()
    ms.add_repo("AI-ModelScope/sd15", {"v1-5.safetensors": weights})
    ms.add_folder(tmp / "repos")                 # tmp/repos/OWNER/NAME/** become repositories
    ms.file_url("AI-ModelScope/sd15", "v1-5.safetensors")      # the SDK's download URL
    ms.resolve_url("AI-ModelScope/sd15", "v1-5.safetensors")   # the /resolve/ URL
    ms.faults("AI-ModelScope/sd15", "v1-5.safetensors").status = 503
    ms.token = "secret"                          # from now on every route wants Authorization: Bearer secret

Routes, as modelscope 1.40 / modelscope-hub 0.5 call them (compat-and-mirrors.md, third check, item 10):

* ``GET/HEAD /api/v1/models/{owner}/{name}/repo?Revision=master&FilePath={path}`` -- the file's bytes (200,
  or 206 + ``Content-Range`` to a ``Range``), with the file's :class:`Faults` (shared with the route below).
* ``GET/HEAD /models/{owner}/{name}/resolve/master/{path}`` -- the same bytes (the anonymous route community
  installers use).
* ``GET /api/v1/models/{owner}/{name}/repo/files?Revision=master&Recursive=true`` -- the listing:
  ``{"Code": 200, "Success": true, "Message": "success", "Data": {"Files": [...]}}`` where each entry has
  ``Name``, ``Path``, ``Type`` ("blob" or "tree"), ``Size``, ``Sha256`` (blobs only), ``IsLFS`` and ``Revision``.
  Without ``Recursive=true`` only the top level is listed; ``Root=folder`` lists below a folder.

An unknown repository answers 404 with ``{"Code": 10010205001, "Success": false, "Message": ...}``; an unknown
file or revision 404 as well.  With ``token`` set, a request without ``Authorization: Bearer <token>`` gets 401
(JSON like the above).  Every revision other than ``master`` (and the repo's commit id) is unknown.
``requests`` (from LocalServer) records every request, ``bytes_served(prefix)`` what was sent.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.fileserver import Blob, BytesHandler, BytesServer, Faults, serve_bytes
from tests.support.httpbase import Handler

REVISION = "master"
LFS_FROM = 1 << 20  # files at least this large are listed with IsLFS: true (the real hub keeps weights in LFS)


@dataclass
class MsRepo:
    """One repository: path -> :class:`Blob` (ETag = the file's sha256)."""

    repo_id: str
    files: dict[str, Blob]
    commit: str = ""

    def __post_init__(self) -> None:
        if not self.commit:
            ids = "".join(f"{p}\0{b.etag}\0" for p, b in sorted(self.files.items()))
            self.commit = hashlib.sha1(f"{self.repo_id}\0{ids}".encode()).hexdigest()

    def has_revision(self, rev: str) -> bool:
        return rev in (REVISION, self.commit)

    def listing(self, root: str, recursive: bool) -> list[dict[str, Any]]:
        """The ``Data.Files`` entries below folder ``root`` ("" for the top)."""
        prefix = f"{root.strip('/')}/" if root.strip("/") else ""
        folders: set[str] = set()
        entries: list[dict[str, Any]] = []
        for path, blob in sorted(self.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/", 1)[0])
                continue
            parent = posixpath.dirname(path)
            while recursive and len(parent) > len(prefix.rstrip("/")):
                folders.add(parent)
                parent = posixpath.dirname(parent)
            entries.append({
                "Name": posixpath.basename(path), "Path": path, "Type": "blob", "Size": len(blob.data),
                "Sha256": hashlib.sha256(blob.data).hexdigest(), "IsLFS": len(blob.data) >= LFS_FROM,
                "Revision": self.commit,
            })  # fmt: skip
        dirs = [
            {
                "Name": posixpath.basename(d),
                "Path": d,
                "Type": "tree",
                "Size": 0,
                "IsLFS": False,
                "Revision": self.commit,
            }
            for d in sorted(folders)
        ]
        return dirs + entries


def _answer(handler: Handler, status: int, code: int, message: str, data: object = None) -> None:
    body: dict[str, Any] = {"Code": code, "Success": status == 200, "Message": message, "RequestId": "stand-in"}
    if data is not None:
        body["Data"] = data
    handler.reply(status, json.dumps(body).encode(), content_type="application/json")


class _MsHandler(BytesHandler):
    ROUTES = (
        (re.compile(r"/api/v1/models/([^/]+/[^/]+)/repo/files"), "files"),
        (re.compile(r"/api/v1/models/([^/]+/[^/]+)/repo"), "download"),
        (re.compile(r"/models/([^/]+/[^/]+)/resolve/([^/]+)/(.+)"), "resolve"),
    )

    @property
    def hub(self) -> ModelScopeEndpoint:
        server = self.owner
        assert isinstance(server, ModelScopeEndpoint)
        return server

    def route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        token = self.hub.token
        if token is not None and self.headers.get("Authorization", "") != f"Bearer {token}":
            _answer(self, 401, 401, "Unauthorized: a valid token is needed")
            return
        for pattern, name in self.ROUTES:
            if m := pattern.fullmatch(url.path):
                repo = self.hub.repos.get(unquote(m[1]))
                if repo is None:
                    _answer(self, 404, 10010205001, f"model {unquote(m[1])} not found")
                    return
                getattr(self, name)(repo, *(unquote(g) for g in m.groups()[1:]), query=query)
                return
        self.reply(404, b"404 Not Found\n", content_type="text/plain")

    def files(self, repo: MsRepo, *, query: dict[str, str]) -> None:
        rev = query.get("Revision", REVISION)
        if not repo.has_revision(rev):
            _answer(self, 404, 10010205001, f"revision {rev} not found")
            return
        recursive = query.get("Recursive", "").lower() == "true"
        _answer(self, 200, 200, "success", {"Files": repo.listing(query.get("Root", ""), recursive)})

    def download(self, repo: MsRepo, *, query: dict[str, str]) -> None:
        self._serve(repo, query.get("Revision", REVISION), query.get("FilePath", ""))

    def resolve(self, repo: MsRepo, rev: str, path: str, *, query: dict[str, str]) -> None:
        self._serve(repo, rev, path)

    def _serve(self, repo: MsRepo, rev: str, path: str) -> None:
        blob = repo.files.get(path.lstrip("/"))
        if not repo.has_revision(rev) or blob is None:
            _answer(self, 404, 10010205001, f"file {path} not found at {rev}")
            return
        serve_bytes(self, blob)


@dataclass
class ModelScopeEndpoint(BytesServer):
    """A running ModelScope stand-in; ``url`` is the endpoint (what ``MODELSCOPE_ENDPOINT`` would hold)."""

    handler: type[Handler] = _MsHandler
    repos: dict[str, MsRepo] = field(default_factory=dict)
    token: str | None = None  # when set, every route wants "Authorization: Bearer <token>"

    def add_repo(self, repo_id: str, files: Mapping[str, bytes]) -> MsRepo:
        """Publish repository ``owner/name`` with ``files`` (path -> bytes)."""
        if repo_id.count("/") != 1:
            raise ValueError(f"repo id must be owner/name: {repo_id!r}")
        blobs = {p.strip("/"): Blob(data, hashlib.sha256(data).hexdigest()) for p, data in files.items()}
        repo = MsRepo(repo_id, blobs)
        self.repos[repo_id] = repo
        return repo

    def add_folder(self, folder: Path) -> list[MsRepo]:
        """Publish every ``folder/OWNER/NAME`` as repository ``OWNER/NAME`` with the files below it."""
        added = []
        for repo_dir in sorted(p for p in folder.glob("*/*") if p.is_dir()):
            files = {f.relative_to(repo_dir).as_posix(): f.read_bytes() for f in repo_dir.rglob("*") if f.is_file()}
            added.append(self.add_repo(f"{repo_dir.parent.name}/{repo_dir.name}", files))
        return added

    def faults(self, repo_id: str, path: str) -> Faults:
        """The live faults of one file (both download routes serve it)."""
        return self.repos[repo_id].files[path].faults

    def file_url(self, repo_id: str, path: str, revision: str = REVISION) -> str:
        """The SDK's download URL of one file."""
        return f"{self.url}/api/v1/models/{repo_id}/repo?Revision={revision}&FilePath={quote(path)}"

    def resolve_url(self, repo_id: str, path: str, revision: str = REVISION) -> str:
        """The ``/resolve/`` URL of one file."""
        return f"{self.url}/models/{repo_id}/resolve/{revision}/{quote(path)}"

    def listing_url(self, repo_id: str, revision: str = REVISION) -> str:
        return f"{self.url}/api/v1/models/{repo_id}/repo/files?Revision={revision}&Recursive=true"
