"""How long `mirrors test` takes over the whole catalog.

Every candidate is probed at once, so the whole test should take about one
probe timeout, however many mirrors are unreachable: the goal is at most
the probe timeout + 0.5 s, including the process start.

    python benchmarks/mirrors_test.py [--timeout 3] [--runs 3]

Prints, per run, the wall time of `./start.sh mirrors test --json` and how
many mirrors answered, failed fast (DNS, refused) or ran into the timeout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    walls = []
    for i in range(args.runs):
        start = time.perf_counter()
        out = subprocess.run([str(ROOT / "start.sh"), "mirrors", "test", "--json", "--timeout", str(args.timeout)],
                             capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)  # fmt: skip
        wall = time.perf_counter() - start
        walls.append(wall)
        results = json.loads(out.stdout)["results"]
        ok = sum(r["ok"] for r in results)
        timed_out = sum(r["error"] == "timed out" for r in results)
        print(f"run {i + 1}: {wall:5.2f} s wall for {len(results)} mirrors "
              f"({ok} ok, {timed_out} timed out, {len(results) - ok - timed_out} failed fast)")  # fmt: skip
    worst = max(walls)
    print(f"probe timeout {args.timeout:.1f} s; median {statistics.median(walls):.2f} s; worst {worst:.2f} s; "
          f"goal <= {args.timeout + 0.5:.1f} s: {'met' if worst <= args.timeout + 0.5 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
