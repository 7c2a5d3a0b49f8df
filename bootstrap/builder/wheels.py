"""Finding the big wheels on the torch channel, so they can be fetched with our engine.

A 2.5 GB CUDA torch wheel is exactly the download that dies at 90 %; uv and
pip would start it over.  So the builder reads the index page (PEP 503 or a
flat listing like Aliyun's), picks the wheel for this interpreter and
platform with its ``#sha256=``, downloads it into ``cache/wheels/`` with the
resumable engine, and installs from there.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin

import requests

from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.mirrors.sources import Source

_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


@dataclass(frozen=True)
class Wheel:
    filename: str
    url: str  # an http(s) URL, or a local path
    sha256: str | None

    @property
    def local(self) -> bool:
        return not self.url.startswith(("http://", "https://"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def platform_tags() -> tuple[str, tuple[str, ...]]:
    """(cpXY, accepted platform tag prefixes) for this interpreter."""
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if sys.platform == "win32":
        return cp, ("win_amd64",)
    if sys.platform == "darwin":
        return cp, ("macosx",)
    return cp, ("linux_x86_64", "manylinux")


def matches(filename: str, pin: str, cp: str, plats: tuple[str, ...]) -> bool:
    """Is ``filename`` the wheel for ``name==version`` on this interpreter?"""
    m = _WHEEL.match(filename)
    name, _, version = pin.partition("==")
    if not m or m["name"].lower().replace("_", "-") != name.lower().replace("_", "-"):
        return False
    if m["version"] != version and ("+" in version or m["version"].split("+")[0] != version):
        return False
    abi3 = "abi3" in m["abi"].split(".")
    py_ok = any(t in (cp, "py3") or t.startswith("py3") or (abi3 and _older_cp(t, cp)) for t in m["py"].split("."))
    abi_ok = any(t in (cp, "abi3", "none") for t in m["abi"].split("."))
    plat_ok = any(t == "any" or t.startswith(plats) or t.endswith("_x86_64") and "linux" in t and "linux_x86_64" in plats
                  for t in m["plat"].split("."))  # fmt: skip
    return py_ok and abi_ok and plat_ok


def _older_cp(tag: str, cp: str) -> bool:
    """An abi3 wheel built for cp39 also serves cp311."""
    if not (tag.startswith("cp3") and cp.startswith("cp3")):
        return False
    return tag[3:].isdigit() and cp[3:].isdigit() and int(tag[3:]) <= int(cp[3:])


def find_wheel(source: Source, pin: str, python_tag: str | None = None) -> Wheel | None:
    """The wheel ``pin`` resolves to on ``source`` (a PEP 503 index, a flat listing, or a folder)."""
    cp, plats = platform_tags()
    cp = python_tag or cp
    if source.local:
        for path in sorted(Path(source.url).glob("*.whl")):
            if matches(path.name, pin, cp, plats):
                return Wheel(path.name, str(path), None)
        return None
    name = pin.partition("==")[0].lower()
    page = source.url.rstrip("/") + f"/{name}/" if source.kind == "pep503" else source.url
    try:
        resp = requests.get(page, timeout=20)
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or "connection failed") from exc
    problem = problem_for_status(resp.status_code)
    if problem:
        raise MirrorProblem(problem)
    parser = _Links()
    parser.feed(resp.text)
    for href in parser.hrefs:
        url, _, fragment = href.partition("#")
        filename = unquote(url.rsplit("/", 1)[-1])
        if matches(filename, pin, cp, plats):
            sha = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
            return Wheel(filename, urljoin(resp.url, url), sha)
    return None
