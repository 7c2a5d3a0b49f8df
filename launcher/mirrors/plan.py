"""The mirror plan: every channel's ordered sources, plus the network switches."""

from __future__ import annotations

from dataclasses import dataclass, field

from bootstrap.layout import Bundle
from launcher.config import Config
from launcher.mirrors import ranking
from launcher.mirrors.catalog import CHANNELS, Catalog, load_catalog
from launcher.mirrors.sources import Source, candidates


@dataclass(frozen=True)
class Network:
    proxy: str = ""
    offline: bool = False


@dataclass(frozen=True)
class MirrorPlan:
    sources: dict[str, list[Source]]
    network: Network = field(default_factory=Network)
    cuda: str | None = None  # the torch variant the torch sources are filled for
    failed: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # channel -> {source id: why} (last test, transfers)

    def first(self, channel: str) -> Source | None:
        found = self.sources.get(channel) or []
        return found[0] if found else None

    def no_working_mirror(self, channel: str) -> dict[str, str] | None:
        """When every source of ``channel`` failed its last probe or a real transfer: each one's reason; else None.

        Known only after a mirror test or a recorded failure: an unmeasured mirror may still work.
        """
        found = self.sources.get(channel) or []
        bad = self.failed.get(channel, {})
        if not found or any(s.id not in bad for s in found):
            return None
        return {s.id: bad[s.id] for s in found}


def plan_for(bundle: Bundle, cfg: Config, cuda: str | None = None, catalog: Catalog | None = None) -> MirrorPlan:
    """Resolve every channel's choice from config.toml against the catalog and the last measurement."""
    catalog = catalog or load_catalog(bundle.mirrors_file)
    rank = ranking.load(bundle)
    sources = {ch: candidates(catalog.channel(ch), cfg.get_str(f"mirrors.{ch}"), rank, cuda=cuda) for ch in CHANNELS}
    failed = {ch: rank.unhealthy(ch) for ch in CHANNELS}
    return MirrorPlan(sources, Network(cfg.get_str("network.proxy"), cfg.get_bool("network.offline")), cuda, failed)
