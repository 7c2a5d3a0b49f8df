"""Measuring a channel's mirrors and remembering the ranking.

``mirrors test`` measures on request.  A command that is about to install
or download through ``auto`` calls :func:`ensure_measured` first: when the
ranking is missing or stale it measures that channel now (about one probe
timeout), so ``auto`` really is the fastest healthy mirror and not simply
the first one in the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bootstrap.i18n import pick
from bootstrap.layout import Bundle
from launcher.config import Config
from launcher.mirrors import ranking
from launcher.mirrors.catalog import load_catalog
from launcher.mirrors.probe import Result, Target, probe_all, rank
from launcher.mirrors.sources import from_mirror, from_value


def targets(bundle: Bundle, cfg: Config, channels: Sequence[str], cuda: str | None = None) -> list[Target]:
    """Every mirror of these channels, plus the user's own URL or folder if they gave one."""
    catalog = load_catalog(bundle.mirrors_file)
    out: list[Target] = []
    for name in channels:
        ch = catalog.channel(name)
        srcs = [from_mirror(m, ch, cuda) for m in ch.mirrors]
        custom = from_value(cfg.get_str(f"mirrors.{name}"), ch, cuda)
        if custom is not None and custom.id in ("custom", "local"):
            srcs.insert(0, custom)
        out += [Target(s.channel, s.id, s.url, s.probe_url, s.kind, s.automatic) for s in srcs]
    return out


def measure(bundle: Bundle, cfg: Config, channels: Sequence[str], cuda: str | None = None,
            timeout: float | None = None) -> dict[str, list[Result]]:  # fmt: skip
    """Probe every mirror of ``channels`` at once; save and return the ranking per channel."""
    wait = float(cfg["network.probe_timeout"]) if timeout is None else timeout
    results = probe_all(targets(bundle, cfg, channels, cuda), wait, cfg.get_str("network.proxy"))
    by_channel = {name: rank([r for r in results if r.channel == name]) for name in channels}
    ranking.save(bundle, {name: [r.to_dict() for r in rs] for name, rs in by_channel.items()})
    return by_channel


def ensure_measured(bundle: Bundle, cfg: Config, channels: Sequence[str], *, cuda: str | None = None,
                    lang: str = "en", say: Callable[[str], None] = lambda _: None) -> None:  # fmt: skip
    """Measure the ``auto`` channels that have no fresh ranking (never in offline mode)."""
    if cfg.get_bool("network.offline"):
        return
    fresh = ranking.load(bundle).results
    stale = [ch for ch in channels if cfg.get_str(f"mirrors.{ch}") == "auto" and ch not in fresh]
    if not stale:
        return
    say(pick(lang, f"正在为 {', '.join(stale)} 测速镜像，以选出最快的可用镜像…",
             f"Measuring the {', '.join(stale)} mirrors to pick the fastest healthy one ..."))  # fmt: skip
    measure(bundle, cfg, stale, cuda)
