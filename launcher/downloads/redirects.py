"""Redirects that leave a mirror: the mirror does not carry the bytes, so it counts as failing.

hf-mirror answers a file of a Xet-backed repository with a 302 to a Xet host
outside China (``cas-bridge.xethub.hf.co``), even with ``HF_HUB_DISABLE_XET=1``
(compat-and-mirrors.md, third check, item 8).  Following it would download from
the very network the mirror was chosen to avoid, usually slowly or not at all;
the right move is the next route (another endpoint, then ModelScope).

A source says where its redirects may go with ``stay_within``: domains whose
hosts (the domain itself and its sub-domains) count as the mirror.  Empty means
anywhere (the official hub, whose CDN and Xet hosts are its own).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from launcher.mirrors.fallback import MirrorProblem

__all__ = ["OffMirrorRedirect", "check_redirects", "headers_for", "mirror_domains"]

# Headers that carry the origin's credentials: never sent to another host a download was redirected to.
CREDENTIALS = ("authorization", "cookie")


class OffMirrorRedirect(MirrorProblem):
    """The mirror sent the download to a host outside it."""

    def __init__(self, host: str) -> None:
        super().__init__(f"redirected off the mirror to {host} (the mirror does not carry this file)")
        self.host = host


def mirror_domains(url: str) -> tuple[str, ...]:
    """The domain a mirror's hosts share: ``hf-mirror.com`` for ``https://hf-mirror.com`` and its CDN hosts.

    An IP address or a one-label host (``localhost``) stands for itself only.
    """
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    labels = host.split(".")
    return (".".join(labels[-2:]),) if len(labels) >= 2 else (host,)


def _inside(host: str, domains: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def check_redirects(urls: Sequence[str], stay_within: Sequence[str]) -> None:
    """Raise :class:`OffMirrorRedirect` when one of the URLs a request went through is outside ``stay_within``."""
    if not stay_within:
        return
    for url in urls:
        host = urlsplit(url).hostname or ""
        if host and not _inside(host, stay_within):
            raise OffMirrorRedirect(host)


def _origin(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.hostname or "").lower().rstrip("."), parts.port or default


def headers_for(origin: str, target: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a request to ``target`` may carry when ``headers`` were meant for ``origin``.

    Same host and port: all of them.  Another host (the redirect to a CDN or a signed URL): no
    ``Authorization`` or ``Cookie``, as ``requests`` does itself when it follows the redirect.
    """
    if _origin(origin) == _origin(target):
        return dict(headers)
    return {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
