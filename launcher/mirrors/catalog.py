"""The shipped mirror catalog, ``mirrors.toml``, as typed records."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CHANNELS = ("pypi", "torch", "huggingface", "python", "github", "civitai", "modelscope")
STATUSES = ("verified", "reported", "unverified")


@dataclass(frozen=True)
class Mirror:
    channel: str
    id: str
    name_zh: str
    name_en: str
    url: str
    kind: str
    status: str
    official: bool = False
    notes: str = ""
    probe: str = ""  # this entry's own probe template, if the channel's does not fit
    aliases: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    @property
    def automatic(self) -> bool:
        """May ``auto`` choose it?  Never an unverified mirror."""
        return self.status != "unverified"


@dataclass(frozen=True)
class Channel:
    id: str
    name_zh: str
    name_en: str
    probe: str
    mirrors: tuple[Mirror, ...]
    default: str = "auto"
    probe_cuda: str = "cu128"
    probe_version: str = "3.11.9"

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    def get(self, mirror_id: str) -> Mirror | None:
        return next((m for m in self.mirrors if m.id == mirror_id), None)

    def suggest(self, name: str, extra: tuple[str, ...] = ("auto",)) -> str | None:
        """The id (or ``extra`` word) a mistyped name most likely meant."""
        from difflib import get_close_matches

        exact = self.by_alias(name)
        if exact is not None:
            return exact.id
        words = {w.lower(): w for w in extra}
        for m in self.mirrors:
            words.update({a.lower(): m.id for a in (m.id, *m.aliases)})
        near = get_close_matches(name.strip().lower(), list(words), n=1)
        return words[near[0]] if near else None

    def by_alias(self, name: str) -> Mirror | None:
        """The mirror a user's name for it means (``清华`` or ``tsinghua`` → tuna)."""
        key = name.strip().lower()
        return next((m for m in self.mirrors if key == m.id or key in (a.lower() for a in m.aliases)), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.mirrors)


@dataclass(frozen=True)
class Catalog:
    channels: dict[str, Channel]

    def channel(self, name: str) -> Channel:
        return self.channels[name]


@lru_cache(maxsize=4)
def load_catalog(path: Path) -> Catalog:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    channels: dict[str, Channel] = {}
    for name in CHANNELS:
        meta = data.get("channels", {}).get(name, {})
        mirrors = tuple(
            Mirror(
                channel=name,
                id=e["id"],
                name_zh=e.get("name_zh", e["id"]),
                name_en=e.get("name_en", e["id"]),
                url=e["url"],
                kind=e["kind"],
                status=e.get("status", "unverified"),
                official=bool(e.get("official", False)),
                notes=e.get("notes", ""),
                probe=e.get("probe", ""),
                aliases=tuple(e.get("aliases", ())),
            )
            for e in data.get(name, [])
        )
        channels[name] = Channel(
            id=name,
            name_zh=meta.get("name_zh", name),
            name_en=meta.get("name_en", name),
            probe=meta.get("probe", "{url}"),
            mirrors=mirrors,
            default=meta.get("default", "auto"),
            probe_cuda=meta.get("probe_cuda", "cu128"),
            probe_version=meta.get("probe_version", "3.11.9"),
        )
    return Catalog(channels)
