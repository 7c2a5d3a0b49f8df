"""A Hugging Face Hub stand-in: enough of the HTTP API for ``huggingface_hub`` to work unchanged.

Point the client at it with ``endpoint=hf.url`` (or ``HF_ENDPOINT`` set before
importing huggingface_hub) and ``HF_HUB_DISABLE_XET=1``::

    hf = HfEndpoint().start()
    repo = hf.add_repo("org/tiny", {"model.safetensors": w, "config.json": b"{}"}, lfs=("model.safetensors",))
    hf_hub_download("org/tiny", "model.safetensors", endpoint=hf.url, cache_dir=tmp)
    hf.faults("org/tiny", "model.safetensors").drop_after = 1000

Routes, as the real hub answers them:

* ``GET /api/models/{repo}[/revision/{rev}]`` -- model info; ``?blobs=true`` adds size, blobId and
  ``lfs: {sha256, size, pointerSize}`` to the siblings.
* ``GET /api/models/{repo}/tree/{rev}[/{path}]`` -- the listing (``?recursive=true``); lfs key ``oid`` here.
* ``HEAD/GET /{repo}/resolve/{rev}/{path}`` -- a normal file: 200 + ``X-Repo-Commit`` + ``ETag`` (git
  blob sha1); an LFS file: 302 + ``X-Repo-Commit`` + ``X-Linked-Etag`` (sha256) + ``X-Linked-Size`` +
  ``Location`` of the CDN route, which serves the bytes with Range and the file's :class:`Faults`
  and repeats ``X-Repo-Commit`` and ``ETag``.  With ``lfs_cross_origin`` the Location names
  ``localhost:PORT``, another origin for a client of ``127.0.0.1:PORT``, as the real CDN is.
* 404 + ``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``;
* a repo in ``gated`` (repo id -> token) answers 401 + ``X-Error-Code: GatedRepo`` to a request without
  ``Authorization: Bearer <token>``.

Revisions arrive quoted (``refs%2Fpr%2F1``); every revision of a repo names its one 40-hex commit.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fileserver import Blob, BytesHandler, BytesServer, Faults, lfs_pointer, serve_bytes
from tests.support.httpbase import Handler

LAST_MODIFIED = "2024-05-01T12:00:00.000Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data`` (what the hub calls blobId / oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class RepoFile:
    """One file of a repo; an LFS file's ``blob`` is served by the CDN route."""

    path: str
    blob: Blob
    lfs: bool
    sha256: str
    blob_id: str  # git sha1 of what git stores: the bytes, or the LFS pointer

    @classmethod
    def make(cls, path: str, data: bytes, lfs: bool) -> RepoFile:
        sha256 = hashlib.sha256(data).hexdigest()
        blob_id = git_blob_sha1(lfs_pointer(data) if lfs else data)
        return cls(path, Blob(data, sha256 if lfs else blob_id), lfs, sha256, blob_id)

    @property
    def size(self) -> int:
        return len(self.blob.data)

    def sibling(self, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path}
        if blobs:
            entry.update(size=self.size, blobId=self.blob_id)
            if self.lfs:
                entry["lfs"] = {
                    "sha256": self.sha256,
                    "size": self.size,
                    "pointerSize": len(lfs_pointer(self.blob.data)),
                }
        return entry

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(lfs_pointer(self.blob.data))}
        return entry


@dataclass
class Repo:
    """A model repo: its files and the revisions (branches, refs/pr/N) naming its commit."""

    repo_id: str
    files: dict[str, RepoFile]
    revisions: set[str]
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            ids = "".join(f"{p}\0{f.blob_id}\0" for p, f in sorted(self.files.items()))
            self.sha = hashlib.sha1(f"{self.repo_id}\0{ids}".encode()).hexdigest()

    def has_revision(self, rev: str) -> bool:
        return rev in self.revisions or rev == self.sha

    def info(self, blobs: bool) -> dict[str, Any]:
        author = self.repo_id.split("/")[0]
        return {
            "_id": self.sha[:24], "id": self.repo_id, "modelId": self.repo_id, "author": author, "sha": self.sha,
            "lastModified": LAST_MODIFIED, "createdAt": LAST_MODIFIED, "private": False, "disabled": False,
            "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "siblings": [f.sibling(blobs) for _, f in sorted(self.files.items())],
        }  # fmt: skip

    def tree(self, under: str, recursive: bool) -> list[dict[str, Any]] | None:
        """Entries below folder ``under`` ("" for the root), or None if there is no such folder."""
        prefix = f"{under}/" if under else ""
        folders: set[str] = set()
        entries: list[dict[str, Any]] = []
        for path, f in sorted(self.files.items()):
            if not path.startswith(prefix):
                continue
            parent = posixpath.dirname(path)
            while len(parent) > len(under):
                folders.add(parent)
                parent = posixpath.dirname(parent)
            if recursive or "/" not in path[len(prefix) :]:
                entries.append(f.tree_entry())
        if under and not folders and not entries:
            return None
        if not recursive:
            folders = {d for d in folders if "/" not in d[len(prefix) :]}
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(folders)
        ]
        return dirs + entries


def _not_found(handler: Handler, code: str, message: str, commit: str | None = None) -> None:
    headers = [("X-Error-Code", code), ("X-Error-Message", message)]
    if commit:
        headers.append(("X-Repo-Commit", commit))
    body = json.dumps({"error": message}).encode()
    handler.reply(404, body, headers, content_type="application/json")


class _HubHandler(BytesHandler):
    ROUTES = (
        (re.compile(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.+))?"), "tree"),
        (re.compile(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?"), "model_info"),
        (re.compile(r"/cdn/repos/([^/]+/[^/]+)/([0-9a-f]{64})"), "cdn"),
        (re.compile(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)"), "resolve"),
    )

    @property
    def hub(self) -> HfEndpoint:
        server = self.owner
        assert isinstance(server, HfEndpoint)
        return server

    def route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        for pattern, name in self.ROUTES:
            if m := pattern.fullmatch(url.path):
                repo = self.hub.repos.get(m[1])
                if repo is None:
                    _not_found(self, "RepoNotFound", "Repository not found")
                    return
                wanted = self.hub.gated.get(m[1])
                if wanted is not None and self.headers.get("Authorization") != f"Bearer {wanted}":
                    message = f"Access to model {m[1]} is restricted. You must have access to it and be authenticated."
                    self.reply(401, json.dumps({"error": message}).encode(),
                               [("X-Error-Code", "GatedRepo"), ("X-Error-Message", message)], "application/json")
                    return
                getattr(self, name)(repo, *(unquote(g) if g else g for g in m.groups()[1:]), query=query)
                return
        self.reply(404, b"404 Not Found\n", content_type="text/plain")

    def json(self, value: object) -> None:
        self.reply(200, json.dumps(value).encode(), content_type="application/json")

    def model_info(self, repo: Repo, rev: str | None, *, query: dict[str, str]) -> None:
        if rev is not None and not repo.has_revision(rev):
            _not_found(self, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        self.json(repo.info(blobs=query.get("blobs", "").lower() == "true"))

    def tree(self, repo: Repo, rev: str, under: str | None, *, query: dict[str, str]) -> None:
        if not repo.has_revision(rev):
            _not_found(self, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        entries = repo.tree(under or "", recursive=query.get("recursive", "").lower() == "true")
        if entries is None:
            _not_found(self, "EntryNotFound", f"{under} does not exist on {rev}", repo.sha)
            return
        self.json(entries)

    def resolve(self, repo: Repo, rev: str, path: str, *, query: dict[str, str]) -> None:
        if not repo.has_revision(rev):
            _not_found(self, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        f = repo.files.get(path)
        if f is None:
            _not_found(self, "EntryNotFound", f"Entry not found: {path}", repo.sha)
            return
        commit = ("X-Repo-Commit", repo.sha)
        if not f.lfs:
            serve_bytes(self, f.blob, [commit])
            return
        origin = f"http://localhost:{self.hub.port}" if self.hub.lfs_cross_origin else ""
        location = f"{origin}/cdn/repos/{repo.repo_id}/{f.sha256}"
        linked = [("X-Linked-Etag", f'"{f.sha256}"'), ("X-Linked-Size", str(f.size)), ("Location", location)]
        self.reply(302, b"", [commit, *linked])

    def cdn(self, repo: Repo, sha256: str, *, query: dict[str, str]) -> None:
        f = next((f for f in repo.files.values() if f.lfs and f.sha256 == sha256), None)
        if f is None:
            self.reply(404, b"404 Not Found\n", content_type="text/plain")
            return
        serve_bytes(self, f.blob, [("X-Repo-Commit", repo.sha)])


@dataclass
class HfEndpoint(BytesServer):
    """A running fake hub; ``url`` is the endpoint to give ``huggingface_hub``."""

    handler: type[Handler] = _HubHandler
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs_cross_origin: bool = False  # send LFS downloads to http://localhost:PORT instead of a relative Location
    gated: dict[str, str] = field(default_factory=dict)  # repo id -> the token its API and files want (else 401)

    def add_repo(self, repo_id: str, files: Mapping[str, bytes], lfs: Iterable[str] = (),
                 revisions: Iterable[str] = ("main",)) -> Repo:  # fmt: skip
        """Publish a model repo; ``lfs`` names the files stored with Git LFS (served via the CDN route)."""
        if repo_id.count("/") != 1:
            raise ValueError(f"repo id must be namespace/name: {repo_id!r}")
        lfs = set(lfs)
        unknown = lfs - set(files)
        if unknown:
            raise ValueError(f"lfs files not in the repo: {sorted(unknown)}")
        repo_files = {p: RepoFile.make(p, data, p in lfs) for p, data in files.items()}
        repo = Repo(repo_id, repo_files, set(revisions))
        self.repos[repo_id] = repo
        return repo

    def faults(self, repo_id: str, path: str) -> Faults:
        """The live faults of one file (on the CDN route for LFS files, on /resolve otherwise)."""
        return self.repos[repo_id].files[path].blob.faults
