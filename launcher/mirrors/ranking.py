"""The remembered measurements: cache/mirrors.json.

``mirrors test`` writes its results here; ``auto`` reads them while they are
fresh (six hours).  A mirror that failed during a real install or download
is recorded too, and ranks last until the next measurement.  Stage 0 reads
the same file with the standard library, so the format is plain JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap.atomic import write_atomic
from bootstrap.layout import Bundle

FILE = "mirrors.json"
TTL_SECONDS = 6 * 3600


def path(bundle: Bundle) -> Path:
    return bundle.cache_dir / FILE


@dataclass
class Ranking:
    """Fresh results per channel (best first) and recent failures."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # channel -> {id: reason}

    def order(self, channel: str) -> list[str]:
        """Ids measured healthy in this channel, best first, minus recent failures."""
        failed = self.failures.get(channel, {})
        return [r["id"] for r in self.results.get(channel, []) if r.get("ok") and r["id"] not in failed]

    def unhealthy(self, channel: str) -> dict[str, str]:
        """Ids that failed their last probe or a real transfer, with the reason."""
        out = {r["id"]: r.get("error", "") for r in self.results.get(channel, []) if not r.get("ok")}
        out.update(self.failures.get(channel, {}))
        return out


def _read(bundle: Bundle) -> dict[str, Any]:
    try:
        data = json.loads(path(bundle).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(bundle: Bundle, data: dict[str, Any]) -> None:
    write_atomic(path(bundle), json.dumps(data, ensure_ascii=False, indent=1))


def load(bundle: Bundle, now: float | None = None) -> Ranking:
    now = time.time() if now is None else now
    data = _read(bundle)
    ranking = Ranking()
    for channel, entry in data.get("channels", {}).items():
        if now - float(entry.get("measured_at", 0)) <= TTL_SECONDS:
            ranking.results[channel] = list(entry.get("results", []))
    for item in data.get("failures", []):
        if now - float(item.get("at", 0)) <= TTL_SECONDS:
            ranking.failures.setdefault(item["channel"], {})[item["id"]] = item.get("reason", "")
    return ranking


def save(bundle: Bundle, channel_results: dict[str, list[dict[str, Any]]], now: float | None = None) -> None:
    """Store ranked results per channel; a new measurement clears old failures."""
    now = time.time() if now is None else now
    data = _read(bundle)
    channels = data.setdefault("channels", {})
    for channel, results in channel_results.items():
        channels[channel] = {"measured_at": now, "results": results}
    data["failures"] = [f for f in data.get("failures", []) if f.get("channel") not in channel_results]
    _write(bundle, data)


def record_failure(bundle: Bundle, channel: str, mirror_id: str, reason: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    data = _read(bundle)
    failures = [f for f in data.get("failures", []) if (f.get("channel"), f.get("id")) != (channel, mirror_id)]
    failures.append({"channel": channel, "id": mirror_id, "reason": reason, "at": now})
    data["failures"] = failures
    try:
        _write(bundle, data)
    except OSError:
        pass  # remembering a failure is a courtesy; never fail a transfer over it
