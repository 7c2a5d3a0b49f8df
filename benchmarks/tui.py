"""First paint of the TUI: seconds from starting the launcher to the home page on a real terminal.

Goal (issue 8): the first paint comes at most 0.5 s after the launcher process
starts.  Measured black-box in tmux: the clock starts when tmux is told to run
the command and stops when ``capture-pane`` first shows the Start button's
words, polled every 5 ms.  Two ways in: ``python -m launcher`` in the dev
environment (the launcher process alone), and ``./start.sh`` from this
checkout (stage 0 handing over in-process to env/launcher when it exists).

    .venv/bin/python benchmarks/tui.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = "一键启动"
SOCKET = f"yijian-bench-{os.getpid()}"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True).stdout


def first_paint(command: str) -> float:
    tmux("kill-server")
    started = time.perf_counter()
    tmux("new-session", "-d", "-s", "b", "-x", "100", "-y", "30", command)
    deadline = started + 30
    while time.perf_counter() < deadline:
        if WORDS in tmux("capture-pane", "-t", "b", "-p"):
            elapsed = time.perf_counter() - started
            break
        time.sleep(0.005)
    else:
        elapsed = float("nan")
    tmux("send-keys", "-t", "b", "C-q")
    time.sleep(0.5)
    tmux("kill-server")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed for this benchmark")
        return 1
    cases = {"python -m launcher (launcher process alone)": f"cd {REPO} && {sys.executable} -m launcher --lang zh"}
    if (REPO / "env" / "launcher").exists():
        cases["./start.sh (stage 0 + handover)"] = f"cd {REPO} && ./start.sh --lang zh"
    first_paint(next(iter(cases.values())))  # warm the file cache
    print(f"first paint of the TUI, median of {args.runs} (goal: <= 0.5 s)")
    for name, command in cases.items():
        times = [first_paint(command) for _ in range(args.runs)]
        print(f"  {name:45s} {statistics.median(times):.3f} s   (runs: {', '.join(f'{t:.3f}' for t in times)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
