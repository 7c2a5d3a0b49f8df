"""What the command-line benchmarks share: the median wall time of a command."""

from __future__ import annotations

import statistics
import subprocess
import time


def median_wall(argv: list[str], env: dict[str, str], runs: int, *, check: bool = True) -> float:
    """Median seconds of ``runs`` runs of ``argv`` (output discarded)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
