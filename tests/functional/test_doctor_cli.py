"""`yijian doctor` against recorded GPUs and fake environments."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle, run_cli
from tests.support.plugin_index import Wheelhouse
from tests.support.wheels import fake_xformers

pytestmark = pytest.mark.slow


def runtime_with(bundle: Path, tmp_path: Path, *wheels: Path) -> Path:
    """A bundle's env/runtime holding exactly these wheels (fake torch etc.)."""
    uv = Path(sys.executable).parent / "uv"
    env = bundle / "env" / "runtime"
    base = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(env)], check=True, env=base)
    subprocess.run([str(uv), "pip", "install", "-q", "--no-config", "--no-deps", "--python", str(env / "bin" / "python"),
                    *map(str, wheels)], check=True, env=base)  # fmt: skip
    return env


def doctor(bundle: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = run_cli(bundle, "doctor", "--json")
    return r.returncode, json.loads(r.stdout)


def codes(report: dict) -> list[str]:  # type: ignore[type-arg]
    return [f["code"] for f in report["findings"]]


def test_this_machine_without_an_environment(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    rc, report = doctor(bundle)
    assert report["hardware"]["nvidia"]["gpus"] == [] and report["environment"]["state"] == "missing"
    assert {"ENV_MISSING", "NO_NVIDIA_GPU"} <= set(codes(report))
    assert all(set(f) >= {"code", "severity", "title", "detail", "fix", "values"} for f in report["findings"])
    assert rc == 1  # a warning (no environment yet), no error
    assert report["hardware"]["system"]["ram_total_mib"] > 0


def test_rtx_5090_with_a_cu121_environment(
    tmp_path: Path, wheelhouse: Wheelhouse, fake_gpu: Callable[[str], object]
) -> None:
    fake_gpu("rtx5090-572")
    bundle = copy_bundle(tmp_path / "b")
    runtime_with(bundle, tmp_path, *sorted(wheelhouse.variants["cu121"].glob("*.whl")))
    rc, report = doctor(bundle)
    first = report["findings"][0]
    assert (
        first["code"] == "GPU_ARCH_UNSUPPORTED"
        and first["values"]["sm"] == "sm_120"
        and first["action"] == "setup-auto"
    )
    assert "./start.sh setup --pack auto" in first["fix"]
    assert "TORCH_CUDA_UNAVAILABLE" not in codes(report)  # explained by the root cause
    assert rc == 2
    zh = run_cli(bundle, "--lang", "zh", "doctor")
    assert "当前 torch 不支持这张显卡" in zh.stdout and "RTX 5090 是 sm_120" in zh.stdout


def test_old_driver_cpu_torch_and_mismatched_xformers(
    tmp_path: Path, wheelhouse: Wheelhouse, fake_gpu: Callable[[str], object]
) -> None:
    fake_gpu("gtx1060-472")  # the driver supports CUDA 11.4
    bundle = copy_bundle(tmp_path / "old")
    runtime_with(bundle, tmp_path, *sorted(wheelhouse.variants["cu121"].glob("*.whl")))
    report = doctor(bundle)[1]
    assert codes(report)[0] == "DRIVER_TOO_OLD" and report["findings"][0]["values"]["driver_cuda"] == "11.4"
    fake_gpu("rtx3060-537")
    cpu = copy_bundle(tmp_path / "cpu")
    runtime_with(cpu, tmp_path, next(wheelhouse.variants["cpu"].glob("torch-*.whl")))
    assert codes(doctor(cpu)[1])[0] == "TORCH_CPU_BUILD"
    wrong = copy_bundle(tmp_path / "xf")
    torch = next(wheelhouse.variants["cu128"].glob("torch-*.whl"))
    runtime_with(wrong, tmp_path, torch, fake_xformers(tmp_path / "w", "0.0.31", built_for_torch="2.7.1+cu126"))
    found = {f["code"]: f for f in doctor(wrong)[1]["findings"]}
    assert found["XFORMERS_TORCH_MISMATCH"]["values"]["built_torch"] == "2.7.1+cu126"
    assert found["XFORMERS_TORCH_MISMATCH"]["action"] == "repair-xformers"


def test_a_crashing_environment_and_a_busy_port(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    py = bundle / "env" / "runtime" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("#!/bin/sh\necho 'ImportError: DLL load failed while importing _C' >&2\nkill -SEGV $$\n")
    py.chmod(0o755)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_cli(bundle, "config", "set", "launch.port", str(port)).returncode == 0
        rc, report = doctor(bundle)
    assert codes(report)[0] == "ENV_BROKEN" and "DLL load failed" in report["findings"][0]["detail"]
    assert "PORT_IN_USE" in codes(report) and rc == 2
