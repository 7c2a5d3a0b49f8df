"""How well `yijian diagnose` reads real users' logs.

Runs the log reader on every excerpt of tests/data/real-logs (logs people
posted to public issue trackers, each with the cause its thread concluded)
and prints, for the whole corpus, per category, per tool, and separately for
the held-back part (chosen by a hash of the file name before signatures were
written against the rest): right code first, right code anywhere among the
findings, a wrong code (findings, none of them the right one), and silent
(nothing recognised; the reader then summarises what the log shows).

    python benchmarks/diagnose.py [--wrong] [--silent]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.doctor.scanner import scan  # noqa: E402
from tests.support.real_logs import OUTCOMES, Score, corpus, name, score  # noqa: E402

GOAL = "goal: >= 95 % right anywhere, 0 wrong"


def codes(text: str) -> list[str]:
    return [f.code for f in scan(text)]


def _row(label: str, c: Counter[str]) -> str:
    n = sum(c.values())
    right = c["first"] + c["anywhere"]
    return (f"{label:<28} {n:>4} {c['first']:>6} {right:>9} {100 * right / n:>6.1f}% {c['wrong']:>6} {c['silent']:>7}"
            if n else f"{label:<28}    0")  # fmt: skip


def report(s: Score, logs: list, title: str, key=None) -> None:  # type: ignore[no-untyped-def]
    print(f"\n{title}")
    print(f"{'':<28} {'logs':>4} {'first':>6} {'anywhere':>9} {'right':>7} {'wrong':>6} {'silent':>7}")
    if key is None:
        total: Counter[str] = Counter(s.outcomes[name(log)] for log in logs)
        print(_row("all", total))
        return
    for label, c in sorted(s.table(logs, key).items()):
        print(_row(label, c))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wrong", action="store_true", help="list the logs with a wrong code")
    ap.add_argument("--silent", action="store_true", help="list the logs where nothing was recognised")
    args = ap.parse_args()
    logs = corpus()
    s = score(logs, codes)
    held = [log for log in logs if log.held_back]
    rest = [log for log in logs if not log.held_back]
    print(f"real-logs corpus: {len(logs)} logs, {len(held)} held back ({100 * len(held) / len(logs):.0f} %), "
          f"{len({log.category for log in logs})} categories, {len({log.tool for log in logs})} tools.  {GOAL}")  # fmt: skip
    report(s, logs, "whole corpus")
    report(
        s,
        held,
        "held-back part (chosen by a hash of the file name before the signatures; read while collecting, so not blind)",
    )
    report(s, rest, "the rest")
    for commit in sorted({log.unseen for log in logs if log.unseen}):
        frozen = [log for log in logs if log.unseen == commit]
        report(s, frozen, f"collected after the signatures were frozen at {commit} (their first score: README)")
    for batch in sorted({log.batch for log in logs if log.batch}):
        report(
            s,
            [log for log in logs if log.batch == batch],
            f"set {batch} (held back: scored before the reader was changed for it)",
        )
        report(
            s, [log for log in logs if log.batch == batch], f"set {batch} per category", key=lambda log: log.category
        )
        report(s, [log for log in logs if log.batch == batch], f"set {batch} per tool", key=lambda log: log.tool)
    report(s, [log for log in logs if not log.batch], "logs in no held-out set (collected before them)")
    report(s, logs, "per category", key=lambda log: log.category)
    report(s, logs, "per tool", key=lambda log: log.tool)
    total = Counter(s.outcomes.values())
    right = 100 * (total["first"] + total["anywhere"]) / len(logs)
    held_right = 100 * sum(s.outcomes[name(log)] in ("first", "anywhere") for log in held) / max(1, len(held))
    print(f"\nright anywhere: {right:.1f} % (held back: {held_right:.1f} %), wrong: {total['wrong']}   [{GOAL}]")
    for kind in ("wrong", "silent"):
        if getattr(args, kind):
            print(f"\n{kind}:")
            for log in logs:
                if s.outcomes[name(log)] == kind:
                    print(f"  {name(log)}  expected {log.expected}, got {s.codes[name(log)]}")
    assert set(total) <= set(OUTCOMES)


if __name__ == "__main__":
    main()
