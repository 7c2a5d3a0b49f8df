"""How long the doctor takes.

Prints the median wall time of ``./start.sh doctor --no-env --json`` (goal:
at most 1 s) and of ``./start.sh doctor --json`` with the environment probe
(goal: torch's import time + 0.5 s), next to the time the environment's
Python needs to import torch.

    python benchmarks/doctor.py [--runs 5] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import median_wall  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    env = dict(os.environ)
    if args.home:
        env["YIJIAN_HOME"] = str(args.home.resolve())
    home = Path(env.get("YIJIAN_HOME", ROOT))
    start = [str(ROOT / "start.sh")]
    subprocess.run([*start, "--version"], env=env, stdout=subprocess.DEVNULL, check=True)
    no_env = median_wall([*start, "doctor", "--no-env", "--json"], env, args.runs, check=False)
    full = median_wall([*start, "doctor", "--json"], env, args.runs, check=False)
    py = home / "env" / "runtime" / "bin" / "python"
    torch_import = median_wall([str(py), "-c", "import torch"], env, args.runs, check=False) if py.exists() else None
    print(f"doctor --no-env:            {no_env:5.2f} s (goal <= 1 s)")
    print(f"doctor with the env probe:  {full:5.2f} s")
    if torch_import is not None:
        print(f"import torch in env/runtime: {torch_import:5.2f} s -> probe overhead {full - no_env - torch_import:+.2f} s "
              f"(goal <= +0.5 s)")  # fmt: skip
    else:
        print("no env/runtime here: run ./start.sh setup first to time the probe against torch's import")


if __name__ == "__main__":
    main()
