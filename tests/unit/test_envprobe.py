"""The environment probe survives every way an environment can be broken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.builder.install import uv_bin
from launcher.doctor.envprobe import probe_environment
from tests.support.plugin_index import Wheelhouse
from tests.support.wheels import ARCH_LISTS, CUDNN_VERSIONS, fake_xformers

pytestmark = pytest.mark.slow


def make_env(tmp_path: Path, name: str, *wheels: Path) -> Path:
    uv = uv_bin()
    assert uv is not None
    env = tmp_path / name
    base = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(env)], check=True, env=base)
    if wheels:
        subprocess.run([str(uv), "pip", "install", "-q", "--no-config", "--no-deps", "--python", str(env / "bin" / "python"),
                        *map(str, wheels)], check=True, env=base)  # fmt: skip
    return env


def test_a_healthy_cuda_environment(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    env = make_env(tmp_path, "good", *sorted(wheelhouse.variants["cu128"].glob("*.whl")))
    got = probe_environment(env, uv=uv_bin())
    assert got.state == "ok", got.detail
    f = got.facts
    assert (
        f["torch"]["version"] == "2.7.1+cu128"
        and f["torch"]["cuda"] == "12.8"
        and f["torch"]["cuda_available"] is False
    )
    assert f["torch"]["arch_list"] == list(ARCH_LISTS["12.8"]) and f["torch"]["cudnn"] == CUDNN_VERSIONS["12.8"]
    assert f["packages"]["xformers"] == "0.0.31" and f["xformers"]["version"] == "0.0.31" and f["xformers_stderr"] == ""
    assert got.pip_check == ""


def test_an_xformers_built_for_another_torch_shows_its_warning(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    torch = next(wheelhouse.variants["cu128"].glob("torch-*.whl"))
    wrong = fake_xformers(tmp_path / "w", "0.0.31", built_for_torch="2.7.1+cu126")
    got = probe_environment(make_env(tmp_path, "mismatch", torch, wrong))
    assert got.state == "ok"
    assert "xFormers was built for" in got.facts["xformers_stderr"] and "2.7.1+cu126" in got.facts["xformers_stderr"]


def test_cpu_torch_and_no_torch(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    cpu = probe_environment(make_env(tmp_path, "cpu", next(wheelhouse.variants["cpu"].glob("torch-*.whl"))))
    assert cpu.facts["torch"]["cuda"] is None and cpu.facts["packages"]["xformers"] is None
    none = probe_environment(make_env(tmp_path, "empty"))
    assert none.state == "ok" and "torch_error" in none.facts and none.facts["packages"]["torch"] is None


def _fake_interpreter(env: Path, body: str) -> None:
    py = env / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("#!/bin/sh\n" + body + "\n")
    py.chmod(0o755)


def test_missing_crashing_and_hanging_interpreters(tmp_path: Path) -> None:
    assert probe_environment(tmp_path / "nothing").state == "missing"
    crash = tmp_path / "crash"
    _fake_interpreter(crash, "echo 'ImportError: DLL load failed while importing _C' >&2; kill -SEGV $$")
    got = probe_environment(crash)
    assert got.state == "crashed" and "DLL load failed" in got.detail
    hang = tmp_path / "hang"
    _fake_interpreter(hang, "exec sleep 30")
    assert probe_environment(hang, timeout=0.5).state == "timeout"
    garbage = tmp_path / "garbage"
    _fake_interpreter(garbage, "echo 'YIJIAN-PROBE {not json'")
    assert probe_environment(garbage).state == "unreadable"
