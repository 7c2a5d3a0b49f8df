"""ModelScope (魔搭) links: a repository or a file, resolved through the ``modelscope`` channel.

The listing ``GET {endpoint}/api/v1/models/{owner}/{name}/repo/files?Revision=REV&Recursive=true``
gives every file's ``Path``, ``Size`` and ``Sha256``; the bytes come from
``{endpoint}/api/v1/models/{owner}/{name}/repo?Revision=REV&FilePath=PATH`` (the SDK's
route).  A token (``downloads.modelscope_token`` or ``MODELSCOPE_API_TOKEN``)
is sent as ``Authorization: Bearer`` to the channel's endpoints only.  A
repository link without a file means its one model file; with several, the
user names one with ``--file``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

from launcher.downloads import DownloadSource
from launcher.downloads.redirects import mirror_domains
from launcher.downloads.sources import METADATA_TIMEOUT, Plan
from launcher.errors import LinkNotFound
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.mirrors.sources import Source
from launcher.models.links import ModelScopeLink
from launcher.models.repo_files import choose_model_file
from launcher.models.sidecar import Sidecar
from launcher.models.tokens import MODELSCOPE, bearer, token_needed


def listing(link: ModelScopeLink, endpoint: str, token: str) -> list[dict[str, Any]]:
    """The repository's files (blobs only), from one endpoint."""
    url = f"{endpoint}/api/v1/models/{link.repo}/repo/files"
    params = {"Revision": link.revision, "Recursive": "true"}
    try:
        resp = requests.get(url, params=params, headers=bearer(token), timeout=METADATA_TIMEOUT)
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or "connection failed") from exc
    if resp.status_code == 401:
        raise token_needed(MODELSCOPE, f"{link.repo}@{link.revision}", sent=bool(token))
    if resp.status_code in (404, 410):
        raise LinkNotFound(site="ModelScope", what=f"{link.repo}@{link.revision}", status=f"HTTP {resp.status_code}")
    problem = problem_for_status(resp.status_code)
    if problem:
        raise MirrorProblem(problem)
    try:
        files = resp.json()["Data"]["Files"]
    except (ValueError, KeyError, TypeError):
        raise MirrorProblem("not a ModelScope API answer (wrong content)") from None
    return [f for f in files if isinstance(f, dict) and f.get("Type", "blob") == "blob"]


def download_url(endpoint: str, repo: str, path: str, revision: str) -> str:
    return f"{endpoint}/api/v1/models/{repo}/repo?Revision={quote(revision)}&FilePath={quote(path)}"


def resolve_modelscope(link: ModelScopeLink, endpoints: Sequence[Source], token: str, wanted_file: str = "") -> Plan:
    """The plan: metadata from the first endpoint that answers, bytes from each endpoint in turn."""
    if not endpoints:
        raise MirrorProblem("no ModelScope endpoint")
    problems: list[str] = []
    files: list[dict[str, Any]] | None = None
    for endpoint in endpoints:
        try:
            files = listing(link, endpoint.url.rstrip("/"), token)
            break
        except MirrorProblem as exc:
            problems.append(f"{endpoint.id}: {exc.reason}")
    if files is None:
        raise MirrorProblem("; ".join(problems))
    by_path = {str(f.get("Path", "")).lstrip("/"): f for f in files}
    where = f"ModelScope {link.repo}"
    if link.path:
        entry = by_path.get(link.path.lstrip("/"))
        if entry is None:
            raise LinkNotFound(site="ModelScope", what=f"{link.repo}/{link.path}", status="not in the listing")
    else:
        entry = by_path[choose_model_file(list(by_path), wanted_file, where)]
    path = str(entry["Path"]).lstrip("/")
    sha = str(entry.get("Sha256") or "").lower() or None
    size = entry.get("Size") if isinstance(entry.get("Size"), int) else None
    sources = [
        DownloadSource(download_url(e.url.rstrip("/"), link.repo, path, link.revision), label=e.name("en"),
                       headers=bearer(token), channel="modelscope", mirror_id=e.id,
                       stay_within=mirror_domains(e.url))  # fmt: skip
        for e in endpoints
    ]
    page = f"{endpoints[0].url.rstrip('/')}/models/{link.repo}/file/view/{link.revision}/{quote(path)}"
    sidecar = Sidecar(site="modelscope", source_url=link.original or page, model_name=link.repo,
                      version=link.revision)  # fmt: skip
    return Plan(sources, path.rsplit("/", 1)[-1], sha, size, notes=problems, site=MODELSCOPE, sidecar=sidecar,
                token_sent=bool(token), label=where)  # fmt: skip
