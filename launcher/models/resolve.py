"""From what the user pasted to a download plan, for every link kind (:mod:`launcher.models.links`).

* a catalog name or ``org/repo/file`` -- :func:`launcher.downloads.sources.resolve_target`;
* a Hugging Face link -- its file, or the repository's model file, through the
  Hugging Face endpoints in the user's order;
* a Civitai link -- :mod:`launcher.models.civitai`, through the ``civitai`` channel;
* a ModelScope link -- :mod:`launcher.models.modelscope`, through the ``modelscope`` channel;
* any other http(s) URL -- one small request first: a web page is refused at
  once (naming what is accepted), a 404 is a dead link, and the file name
  comes from ``Content-Disposition`` when the server gives one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import unquote, urlsplit

import requests

from launcher.downloads import DownloadSource
from launcher.downloads.sources import METADATA_TIMEOUT, HfFile, Plan, filename_of, resolve_hf, resolve_target
from launcher.errors import LinkNotFound, UnsupportedLink
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception
from launcher.mirrors.sources import Source
from launcher.models.catalog import MODEL_FILE_SUFFIXES, ModelCatalog
from launcher.models.civitai import ANY_FILE, Choice, resolve_civitai
from launcher.models.links import CatalogName, CivitaiLink, HfLink, ModelScopeLink, UrlLink, host_of, parse_link
from launcher.models.modelscope import resolve_modelscope
from launcher.models.repo_files import choose_model_file
from launcher.models.sidecar import Sidecar


@dataclass(frozen=True)
class Routes:
    """Where each kind of link is resolved: the channels' sources in order, and the tokens."""

    huggingface: Sequence[Source] = ()  # kind "hf" endpoints
    catalog_modelscope: Source | None = None  # the huggingface channel's ModelScope entry (catalog copies)
    civitai: Sequence[Source] = ()
    modelscope: Sequence[Source] = ()
    tokens: dict[str, str] = field(default_factory=dict)  # civitai / huggingface / modelscope → token

    def hosts(self, sources: Sequence[Source]) -> list[str]:
        return [host_of(s.url) for s in sources]


def _hf_repo_file(link: HfLink, routes: Routes, wanted: str) -> str:
    """The model file of a repository link, from the first endpoint that lists it."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError

    from launcher.models.tokens import HUGGINGFACE, token_needed

    token = routes.tokens.get("huggingface") or ""
    problems, gated = [], False
    for endpoint in routes.huggingface:
        try:
            info = HfApi(endpoint=endpoint.url.rstrip("/"), token=token or False).model_info(
                link.repo, revision=link.revision, timeout=METADATA_TIMEOUT
            )
        except GatedRepoError:
            gated = True
            continue
        except Exception as exc:  # not found, refused, unreachable: the next endpoint may know it
            problems.append(f"{endpoint.id}: {problem_for_exception(exc) or type(exc).__name__}")
            continue
        return choose_model_file([s.rfilename for s in info.siblings or []], wanted, f"Hugging Face {link.repo}")
    if gated:
        raise token_needed(HUGGINGFACE, link.repo, sent=bool(token))
    raise MirrorProblem("; ".join(problems) or "no Hugging Face endpoint")


def _filename_from(disposition: str) -> str:
    if not disposition:
        return ""
    msg = Message()
    msg["Content-Disposition"] = disposition
    name = msg.get_filename() or ""
    return unquote(name).replace("\\", "/").rsplit("/", 1)[-1].strip()


def preflight(link: UrlLink) -> Plan:
    """A plain URL: its name and size from the headers; a web page or a dead link is said before anything."""
    headers = {"Range": "bytes=0-0", "Accept-Encoding": "identity"}
    try:
        resp = requests.get(link.url, headers=headers, stream=True, timeout=METADATA_TIMEOUT, allow_redirects=True)
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or "connection failed") from exc
    with resp:
        status, kind = resp.status_code, resp.headers.get("Content-Type", "")
        name = _filename_from(resp.headers.get("Content-Disposition", ""))
        size = None
        if m := re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range", "")):
            size = int(m[1])
    host = urlsplit(link.url).hostname or link.url
    if status in (404, 410):
        raise LinkNotFound(site=host, what=link.url, status=f"HTTP {status}")
    # A page at a link that names a model file is the engine's to report (a login or "are you human" page);
    # a link to a page that names no file is not a model link at all.
    names_file = urlsplit(link.url).path.lower().endswith(MODEL_FILE_SUFFIXES)
    if status < 400 and "text/html" in kind.lower() and not names_file:
        raise UnsupportedLink(link=link.url, why_zh="它打开的是一个网页，不是模型文件", why_en="it opens a web page, not a model file")
    name = name or filename_of(link.url)
    sidecar = Sidecar(site="url", source_url=link.url)
    return Plan([DownloadSource(link.url)], name, None, size, sidecar=sidecar, label=link.url)


def resolve_link(text: str, routes: Routes, *, catalog: ModelCatalog | None, choice: Choice = ANY_FILE,
                 kind: str | None = None) -> tuple[Plan, str | None]:  # fmt: skip
    """The plan for ``text``, and a sha256 the text itself carries (``#sha256=``)."""
    link = parse_link(text, hf_hosts=routes.hosts(routes.huggingface), civitai_hosts=routes.hosts(routes.civitai),
                      modelscope_hosts=routes.hosts(routes.modelscope))  # fmt: skip
    if isinstance(link, CatalogName):
        return resolve_target(link.name, catalog=catalog, endpoints=routes.huggingface,
                              modelscope=routes.catalog_modelscope, hf_token=routes.tokens.get("huggingface"))  # fmt: skip
    if isinstance(link, CivitaiLink):
        if not routes.civitai:
            raise MirrorProblem("no Civitai endpoint")
        return resolve_civitai(link, routes.civitai[0].url, routes.tokens.get("civitai", ""), choice, kind), None
    if isinstance(link, ModelScopeLink):
        return resolve_modelscope(link, routes.modelscope, routes.tokens.get("modelscope", ""), choice.file), None
    if isinstance(link, HfLink):
        path = link.path or _hf_repo_file(link, routes, choice.file)
        plan = resolve_hf(HfFile(link.repo, path, link.revision), routes.huggingface, routes.tokens.get("huggingface"))
        page = link.original or f"https://huggingface.co/{link.repo}"
        sidecar = Sidecar(site="huggingface", source_url=page, model_name=link.repo, version=link.revision)
        return _with(plan, sidecar, f"Hugging Face {link.repo}/{path}"), None
    assert isinstance(link, UrlLink)
    return preflight(link), link.sha256


def _with(plan: Plan, sidecar: Sidecar, label: str) -> Plan:
    from dataclasses import replace

    return replace(plan, sidecar=sidecar, label=label)
