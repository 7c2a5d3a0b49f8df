"""Where a model comes from: Hugging Face repositories, Civitai, or any URL.

Each resolver turns what the user asked for into a :class:`Plan`: the
candidate URLs in order (one per Hugging Face endpoint, for fallback), the
file name, and what to verify against (the LFS sha256 and size from Hugging
Face metadata, Civitai's published SHA256, a ``#sha256=`` URL fragment, or
``--sha256``).  Only metadata travels through ``huggingface_hub``; the bytes
go through our own engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import requests

from launcher.downloads import DownloadSource
from launcher.downloads.redirects import mirror_domains
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.mirrors.sources import Source
from launcher.models.catalog import CatalogEntry, ModelCatalog, ModelScopeSource

if TYPE_CHECKING:
    from launcher.models.sidecar import Sidecar
    from launcher.models.tokens import Site

MODELSCOPE = "https://www.modelscope.cn"  # when the mirror plan lists no ModelScope source
MODELSCOPE_REVISION = "master"

METADATA_TIMEOUT = 10.0
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Plan:
    sources: list[DownloadSource]
    filename: str
    sha256: str | None = None
    size: int | None = None
    kind: str | None = None  # checkpoint | lora | vae | embedding | upscaler, when the source says
    notes: list[str] = field(default_factory=list)
    fallback: Plan | None = None  # a different file to fetch when every source failed (a ModelScope copy)
    # Links (launcher/models/resolve.py): the site whose token a 401 asks for, what to write beside the file,
    # whether a token was sent, and how messages name the model.
    site: Site | None = None
    sidecar: Sidecar | None = None
    token_sent: bool = False
    label: str = ""


def valid_sha256(value: str | None) -> str | None:
    """Normalised hex, or None; a malformed value is the caller's error to report."""
    if value is None:
        return None
    value = value.strip().lower()
    if not _HEX64.match(value):
        raise ValueError(value)
    return value


def split_fragment(url: str) -> tuple[str, str | None]:
    """``https://x/f.safetensors#sha256=HEX`` → the URL and the hash."""
    base, _, frag = url.partition("#")
    m = re.search(r"(?:^|&)sha256=([0-9a-fA-F]{64})", frag)
    return base, (m.group(1).lower() if m else None)


def filename_of(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name or "download"


# -- Hugging Face ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HfFile:
    repo: str
    filename: str
    revision: str = "main"


_HF_URL = re.compile(r"^https?://[^/]+/(?P<repo>[^/]+/[^/]+)/(?:resolve|blob)/(?P<rev>[^/]+)/(?P<file>.+)$")


def parse_hf(text: str, hf_hosts: Sequence[str]) -> HfFile | None:
    """``org/name/file.safetensors``, ``org/name:file`` or a resolve/blob URL on a known endpoint."""
    m = _HF_URL.match(text)
    if m and urlsplit(text).netloc in hf_hosts:
        return HfFile(m["repo"], unquote(m["file"]), unquote(m["rev"]))
    if "://" in text:
        return None
    if ":" in text and text.count("/") == 1:
        repo, _, name = text.partition(":")
        return HfFile(repo, name)
    parts = text.split("/")
    if len(parts) >= 3 and all(parts):
        return HfFile("/".join(parts[:2]), "/".join(parts[2:]))
    return None


def hf_token(token: str | None) -> str:
    """The Hugging Face token: the one given (from config.toml), else HF_TOKEN / HUGGING_FACE_HUB_TOKEN."""
    from launcher.models.tokens import HUGGINGFACE

    return token if token is not None else HUGGINGFACE.token(None)


class GatedProblem(MirrorProblem):
    """A gated repository: only a token of an account that accepted its terms may read it."""


def hf_metadata(file: HfFile, endpoint: str, token: str = "") -> tuple[str, str | None, int | None]:
    """(commit sha, LFS sha256, size) of one file, from the endpoint's API."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi(endpoint=endpoint, token=token or False).model_info(file.repo, revision=file.revision, files_metadata=True,
                                                   timeout=METADATA_TIMEOUT)  # fmt: skip
    except GatedRepoError as exc:  # before its base class, RepositoryNotFoundError
        raise GatedProblem(f"gated: {file.repo} needs a token of an account that accepted its terms") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise MirrorProblem(f"not found: {file.repo}@{file.revision}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise MirrorProblem(problem_for_status(status) or f"HTTP {status}") from exc
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or "connection failed") from exc
    except Exception as exc:  # httpx errors in newer huggingface_hub versions
        raise MirrorProblem(problem_for_exception(exc) or type(exc).__name__) from exc
    for sibling in info.siblings or []:
        if sibling.rfilename == file.filename:
            lfs = sibling.lfs
            sha = lfs.sha256 if lfs is not None else None
            size = lfs.size if lfs is not None else sibling.size
            return str(info.sha), sha, size
    raise MirrorProblem(f"{file.filename} is not in {file.repo}@{file.revision}")


def resolve_hf(file: HfFile, endpoints: Sequence[Source], token: str | None = None) -> Plan:
    """Metadata from the first endpoint that answers; bytes from every endpoint in turn.

    The token (``downloads.hf_token``, else HF_TOKEN) goes to the Hugging Face channel's endpoints only.
    """
    from launcher.models.tokens import HUGGINGFACE, bearer, token_needed

    token = hf_token(token)
    problems: list[str] = []
    gated = 0
    for endpoint in endpoints:
        try:
            commit, sha, size = hf_metadata(file, endpoint.url.rstrip("/"), token)
            break
        except MirrorProblem as exc:
            problems.append(f"{endpoint.id}: {exc.reason}")
            gated += isinstance(exc, GatedProblem)
    else:
        if gated:  # the repository is there, behind its terms: more endpoints cannot help, a token can
            raise token_needed(HUGGINGFACE, f"{file.repo} ({file.filename})", sent=bool(token))
        raise MirrorProblem("; ".join(problems) or "no Hugging Face endpoint")
    path = quote(file.filename)
    sources = [
        DownloadSource(
            f"{e.url.rstrip('/')}/{file.repo}/resolve/{commit}/{path}",
            label=e.name("en"),
            headers=bearer(token),
            channel="huggingface",
            mirror_id=e.id,
            stay_within=() if e.official else mirror_domains(e.url),
        )  # fmt: skip
        for e in endpoints
    ]
    return Plan(sources, file.filename.rsplit("/", 1)[-1], sha, size, notes=problems, site=HUGGINGFACE,
                token_sent=bool(token))  # fmt: skip


# -- everything together ------------------------------------------------------------------------------------------


def modelscope_source(copy: ModelScopeSource, modelscope: Source | None) -> DownloadSource:
    """The download of a ModelScope copy, through the plan's ModelScope endpoint (its token, if set)."""
    base = (modelscope.url if modelscope is not None else MODELSCOPE).rstrip("/")
    token = os.environ.get("MODELSCOPE_API_TOKEN", "")
    return DownloadSource(f"{base}/models/{copy.repo}/resolve/{MODELSCOPE_REVISION}/{quote(copy.file)}",
                          label=modelscope.name("en") if modelscope is not None else "ModelScope",
                          headers={"Authorization": f"Bearer {token}"} if token else {},
                          channel="huggingface" if modelscope is not None else "",
                          mirror_id=modelscope.id if modelscope is not None else "",
                          stay_within=mirror_domains(base))  # fmt: skip


def _from_catalog(entry: CatalogEntry, endpoints: Sequence[Source], modelscope: Source | None,
                  token: str | None = None) -> Plan:  # fmt: skip
    """A catalog entry: its Hugging Face file through every endpoint, then its ModelScope copy if listed.

    The same file on ModelScope is one more source, checked against the entry's sha256; a different
    file (another precision) is the plan's ``fallback``, with its own name and sha256.
    """
    sha = entry.sha256 or None
    copy = entry.modelscope
    same: list[DownloadSource] = []
    fallback = None
    if copy is not None and copy.own_file:
        fallback = Plan([modelscope_source(copy, modelscope)], copy.file.rsplit("/", 1)[-1], copy.sha256, None,
                        entry.type)  # fmt: skip
    elif copy is not None:
        same.append(modelscope_source(copy, modelscope))
    if entry.hf is None:
        return Plan([DownloadSource(entry.url), *same], entry.filename, sha, None, entry.type, fallback=fallback)
    try:
        plan = resolve_hf(HfFile(entry.hf.repo, entry.hf.file, entry.hf.revision), endpoints, token)
    except MirrorProblem as exc:
        note = f"Hugging Face: {exc.reason}"
        if same:  # no Hugging Face endpoint answered; ModelScope's copy is checked against the catalog's sha256
            return Plan(same, entry.filename, sha, None, entry.type, [note])
        if fallback is not None:
            return Plan(fallback.sources, fallback.filename, fallback.sha256, None, entry.type, [note])
        raise
    # The catalog's own sha256 (checked when the entry was written) outranks what a mirror reports.
    return Plan(plan.sources + same, entry.filename, sha or plan.sha256, plan.size, entry.type, plan.notes,
                fallback)  # fmt: skip


def resolve_target(
    target: str,
    *,
    catalog: ModelCatalog | None,
    endpoints: Sequence[Source],
    hf_token: str | None = None,
    modelscope: Source | None = None,
) -> tuple[Plan, str | None]:
    """What ``models download TARGET`` means: the plan, and a hash the target itself carries.

    TARGET is a catalog name, a Hugging Face ``org/repo/file``, a Hugging Face
    resolve/blob URL, or any URL (``#sha256=`` allowed); the other link kinds are
    :func:`launcher.models.resolve.resolve_link`'s.
    Raises :class:`MirrorProblem` when no source answers, and the catalog's
    UnknownModel (with a suggestion) for a name it does not know.
    """
    hosts = [e.url.split("/")[2] for e in endpoints] + ["huggingface.co", "hf-mirror.com"]
    if target.startswith(("http://", "https://")):
        url, fragment = split_fragment(target)
        hf = parse_hf(url, hosts)
        if hf is not None:
            return resolve_hf(hf, endpoints, hf_token), fragment
        return Plan([DownloadSource(url)], filename_of(url)), fragment
    entry = catalog.find(target) if catalog is not None else None
    if entry is not None:
        return _from_catalog(entry, endpoints, modelscope, hf_token), None
    hf = parse_hf(target, hosts)
    if hf is None:
        if catalog is not None:
            catalog.resolve(target)  # raises UnknownModel with a "did you mean"
        raise MirrorProblem(f"not a model name, a Hugging Face file or a URL: {target}")
    return resolve_hf(hf, endpoints, hf_token), None
