"""Downloads: several connections, resume across runs, verified, with mirror fallback.

:func:`download` is what the rest of Yijian calls: it skips a file that is
already there and verifies, holds the target's lock, and tries each source
in turn (a mirror's failure moves on to the next one, said once).  The byte
moving itself is :func:`launcher.downloads.engine.fetch`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.i18n import pick
from bootstrap.layout import Bundle
from launcher.downloads.engine import Result, as_user_error, default_validator, fetch
from launcher.downloads.partfile import PartFile
from launcher.downloads.transfer import ProgressHook, Validator
from launcher.errors import AllMirrorsFailed, DestinationExists
from launcher.mirrors import ranking
from launcher.mirrors.fallback import MirrorProblem
from launcher.models.hashes import sha256_file

__all__ = ["DownloadSource", "Result", "download"]


@dataclass(frozen=True)
class DownloadSource:
    url: str
    label: str = ""  # how messages name it: a mirror's name, or the host
    headers: Mapping[str, str] = field(default_factory=dict)
    channel: str = ""  # with mirror_id: where a failure is recorded for ``auto``
    mirror_id: str = ""
    stay_within: tuple[str, ...] = ()  # domains redirects may go to (launcher/downloads/redirects.py); () = any

    def name(self) -> str:
        if self.label:
            return self.label
        return self.url.split("/")[2] if "://" in self.url else self.url


def _already_there(dest: Path, sha256: str | None, size: int | None) -> Result | None:
    if not dest.exists():
        return None
    actual_size = dest.stat().st_size
    if sha256 is None:
        raise DestinationExists(dest=str(dest), why_zh="没有校验和可以比对，无法确认是同一个文件",
                                why_en="there is no checksum to compare it with")  # fmt: skip
    if size is not None and actual_size != size:
        raise DestinationExists(
            dest=str(dest), why_zh=f"大小 {actual_size}，应为 {size}", why_en=f"{actual_size} bytes, expected {size}"
        )
    digest = sha256_file(dest)
    if digest != sha256.lower():
        raise DestinationExists(
            dest=str(dest),
            why_zh=f"sha256 为 {digest}，与期望的不同",
            why_en=f"its sha256 is {digest}, not the expected one",
        )
    return Result(dest, digest, actual_size, actual_size, 0, 0, "")


def download(
    sources: Sequence[DownloadSource],
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    connections: int = 8,
    on_progress: ProgressHook | None = None,
    say: Callable[[str], None] = lambda _: None,
    lang: str = "en",
    bundle: Bundle | None = None,
    stop: threading.Event | None = None,
    validator: Validator | None = None,
) -> Result:
    """Fetch ``dest`` from the first source that works; verified, resumable.

    ``validator`` judges the first bytes (default: no HTML page, LFS pointer or JSON error).
    """
    if not sources:
        raise ValueError("no source to download from")
    present = _already_there(dest, sha256, size)
    if present is not None:
        return present
    part = PartFile(dest)
    part.acquire()
    try:
        tried: list[tuple[DownloadSource, MirrorProblem]] = []
        for i, source in enumerate(sources):
            try:
                return fetch(source.url, dest, sha256=sha256, size=size, headers=source.headers,
                             connections=connections, on_progress=on_progress, stop=stop,
                             stay_within=source.stay_within, validator=validator or default_validator)  # fmt: skip
            except MirrorProblem as problem:
                tried.append((source, problem))
                if bundle is not None and source.channel and source.mirror_id:
                    ranking.record_failure(bundle, source.channel, source.mirror_id, problem.reason)
                if i + 1 < len(sources):
                    nxt = sources[i + 1]
                    say(pick(lang, f"{source.name()} 下载失败（{problem.reason}），改用 {nxt.name()}",
                             f"{source.name()} failed ({problem.reason}); trying {nxt.name()}"))  # fmt: skip
        if len(tried) == 1:
            raise as_user_error(tried[0][1], tried[0][0].url, part.part) from tried[0][1]
        listing = "; ".join(f"{s.name()}: {p.reason}" for s, p in tried)
        raise AllMirrorsFailed(channel=sources[0].channel or "download", listing=listing) from tried[-1][1]
    finally:
        part.release()
