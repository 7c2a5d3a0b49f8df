"""`yijian doctor` gathering every kind of fact: NVML, a torch that cannot load, the model library, the last
runtime log, the user's environment, the saved mirror ranking and a live probe (`--network`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.functional.test_doctor_cli import runtime_with
from tests.support.bundle_copy import copy_bundle, isolate_mirrors, run_cli
from tests.support.fake_models import HTML_PAGE
from tests.support.fake_pynvml import install_fake_pynvml
from tests.support.plugin_index import Wheelhouse
from tests.support.plugin_mirrors import MirrorFarm
from tests.support.wheels import build_wheel

pytestmark = pytest.mark.slow
LOGS = Path(__file__).resolve().parents[1] / "support" / "data" / "logs"


def doctor(bundle: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    r = run_cli(bundle, "doctor", *args, "--json", env=env)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def by_code(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in report["findings"]}


def test_nvml_sees_the_gpu_without_nvidia_smi(tmp_path: Path, wheelhouse: Wheelhouse, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    stub = install_fake_pynvml(tmp_path / "nvml", "rtx5090-572")
    env = {"PYTHONPATH": f"{bundle}{os.pathsep}{stub}"}  # the fake pynvml shadows the environment's nvidia-ml-py
    rc, report = doctor(bundle, "--no-env", env=env)
    nv = report["hardware"]["nvidia"]
    assert (nv["source"], nv["driver_version"], nv["cuda_driver"]) == ("nvml", "572.16", "12.8")
    gpu = nv["gpus"][0]
    assert (gpu["name"], gpu["compute_capability"], gpu["memory_total_mib"]) == (
        "NVIDIA GeForce RTX 5090",
        "12.0",
        32607,
    )
    found = by_code(report)
    assert "NO_NVIDIA_GPU" not in found
    assert found["PYTHONPATH_SET"]["values"] == {"vars": f"PYTHONPATH={stub}"}  # true: only Yijian's own entry is not
    runtime_with(bundle, tmp_path, *sorted(wheelhouse.variants["cu121"].glob("*.whl")))
    rc, report = doctor(bundle, env=env)
    first = report["findings"][0]
    assert (first["code"], first["values"]["sm"], first["action"]) == ("GPU_ARCH_UNSUPPORTED", "sm_120", "setup-auto")
    assert rc == 2


def test_a_torch_whose_libraries_do_not_load(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    broken = build_wheel(
        tmp_path / "w",
        "torch",
        "2.7.1+cu128",
        files={
            "torch/__init__.py": (
                'raise ImportError("DLL load failed while importing _C: The specified module could not be found.")\n'
            )
        },
    )
    runtime_with(bundle, tmp_path, broken)
    rc, report = doctor(bundle)
    first = report["findings"][0]
    assert report["environment"]["state"] == "ok" and "DLL load failed" in report["environment"]["facts"]["torch_error"]
    assert first["code"] == "DLL_LOAD_FAILED" and first["values"]["module"] == "_C" and rc == 2
    assert "Visual C++" in first["fix"]


def test_the_library_the_last_run_and_the_users_environment(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    sd = bundle / "models" / "Stable-diffusion"
    (sd / "page.safetensors").write_bytes(HTML_PAGE)
    (sd / "old.ckpt").write_bytes(b"PK\x03\x04" + bytes(4096))
    (bundle / "logs").mkdir()
    (bundle / "logs" / "runtime-console.log").write_bytes((LOGS / "cuda-oom.log").read_bytes())
    user = {
        "YIJIAN_USER_PYTHONPATH": "/home/me/sd-scripts",
        "YIJIAN_USER_PYTHONHOME": "",
        "HF_ENDPOINT": "https://hf-mirror.com",
        "HF_HUB_DISABLE_XET": "",  # the sealed test environment sets it
    }
    rc, report = doctor(bundle, "--no-env", env=user)
    found = by_code(report)
    assert found["MODEL_FILE_CORRUPT"]["values"]["files"] == "Stable-diffusion/page.safetensors"
    assert found["UNSAFE_PICKLE_CHECKPOINT"]["values"]["files"] == "Stable-diffusion/old.ckpt"
    oom = found["CUDA_OOM"]
    assert oom["values"]["vram_gib"] == "6" and oom["action"] == "vram-medvram"  # the log's GPU: 6 GiB
    assert found["PYTHONPATH_SET"]["values"]["vars"] == "PYTHONPATH=/home/me/sd-scripts"
    assert found["HF_XET_BYPASSES_MIRROR"]["severity"] == "info"
    assert rc == 1  # warnings only
    zh = run_cli(bundle, "--lang", "zh", "doctor", "--no-env", env=user).stdout
    assert "有模型文件已损坏" in zh and "上次运行时显存不足" in zh and "显卡共 6 GB" in zh


def test_the_saved_ranking_is_read_and_the_network_flag_probes_now(tmp_path: Path, mirror_farm: MirrorFarm) -> None:
    bundle = copy_bundle(tmp_path / "b")
    dead = isolate_mirrors(bundle)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.7.1+cpu-py3-none-any.whl").write_bytes(b"")
    tls_on_plain_http = mirror_farm.fast.simple_url().replace("http://", "https://")
    (bundle / "config.toml").write_text(
        f'[mirrors]\npypi = "{tls_on_plain_http}"\ntorch = "{wheels}"\nhuggingface = "huggingface"\n', encoding="utf-8"
    )
    rc, report = doctor(bundle, "--no-env")
    assert report["network"]["source"] == "none"
    assert not {"SSL_ERROR", "MIRROR_UNREACHABLE", "HF_UNREACHABLE"} & set(by_code(report))
    (bundle / "cache").mkdir()
    saved = {"channels": {"huggingface": {"measured_at": time.time(), "results": [
        {"channel": "huggingface", "id": "huggingface", "url": f"{dead}/huggingface.co", "ok": False,
         "error": "timed out"}]}}, "failures": []}  # fmt: skip
    (bundle / "cache" / "mirrors.json").write_text(json.dumps(saved), encoding="utf-8")
    started = time.monotonic()
    rc, report = doctor(bundle, "--no-env")
    assert time.monotonic() - started < 5  # no probe: the saved ranking only
    assert report["network"]["source"] == "cache" and by_code(report)["HF_UNREACHABLE"]["action"] == "use-hf-mirror"
    assert "SSL_ERROR" not in by_code(report)
    rc, report = doctor(bundle, "--no-env", "--network")
    found = by_code(report)
    assert report["network"]["source"] == "live" and rc == 2
    assert found["SSL_ERROR"]["values"]["hosts"] == "127.0.0.1" and "TLS" in found["SSL_ERROR"]["values"]["reason"]
    assert found["HF_UNREACHABLE"]["values"]["reason"] == "connection refused"
    assert "MIRROR_UNREACHABLE" not in found  # the pypi failure is the certificate's, said once
