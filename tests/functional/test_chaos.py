"""The chaos soak on a small N: it runs one-click through broken mirrors, completes, and reports what it saw.

``benchmarks/chaos.py -n 2 --jobs 2 --seed 1``: both runs at once, each with its own proxies
(seed 1 draws a kill -9 in at least one run).
The outcomes depend on the code under test (the soak measures them; it does not require them):
this checks that the soak finishes, that its figures add up, that a seed replays the same
faults, and that every run that ended otherwise keeps its log.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.chaos_network import torch_wheel
from tests.support.hermetic import MACHINE_WHEELS, REPO

pytestmark = pytest.mark.slow

SEED, N = 1, 2


@pytest.mark.timeout(1800)  # two whole one-click runs from fresh bundles, each several minutes on a busy machine
@pytest.mark.skipif(torch_wheel() is None, reason="no torch-2.13.0+cpu wheel in the machine's wheel folder")
def test_a_small_soak_completes_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "chaos.py"), "-n", str(N), "--seed", str(SEED),
            "--work", str(tmp_path / "work"), "--json", str(out), "--torch-wheels", MACHINE_WHEELS, "--jobs", "2"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout
    assert f"chaos soak: {N} runs, seed {SEED} (replay: --seed {SEED} -n {N}; 2 at a time)" in text
    assert "re-fetched after kills: " in text
    for label in ("fault kind", "ready+image", "right finding", "otherwise", "corrupt", "broken env", "re-fetched"):
        assert label in text
    assert (
        "goal: >= 99 % of 100 runs end ready or with the right finding; 0 corrupt files; 0 broken environments" in text
    )
    assert "seconds per run: mean" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[1] == str(N)

    report = json.loads(out.read_text(encoding="utf-8"))
    runs = report["runs"]
    assert [run["n"] for run in runs] == list(range(N))
    assert sum(report["totals"].values()) == N
    assert (report["jobs"], report["planned"], report["finished"]) == (2, N, True)
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from chaos import Draw  # the soak's own draw, replayed from the seed
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    for run in runs:
        mirrors = {ch: tuple(ids) for ch, ids in report["mirrors"].items()}
        draw = Draw.make(random.Random(f"{SEED}:{run['n']}"), mirrors)
        assert run["faults"] == draw.faults and run["kill_at"] == draw.kill_at
        assert run["seconds"] > 0
        assert run["refetched"] == sum(f["bytes"] for f in run["refetched_files"])
        if run["outcome"] == "otherwise":
            assert run["log"] and Path(run["log"]).read_text(encoding="utf-8").strip(), run
    assert any(run["kill_at"] is not None for run in runs)  # seed 1 kills the launcher
