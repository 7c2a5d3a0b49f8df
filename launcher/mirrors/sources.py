"""From the user's choice to an ordered list of sources, per channel.

A choice is ``auto``, a mirror id, a URL, or (pypi and torch) a local wheel
folder.  The result always starts with what the user chose; after it come
the automatic candidates in ranking order, so that a failing mirror can fall
back to the next one.  ``auto`` never picks an unverified mirror.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from launcher.mirrors.catalog import Channel, Mirror
from launcher.mirrors.ranking import Ranking


@dataclass(frozen=True)
class Source:
    """One concrete place to fetch a channel's things from."""

    channel: str
    id: str  # a mirror id, "custom" (a URL) or "local" (a folder)
    url: str  # templates filled in; for "local", a folder path
    kind: str  # pep503 | flat | hf | modelscope | pbs | embed | prefix | direct | local
    name_zh: str
    name_en: str
    official: bool = False
    automatic: bool = True
    probe_url: str = ""

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    @property
    def local(self) -> bool:
        return self.kind == "local"


def fill(template: str, cuda: str | None, version: str | None) -> str:
    out = template
    if cuda is not None:
        out = out.replace("{cuda}", cuda)
    if version is not None:
        out = out.replace("{version}", version)
    return out


def probe_url(template: str, url: str) -> str:
    """The probe object's URL: ``{url}/pip/`` joins cleanly, ``{url}https://…`` is a prefix."""
    return template.replace("{url}", url.rstrip("/") if "{url}/" in template else url)


def from_mirror(m: Mirror, channel: Channel, cuda: str | None = None, version: str | None = None) -> Source:
    cuda = cuda or channel.probe_cuda
    version = version or channel.probe_version
    url = fill(m.url, cuda, version)
    probe = fill(probe_url(m.probe or channel.probe, url), cuda, version)
    return Source(m.channel, m.id, url, m.kind, m.name_zh, m.name_en, m.official, m.automatic, probe)


def is_url(value: str) -> bool:
    return bool(re.match(r"^(flat\+)?https?://", value, re.I))


def is_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~", "file://")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))


def local_folder(value: str) -> Path:
    """The folder a path or ``file://`` choice names."""
    return Path(value[len("file://") :] if value.startswith("file://") else value).expanduser()


CUSTOM_KIND = {"pypi": "pep503", "torch": "pep503", "huggingface": "hf", "python": "pbs", "github": "prefix",
               "civitai": "civitai", "modelscope": "modelscope"}  # fmt: skip
FLAT_PREFIX = "flat+"  # a torch URL that is a flat listing (like Aliyun's), not an index


def from_value(value: str, channel: Channel, cuda: str | None = None, version: str | None = None) -> Source | None:
    """The source a non-``auto`` choice names; None for ``auto``/``off``."""
    if value in ("auto", "off"):
        return None
    mirror = channel.get(value)
    if mirror is not None:
        return from_mirror(mirror, channel, cuda, version)
    if is_url(value):
        kind = CUSTOM_KIND[channel.id]
        if value.lower().startswith(FLAT_PREFIX):
            kind, value = "flat", value[len(FLAT_PREFIX) :]
        url = fill(value, cuda or channel.probe_cuda, version or channel.probe_version)
        template = {"flat": "{url}", "prefix": "{url}https://raw.githubusercontent.com/astral-sh/uv/main/README.md"}
        probe = probe_url(template.get(kind, channel.probe), url)
        return Source(channel.id, "custom", url, kind, value, value, probe_url=probe)
    if is_path(value):
        folder = str(local_folder(value))
        return Source(channel.id, "local", folder, "local", folder, folder, probe_url=folder)
    return None


def candidates(
    channel: Channel,
    choice: str,
    ranking: Ranking | None = None,
    cuda: str | None = None,
    version: str | None = None,
) -> list[Source]:
    """Every source to try for ``channel``, in order.

    The explicit choice comes first.  Then the automatic mirrors: those the
    last measurement found healthy (fastest first), then the unmeasured ones
    in catalog order, then those that failed recently.  ``github = "off"``
    means no proxy at all: the list is empty.
    """
    if channel.id == "github" and choice == "off":
        return []
    first = from_value(choice, channel, cuda, version)
    ranking = ranking or Ranking()
    auto = [m for m in channel.mirrors if m.automatic]
    measured = ranking.order(channel.id)
    bad = ranking.unhealthy(channel.id)
    ordered = (
        [m for i in measured for m in auto if m.id == i]
        + [m for m in auto if m.id not in measured and m.id not in bad]
        + [m for m in auto if m.id in bad and m.id not in measured]
    )
    out = [first] if first else []
    for m in ordered:
        src = from_mirror(m, channel, cuda, version)
        if not any(o.url == src.url for o in out):
            out.append(src)
    return out
