"""The corpus of real users' logs (tests/data/real-logs) and its scoring, shared by the test and the benchmark.

Each file is ``<category>/<NNN>-<tool>.log``: a header of ``# key: value`` lines
(source, tool, os-language, category, expected, held-back) ended by ``# ---``,
then the excerpt exactly as it was posted.  The held-back part was fixed by
the rule in :func:`held_back` (a hash of the file's name) before any signature
was written against the rest.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real-logs"
HEADER_KEYS = ("source", "tool", "os-language", "category", "expected", "held-back")
OPTIONAL_KEYS = ("unseen", "set")  # "unseen: <commit>": collected after the signatures were frozen at that commit;
# "set: heldout-N": a held-back batch, collected and scored (README, /work/notes) before the reader was changed for it
OUTCOMES = ("first", "anywhere", "wrong", "silent")


@dataclass(frozen=True)
class RealLog:
    path: Path
    source: str
    tool: str
    language: str
    category: str
    expected: str
    held_back: bool
    text: str
    unseen: str = ""  # the commit the signatures were frozen at when this log was collected; "" if before
    batch: str = ""  # "heldout-N": the held-back batch this log belongs to; "" for the logs collected before them


def held_back(name: str) -> bool:
    """The fixed rule: a quarter of the files, by the SHA-256 of ``<category>/<file name>``."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 4 == 0


def parse(path: Path) -> RealLog:
    lines = path.read_text(encoding="utf-8").split("\n")
    head: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line == "# ---":
            body = "\n".join(lines[i + 1 :])
            break
        key, _, value = line[2:].partition(": ")
        if not line.startswith("# ") or key not in HEADER_KEYS + OPTIONAL_KEYS:
            raise ValueError(f"{path}: line {i + 1} is not a header line: {line!r}")
        head[key] = value
    else:
        raise ValueError(f"{path}: no '# ---' ends the header")
    missing = set(HEADER_KEYS) - head.keys()
    if missing:
        raise ValueError(f"{path}: the header lacks {sorted(missing)}")
    return RealLog(path, head["source"], head["tool"], head["os-language"], head["category"], head["expected"],
                   head["held-back"] == "yes", body, head.get("unseen", ""), head.get("set", ""))  # fmt: skip


def corpus(root: Path = CORPUS) -> list[RealLog]:
    return [parse(p) for p in sorted(root.glob("*/*.log"))]


def outcome(expected: str, codes: list[str]) -> str:
    """first: the expected code leads; anywhere: it is among the findings; wrong: findings without it; silent: none.

    ``LOG_SUMMARY`` (what the log shows, when nothing known matched) names no cause: it counts as silent.
    """
    codes = [c for c in codes if c != "LOG_SUMMARY"]
    if codes and codes[0] == expected:
        return "first"
    if expected in codes:
        return "anywhere"
    return "wrong" if codes else "silent"


@dataclass
class Score:
    outcomes: dict[str, str]  # file (relative) -> outcome
    codes: dict[str, list[str]]

    def table(self, logs: Iterable[RealLog], key: Callable[[RealLog], str]) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for log in logs:
            out[key(log)][self.outcomes[name(log)]] += 1
        return dict(out)


def name(log: RealLog) -> str:
    return f"{log.category}/{log.path.name}"


def score(logs: list[RealLog], diagnose: Callable[[str], list[str]]) -> Score:
    codes = {name(log): diagnose(log.text) for log in logs}
    return Score({name(log): outcome(log.expected, codes[name(log)]) for log in logs}, codes)
