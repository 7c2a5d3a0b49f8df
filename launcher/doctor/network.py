"""What the doctor knows about the network: the mirrors and endpoints in use, and whether they answered.

Plain ``doctor`` stays fast: it reads the saved measurements of ``cache/mirrors.json`` (while fresh, six hours)
and the failures recorded during real installs and downloads, and touches no network.  ``doctor --network``
probes the PyPI, torch and Hugging Face sources in use now, all at once, within one probe timeout
(``network.probe_timeout``).  The doctor itself writes nothing: the ranking changes only when ``--fix`` measures
the mirrors again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from bootstrap.layout import Bundle
from launcher.config import Config

CHANNELS = ("pypi", "torch", "huggingface")


@dataclass(frozen=True)
class Endpoint:
    """One source of a channel and what its last check said (``ok`` None: never checked)."""

    channel: str
    id: str
    url: str
    official: bool
    chosen: bool  # the source used first (the user's choice, or the best one ``auto`` has)
    ok: bool | None
    error: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.url

    @property
    def tls_problem(self) -> bool:
        """A failed TLS handshake or certificate check (see :func:`launcher.mirrors.probe.describe`)."""
        return self.ok is False and self.error.startswith("TLS")


@dataclass(frozen=True)
class NetworkFacts:
    """``source``: live (probed now) | cache (saved measurements) | none (nothing fresh) | offline."""

    source: str
    endpoints: tuple[Endpoint, ...] = ()

    def chosen(self, channel: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.chosen and e.channel == channel), None)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "endpoints": [asdict(e) for e in self.endpoints]}


def gather(bundle: Bundle, cfg: Config, *, live: bool = False, cuda: str | None = None,
           timeout: float | None = None) -> NetworkFacts:  # fmt: skip
    """The sources in use per channel, checked live or from the saved ranking."""
    from launcher.mirrors import ranking
    from launcher.mirrors.plan import plan_for

    if cfg.get_bool("network.offline"):
        return NetworkFacts("offline")
    plan = plan_for(bundle, cfg, cuda=cuda)
    firsts = {ch: plan.first(ch) for ch in CHANNELS}
    if live:
        from launcher.mirrors.probe import Target, probe_all

        targets = [Target(s.channel, s.id, s.url, s.probe_url, s.kind, s.automatic) for s in firsts.values() if s]
        wait = float(cfg["network.probe_timeout"]) if timeout is None else timeout
        results = probe_all(targets, wait, cfg.get_str("network.proxy"))
        endpoints = tuple(
            Endpoint(r.channel, r.id, r.url, bool(s.official), True, r.ok, r.error)
            for r, s in zip(results, (s for s in firsts.values() if s), strict=True)
        )
        return NetworkFacts("live", endpoints)
    saved = ranking.load(bundle)
    out: list[Endpoint] = []
    for channel, first in firsts.items():
        failures = saved.failures.get(channel, {})
        measured = {str(r.get("id")): r for r in saved.results.get(channel, [])}
        if first is not None:
            r = measured.pop(first.id, None)
            ok, error = (bool(r.get("ok")), str(r.get("error") or "")) if r else (None, "")
            if first.id in failures:  # a real transfer failed after the last measurement
                ok, error = False, failures[first.id] or error
            out.append(Endpoint(channel, first.id, first.url, first.official, True, ok, error))
        for mid, r in measured.items():
            ok = bool(r.get("ok")) and mid not in failures
            error = failures.get(mid) or str(r.get("error") or "")
            out.append(Endpoint(channel, mid, str(r.get("url") or ""), False, False, ok, error))
    checked = any(e.ok is not None for e in out)
    return NetworkFacts("cache" if checked else "none", tuple(out))
