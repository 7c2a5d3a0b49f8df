"""How much a start costs when nothing needs installing.

Prints the median wall time of, over N runs:
  - ./start.sh --help          (the whole chain: shell script, stage 0, launcher)
  - python -m launcher --help  (the launcher alone, in env/launcher)
  - python -c pass             (the interpreter alone)
The difference between the first two is what start.sh and stage 0 add; the
goal is at most 1 s (in practice it should be tens of milliseconds).

    python benchmarks/start_overhead.py [--runs 10] [--home DIR]

With --home, the bundle's data root is DIR (YIJIAN_HOME); its first start
(building env/launcher) is done before timing and is not counted.
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
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    env = dict(os.environ)
    if args.home:
        env["YIJIAN_HOME"] = str(args.home.resolve())
    home = Path(env.get("YIJIAN_HOME", ROOT))
    subprocess.run([str(ROOT / "start.sh"), "--help"], env=env, stdout=subprocess.DEVNULL, check=True)  # warm-up
    py = home / "env" / "launcher" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    launcher_env = {**env, "PYTHONPATH": str(ROOT)}
    chain = median_wall([str(ROOT / "start.sh"), "--help"], env, args.runs)
    alone = median_wall([str(py), "-s", "-m", "launcher", "--help"], launcher_env, args.runs)
    bare = median_wall([str(py), "-c", "pass"], env, args.runs)
    print(f"runs: {args.runs} (median), python {sys.version.split()[0]}")
    print(f"./start.sh --help            {chain * 1000:7.1f} ms")
    print(f"python -m launcher --help    {alone * 1000:7.1f} ms")
    print(f"python -c pass               {bare * 1000:7.1f} ms")
    print(f"start.sh + stage 0 overhead  {(chain - alone) * 1000:7.1f} ms  (goal: <= 1000 ms)")


if __name__ == "__main__":
    main()
