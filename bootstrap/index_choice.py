"""Which PyPI index stage 0 installs the launcher's environment from.

The user's choice comes from ``[mirrors] pypi`` in config.toml: ``auto``, a
mirror id from mirrors.toml, an index URL, or a local wheel folder.  For
``auto`` (and as the fallback after an explicit choice fails) the candidates
are ranked by a quick parallel probe, bounded by one timeout however many
mirrors there are.  The launcher's ``mirrors test`` does the full
measurement later; this is the standard-library subset stage 0 needs.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.layout import Bundle
from bootstrap.tomlread import TomlSubsetError, load

PROBE_TIMEOUT = 3.0
RANKING_TTL = 6 * 3600  # as launcher.mirrors.ranking


@dataclass(frozen=True)
class Index:
    id: str
    url: str  # an index URL, or a local folder for --find-links
    name_zh: str
    name_en: str
    official: bool = False
    local: bool = False

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


@dataclass(frozen=True)
class ProbeResult:
    index: Index
    ok: bool
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class StageConfig:
    pypi: str = "auto"
    proxy: str = ""
    offline: bool = False
    language: str = ""
    problem: str = ""  # why config.toml could not be read, if it could not


def read_stage_config(bundle: Bundle) -> StageConfig:
    """The few settings stage 0 needs.  A broken file means defaults."""
    if not bundle.config_file.exists():
        return StageConfig()
    try:
        data = load(bundle.config_file)
    except (OSError, TomlSubsetError, UnicodeDecodeError) as exc:
        return StageConfig(problem=str(exc))

    def get(section: str, key: str, kind: type, default: Any) -> Any:
        value = data.get(section, {}).get(key, default) if isinstance(data.get(section), dict) else default
        return value if isinstance(value, kind) else default

    return StageConfig(
        pypi=get("mirrors", "pypi", str, "auto").strip() or "auto",
        proxy=get("network", "proxy", str, "").strip(),
        offline=get("network", "offline", bool, False),
        language=get("general", "language", str, ""),
    )


def catalog_indexes(bundle: Bundle) -> list[Index]:
    data = load(bundle.mirrors_file)
    out = []
    for entry in data.get("pypi", []):
        if entry.get("status") == "unverified":
            continue
        out.append(
            Index(
                id=entry["id"],
                url=entry["url"].rstrip("/"),
                name_zh=entry.get("name_zh", entry["id"]),
                name_en=entry.get("name_en", entry["id"]),
                official=bool(entry.get("official", False)),
            )
        )
    return out


def explicit_index(choice: str, bundle: Bundle) -> Index | None:
    """The index a non-``auto`` choice names, or None for ``auto``."""
    if choice == "auto":
        return None
    if re.match(r"^https?://", choice):
        return Index(id="custom", url=choice.rstrip("/"), name_zh=choice, name_en=choice)
    path = choice[len("file://") :] if choice.startswith("file://") else choice
    if "/" in path or "\\" in path or path.startswith("."):
        return Index(id="local", url=path, name_zh=path, name_en=path, local=True)
    data = load(bundle.mirrors_file)
    for entry in data.get("pypi", []):
        if entry.get("id") == choice:
            return Index(
                id=choice,
                url=entry["url"].rstrip("/"),
                name_zh=entry.get("name_zh", choice),
                name_en=entry.get("name_en", choice),
                official=bool(entry.get("official", False)),
            )
    return None


def _opener(proxy: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})
    ]
    return urllib.request.build_opener(*handlers)


def probe(index: Index, timeout: float = PROBE_TIMEOUT, proxy: str = "") -> ProbeResult:
    """Fetch the ``pip`` project page: proves the host answers *as an index*."""
    if index.local:
        ok = Path(index.url).is_dir()
        return ProbeResult(index, ok, 0.0, "" if ok else "not a folder")
    start = time.monotonic()
    try:
        req = urllib.request.Request(index.url + "/pip/", headers={"User-Agent": "yijian-bootstrap"})
        with _opener(proxy).open(req, timeout=timeout) as resp:
            body = resp.read(256 * 1024).decode("utf-8", "replace")
        if "pip-" not in body or "<a" not in body.lower():
            return ProbeResult(index, False, time.monotonic() - start, "not a package index (wrong content)")
        return ProbeResult(index, True, time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        return ProbeResult(index, False, time.monotonic() - start, f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return ProbeResult(index, False, time.monotonic() - start, describe_network_error(exc.reason))
    except (OSError, ValueError) as exc:
        return ProbeResult(index, False, time.monotonic() - start, describe_network_error(exc))


def describe_network_error(reason: object) -> str:
    text = str(reason)
    if "Name or service not known" in text or "getaddrinfo" in text or "nodename nor servname" in text:
        return "DNS lookup failed"
    if "timed out" in text.lower():
        return "timed out"
    if "refused" in text.lower():
        return "connection refused"
    if "CERTIFICATE" in text.upper():
        return "TLS certificate error"
    return text


def rank(indexes: list[Index], timeout: float | None = None, proxy: str = "") -> list[ProbeResult]:
    """Probe all at once; the whole call takes at most about ``timeout``."""
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    results: dict[int, ProbeResult] = {}

    def run(i: int, index: Index) -> None:
        results[i] = probe(index, timeout, proxy)

    threads = [threading.Thread(target=run, args=(i, ix), daemon=True) for i, ix in enumerate(indexes)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 0.2
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    ranked = [results.get(i, ProbeResult(ix, False, timeout, "timed out")) for i, ix in enumerate(indexes)]
    return sorted(ranked, key=lambda r: (not r.ok, r.seconds if r.ok else 0.0))


def cached_results(bundle: Bundle, indexes: list[Index], now: float | None = None) -> list[ProbeResult] | None:
    """The pypi ranking the launcher's ``mirrors test`` saved, if fresh; else None."""
    try:
        data = json.loads((bundle.cache_dir / "mirrors.json").read_text(encoding="utf-8"))
        entry = data["channels"]["pypi"]
        if (time.time() if now is None else now) - float(entry["measured_at"]) > RANKING_TTL:
            return None
        by_id = {r["id"]: r for r in entry["results"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = []
    for ix in indexes:
        r = by_id.get(ix.id)
        if r is None:
            out.append(ProbeResult(ix, True, 999.0))  # not measured: after the measured ones
        else:
            out.append(
                ProbeResult(ix, bool(r.get("ok")), float(r.get("total_ms") or 0) / 1000, str(r.get("error", "")))
            )
    return sorted(out, key=lambda r: (not r.ok, r.seconds if r.ok else 0.0))
