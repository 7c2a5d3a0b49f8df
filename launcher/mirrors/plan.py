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

    def first(self, channel: str) -> Source | None:
        found = self.sources.get(channel) or []
        return found[0] if found else None


def plan_for(bundle: Bundle, cfg: Config, cuda: str | None = None, catalog: Catalog | None = None) -> MirrorPlan:
    """Resolve every channel's choice from config.toml against the catalog and the last measurement."""
    catalog = catalog or load_catalog(bundle.mirrors_file)
    rank = ranking.load(bundle)
    sources = {ch: candidates(catalog.channel(ch), cfg.get_str(f"mirrors.{ch}"), rank, cuda=cuda) for ch in CHANNELS}
    return MirrorPlan(sources, Network(cfg.get_str("network.proxy"), cfg.get_bool("network.offline")), cuda)
