"""The corpus of real users' logs: well formed, broad enough, and never diagnosed wrong.

The corpus (tests/data/real-logs) holds excerpts people posted to public issue
trackers, each with the cause its thread concluded.  The scoring is the
benchmark's own (benchmarks/diagnose.py prints the tables); this test fails on
any wrong answer and when the held-back part drops below the goal.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from launcher.doctor.scanner import load_signatures, scan
from tests.support.real_logs import corpus, held_back, name, outcome, score

LOGS = corpus()


def test_the_corpus_is_large_broad_and_its_headers_are_complete() -> None:
    assert len(LOGS) >= 150
    tools: dict[str, set[str]] = defaultdict(set)
    for log in LOGS:
        assert log.source.startswith("https://github.com/"), name(log)
        assert log.held_back == held_back(name(log)), f"{name(log)}: held-back must follow the hash rule"
        assert log.text.strip(), name(log)
        tools[log.category].add(log.tool)
    for category, seen in tools.items():
        count = sum(log.category == category for log in LOGS)
        assert count >= 6 and len(seen) >= 3, (category, count, sorted(seen))
    assert sum(log.held_back for log in LOGS) >= 0.2 * len(LOGS)
    assert {log.language for log in LOGS} >= {"zh", "ru", "fr", "en"}
    assert {log.expected for log in LOGS} <= {s.code for s in load_signatures()}


def test_no_real_log_gets_a_wrong_diagnosis() -> None:
    s = score(LOGS, lambda text: [f.code for f in scan(text)])
    wrong = {k: (v, s.codes[k]) for k, v in s.outcomes.items() if v == "wrong"}
    assert not wrong, wrong


def test_the_held_back_part_is_recognised_at_the_goal() -> None:
    held = [log for log in LOGS if log.held_back]
    s = score(held, lambda text: [f.code for f in scan(text)])
    right = sum(v in ("first", "anywhere") for v in s.outcomes.values())
    assert right >= 0.95 * len(held), {k: v for k, v in s.outcomes.items() if v not in ("first", "anywhere")}


@pytest.mark.parametrize(
    ("codes", "want"),
    [(["A", "B"], "first"), (["B", "A"], "anywhere"), (["B"], "wrong"), ([], "silent"), (["LOG_SUMMARY"], "silent"),
     (["LOG_SUMMARY", "A"], "first")],
)  # fmt: skip
def test_the_outcome_of_one_log(codes: list[str], want: str) -> None:
    assert outcome("A", codes) == want
