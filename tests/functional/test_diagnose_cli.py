"""`yijian diagnose` from the command line: files, standard input, GBK logs, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.bundle_copy import copy_bundle, run_cli

LOGS = Path(__file__).resolve().parents[1] / "support" / "data" / "logs"


def test_json_names_the_code_and_values_and_the_exit_code_follows_severity(tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path / "b")
    r = run_cli(bundle, "diagnose", str(LOGS / "xformers-mismatch.log"), "--json")
    assert r.returncode == 1  # a warning only
    finding = json.loads(r.stdout)["findings"][0]
    assert set(finding) >= {"code", "severity", "title", "detail", "fix", "values"}
    assert finding["code"] == "XFORMERS_TORCH_MISMATCH" and finding["values"]["have_torch"] == "2.3.0+cu121"
    assert run_cli(bundle, "diagnose", str(LOGS / "rtx5090-cu121.log")).returncode == 2


def test_standard_input_and_a_gbk_log(tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path / "b")
    log = tmp_path / "console.log"
    log.write_bytes("模型加载失败\n".encode("gbk") + (LOGS / "cuda-oom.log").read_bytes())
    r = run_cli(bundle, "--lang", "zh", "diagnose", str(log))
    assert r.returncode == 2 and "CUDA_OOM" in r.stdout and "显存不足" in r.stdout
    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}
    env["PYTHONPATH"] = str(bundle)
    piped = subprocess.run([sys.executable, "-m", "launcher", "diagnose", "-", "--json"], input="all good\n", text=True,
                           capture_output=True, env=env, cwd=bundle)  # fmt: skip
    assert piped.returncode == 0 and json.loads(piped.stdout) == {"findings": []}


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli(copy_bundle(tmp_path / "b"), "diagnose", str(tmp_path / "nope.log"))
    assert r.returncode == 2 and "USAGE" in r.stderr and "nope.log" in r.stderr
