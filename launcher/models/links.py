"""What a pasted model link means: one parser for ``models download LINK`` and the TUI's link field.

:func:`parse_link` turns text into one of these, or raises
:class:`~launcher.errors.UnsupportedLink` naming what is accepted:

* :class:`CivitaiLink` -- a Civitai model page (``/models/ID``, with
  ``?modelVersionId=V``), an API link (``/api/download/models/V``,
  ``/api/v1/model-versions/V``, ``/api/v1/models/ID``), ``civitai:ID[@V]``
  or an AIR (``urn:air:sdxl:lora:civitai:ID@V[+FILE]``), from any Civitai
  domain: it is resolved through the ``civitai`` channel's endpoint;
* :class:`ModelScopeLink` -- ``modelscope.cn``/``modelscope.ai`` repository
  pages and file links (``/file/view/REV/PATH``, ``/resolve/REV/PATH``,
  ``/api/v1/models/O/N/repo?FilePath=``), or ``modelscope:O/N[/PATH]``;
* :class:`HfLink` -- a Hugging Face (or hf-mirror, or a configured endpoint)
  repository page, ``resolve``/``blob`` link, or ``org/repo/file``;
* :class:`UrlLink` -- any other ``http(s)`` URL, expected to be a file;
* :class:`CatalogName` -- anything else without a scheme: a catalog name.

Recognising needs no network; what a link points to is found by the resolvers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from launcher.downloads.sources import split_fragment
from launcher.errors import UnsupportedLink

CIVITAI_DOMAINS = ("civitai.com", "civitai.green", "civitai.red")
MODELSCOPE_DOMAINS = ("modelscope.cn", "modelscope.ai")
HF_DOMAINS = ("huggingface.co", "hf-mirror.com", "hf.co")


@dataclass(frozen=True)
class CivitaiLink:
    model: str = ""  # model id, when known
    version: str = ""  # model-version id, when known (else the model's newest version)
    file_id: str = ""  # one file of the version (an AIR's +FILE, a download link's ?type=/&format=)
    original: str = ""


@dataclass(frozen=True)
class ModelScopeLink:
    repo: str  # owner/name
    path: str = ""  # a file inside it, or "" for "the model file of this repository"
    revision: str = "master"
    original: str = ""


@dataclass(frozen=True)
class HfLink:
    repo: str
    path: str = ""  # "" for "the model file of this repository"
    revision: str = "main"
    original: str = ""


@dataclass(frozen=True)
class UrlLink:
    url: str
    sha256: str | None = None  # from a #sha256= fragment


@dataclass(frozen=True)
class CatalogName:
    name: str


Link = CivitaiLink | ModelScopeLink | HfLink | UrlLink | CatalogName

_AIR = re.compile(
    r"^(?:urn:)?(?:air:)?(?:(?P<eco>[\w.-]+):)?(?:(?P<type>[\w-]+):)?civitai:(?P<id>\d+)"
    r"(?:@(?P<ver>\d+))?(?:\+(?P<file>\d+))?(?:\.[\w-]+)?$",
    re.I,
)
_SHORT_CIVITAI = re.compile(r"^civitai:(?P<id>\d+)(?:@(?P<ver>\d+))?$", re.I)
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _in(host: str, domains: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def _unsupported(text: str, zh: str, en: str) -> UnsupportedLink:
    return UnsupportedLink(link=text, why_zh=zh, why_en=en)


def _civitai_url(text: str, path: str, query: dict[str, str]) -> CivitaiLink:
    if m := re.match(r"^/api/download/models/(\d+)", path):
        return CivitaiLink(version=m[1], original=text)
    if m := re.match(r"^/api/v1/model-versions/(\d+)", path):
        return CivitaiLink(version=m[1], original=text)
    if m := re.match(r"^/api/v1/models/(\d+)", path):
        return CivitaiLink(model=m[1], version=query.get("modelVersionId", ""), original=text)
    if m := re.match(r"^/models/(\d+)", path):
        return CivitaiLink(model=m[1], version=query.get("modelVersionId", ""), original=text)
    if m := re.match(r"^/model-versions/(\d+)", path):
        return CivitaiLink(version=m[1], original=text)
    raise _unsupported(text, "这是 Civitai 的页面，但不是模型页或下载链接（应形如 civitai.com/models/ID）",
                       "it is a Civitai page, but not a model page or a download link (civitai.com/models/ID)")  # fmt: skip


def _modelscope_url(text: str, path: str, query: dict[str, str]) -> ModelScopeLink:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[:3] == ["api", "v1", "models"] and len(parts) >= 6 and parts[5] == "repo":
        repo = f"{parts[3]}/{parts[4]}"
        return ModelScopeLink(repo, query.get("FilePath", "").lstrip("/"), query.get("Revision", "master"), text)
    if parts[:1] == ["models"] and len(parts) >= 3:
        repo = f"{parts[1]}/{parts[2]}"
        rest = parts[3:]
        if len(rest) >= 4 and rest[:2] == ["file", "view"]:
            return ModelScopeLink(repo, "/".join(rest[3:]), rest[2], text)
        if len(rest) >= 3 and rest[0] == "resolve":
            return ModelScopeLink(repo, "/".join(rest[2:]), rest[1], text)
        if not rest or rest[0] in ("summary", "files", "file", "feedback", "tree"):
            return ModelScopeLink(repo, "", "master", text)
    raise _unsupported(text, "这是魔搭的页面，但不是模型仓库或文件（应形如 modelscope.cn/models/组织/名称）",
                       "it is a ModelScope page, but not a model repository or file (modelscope.cn/models/OWNER/NAME)")  # fmt: skip


_HF_SKIP = {"api", "datasets", "spaces", "docs", "models", "settings", "login", "join", "blog", "papers"}


def _hf_url(text: str, path: str) -> HfLink | None:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) < 2 or parts[0] in _HF_SKIP:
        return None
    repo = f"{parts[0]}/{parts[1]}"
    rest = parts[2:]
    if len(rest) >= 3 and rest[0] in ("resolve", "blob"):
        return HfLink(repo, "/".join(rest[2:]), rest[1], text)
    if not rest or rest[0] in ("tree",):
        return HfLink(repo, "", rest[1] if len(rest) >= 2 else "main", text)
    return None


def parse_link(text: str, *, hf_hosts: Sequence[str] = (), civitai_hosts: Sequence[str] = (),
               modelscope_hosts: Sequence[str] = ()) -> Link:  # fmt: skip
    """What ``text`` names (see the module docstring); ``*_hosts``: the channels' configured endpoints too."""
    text = text.strip()
    if not text:
        raise _unsupported(text, "没有给出链接", "nothing was given")
    if m := _SHORT_CIVITAI.match(text):
        return CivitaiLink(model=m["id"], version=m["ver"] or "", original=text)
    if (m := _AIR.match(text)) and ("air:" in text.lower() or text.count(":") >= 3):
        return CivitaiLink(model=m["id"], version=m["ver"] or "", file_id=m["file"] or "", original=text)
    if text.lower().startswith("modelscope:"):
        rest = text.split(":", 1)[1].strip("/")
        bits = rest.split("/")
        if len(bits) >= 2 and _REPO.match("/".join(bits[:2])):
            return ModelScopeLink("/".join(bits[:2]), "/".join(bits[2:]), "master", text)
        raise _unsupported(text, "modelscope: 后应是 组织/名称[/文件]", "modelscope: must be followed by OWNER/NAME[/FILE]")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme and scheme not in ("http", "https"):
        raise _unsupported(text, f"不支持 {scheme}:// 链接，只能用 http:// 或 https://",
                           f"{scheme}:// links are not supported, only http:// and https://")  # fmt: skip
    if not scheme:
        if re.match(r"^[a-z][\w+.-]*:", text, re.I) and not re.match(r"^[A-Za-z]:[\\/]", text):
            raise _unsupported(text, "不认识这种标识", "this kind of identifier is not known")
        return CatalogName(text)  # a catalog name or org/repo/file: decided by the catalog
    url, sha = split_fragment(text)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise _unsupported(text, "链接里没有主机名", "the link has no host name")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    netloc = parts.netloc.lower()  # a configured endpoint is host:port (the stand-ins share 127.0.0.1)
    if _in(host, CIVITAI_DOMAINS) or netloc in civitai_hosts:
        return _civitai_url(text, parts.path, query)
    if _in(host, MODELSCOPE_DOMAINS) or netloc in modelscope_hosts:
        return _modelscope_url(text, parts.path, query)
    if _in(host, HF_DOMAINS) or netloc in hf_hosts:
        hf = _hf_url(text, parts.path)
        if hf is not None:
            return hf
        raise _unsupported(text, "这是 Hugging Face 的页面，但不是模型仓库或文件",
                           "it is a Hugging Face page, but not a model repository or file")  # fmt: skip
    return UrlLink(url, sha)


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, lower-case (what link recognition compares)."""
    return (urlsplit(url).netloc or "").lower()
