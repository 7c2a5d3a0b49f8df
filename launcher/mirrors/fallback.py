"""Trying a channel's sources in order until one works.

An install or a download that fails on a mirror for a mirror's reason
(network or TLS error, 5xx, 403/404 for an object the mirror should have,
wrong content such as an HTML page) moves on to the next source, says so
once, and records the failure so that ``auto`` ranks that mirror last for a
while.  A failure that is not the mirror's fault (a full disk, a bad
request) is not retried elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from bootstrap.i18n import pick
from bootstrap.layout import Bundle
from launcher.errors import AllMirrorsFailed
from launcher.mirrors import ranking
from launcher.mirrors.sources import Source

T = TypeVar("T")


class MirrorProblem(Exception):
    """Raised by an operation when the *mirror* failed; ``reason`` is short and plain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def problem_for_status(status: int) -> str | None:
    """The mirror's fault for an HTTP status, or None if the status is fine."""
    if status in (403, 404, 410):
        return f"HTTP {status} (the mirror lacks it or refuses it)"
    if status == 429:
        return "HTTP 429 (rate limited)"
    if status >= 500:
        return f"HTTP {status} (server error)"
    return None


def problem_for_exception(exc: BaseException) -> str | None:
    """The mirror's fault for a requests/urllib3/socket exception, or None."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        text = str(exc)
        if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
            return "DNS lookup failed"
        if "refused" in text.lower():
            return "connection refused"
        if isinstance(exc, requests.exceptions.Timeout):
            return "timed out"
        return "connection failed"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped"
    return _by_description(exc)


def _by_description(exc: BaseException) -> str | None:
    """The same reasons for other clients' errors (httpx in huggingface_hub, the socket module)."""
    name, text = type(exc).__name__, f"{exc} {exc.__cause__ or ''}".lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    if "certificate" in text or "ssl" in name.lower():
        return "TLS error"
    if "timeout" in name.lower() or "timed out" in text:
        return "timed out"
    if "connect" in name.lower() or "network" in name.lower() or isinstance(exc, ConnectionError):
        return "connection failed"
    return None


def try_sources(
    sources: Sequence[Source],
    operation: Callable[[Source], T],
    *,
    bundle: Bundle,
    lang: str,
    say: Callable[[str], None],
) -> T:
    """``operation(source)`` for each source in turn; the first success wins."""
    tried: list[tuple[Source, str]] = []
    for i, source in enumerate(sources):
        try:
            return operation(source)
        except MirrorProblem as exc:
            tried.append((source, exc.reason))
            ranking.record_failure(bundle, source.channel, source.id, exc.reason)
            if i + 1 < len(sources):
                nxt = sources[i + 1]
                say(pick(lang, f"镜像 {source.name('zh')} 失败（{exc.reason}），改用 {nxt.name('zh')}：{nxt.url}",
                         f"Mirror {source.name('en')} failed ({exc.reason}); trying {nxt.name('en')}: {nxt.url}"))  # fmt: skip
    channel = sources[0].channel if sources else "?"
    listing = "; ".join(f"{s.id} ({s.url}): {reason}" for s, reason in tried) or "-"
    raise AllMirrorsFailed(channel=channel, listing=listing)
