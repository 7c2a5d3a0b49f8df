"""`yijian packs ...` as users run it: a bundle copy, a real subprocess, the fake nvidia-smi (or none) on PATH."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundle_copy import copy_bundle, run_cli
from tests.support.fake_nvidia_smi import Recording
from tests.support.packs import EXPECTED

FakeGpu = Callable[[str], Recording]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_bundle(tmp_path_factory.mktemp("packs-cli") / "bundle")


def explain_json(bundle: Path, *extra: str) -> dict[str, Any]:
    r = run_cli(bundle, "packs", "explain", "--json", *extra)
    assert r.returncode == 0, r.stderr + r.stdout
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def test_this_machine_without_nvidia_smi_gets_the_cpu_pack(bundle: Path, no_nvidia_smi: str) -> None:
    data = explain_json(bundle)
    assert data["chosen"]["id"] == "cpu" and data["chosen"]["cuda"] == "cpu"
    assert data["chosen"]["torch"] == "2.13.0+cpu" and data["hardware"]["source"] == "none"
    assert {r["id"] for r in data["rejected"]} == {"cu130", "cu128", "cu126", "cu126-legacy", "cu118"}
    assert all(r["reasons"] == ["there is no NVIDIA GPU"] for r in data["rejected"])


@pytest.mark.parametrize(("recording", "pack"), sorted(EXPECTED.items()))
def test_explain_through_the_fake_nvidia_smi(bundle: Path, fake_gpu: FakeGpu, recording: str, pack: str) -> None:
    rec = fake_gpu(recording)
    data = explain_json(bundle, "--os", rec.os)
    assert data["chosen"]["id"] == pack
    assert data["hardware"]["os"] == rec.os
    assert data["hardware"]["driver_version"] == (rec.driver_version if rec.mode == "ok" else None)
    assert data["chosen"]["reasons"] and all(r["reasons"] for r in data["rejected"])
    for step in data["driver_gain"]:  # what a driver update would bring: a better pack, never the chosen one
        assert step["pack"] != pack and step["driver"] and step["torch"] and step["cuda"]


def test_explain_in_chinese_for_people(bundle: Path, fake_gpu: FakeGpu) -> None:
    fake_gpu("gtx1060-472")
    r = run_cli(bundle, "--lang", "zh", "packs", "explain", "--os", "windows")
    assert r.returncode == 0, r.stderr
    assert "选择：cu118" in r.stdout and "驱动 472.12 支持 CUDA 11.4，显卡 GTX 1060 6GB 是 sm_61" in r.stdout
    assert "驱动 ≥ 528.33 可以用 cu126" in r.stdout and "cu126: 驱动 472.12 低于" in r.stdout
    gain = r.stdout.split("更新显卡驱动可以得到（不更新也能用）：")[1].split("注意：")[0]  # its own section, not a warning
    assert "  - 驱动 ≥ 528.33 可以用 cu126：torch 2.14.1 / CUDA 12.6" in gain


def test_explain_a_hypothetical_machine(bundle: Path, no_nvidia_smi: str) -> None:
    data = explain_json(bundle, "--driver", "572.16", "--cc", "12.0", "--os", "windows", "--cuda-driver", "12.8")
    assert data["chosen"]["id"] == "cu128" and data["hardware"]["source"] == "given"
    assert explain_json(bundle, "--gpu", "GTX 1060", "--driver", "560.94")["chosen"]["id"] == "cu126"
    assert explain_json(bundle, "--gpu", "none")["chosen"]["id"] == "cpu"
    r = run_cli(bundle, "packs", "explain", "--gpu", "Mystery 9000", "--driver", "560.94")
    assert r.returncode == 2 and "--cc" in r.stderr
    assert run_cli(bundle, "packs", "explain", "--cc", "8.6").returncode == 2  # no driver given


def test_list_and_show(bundle: Path) -> None:
    r = run_cli(bundle, "packs", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert [p["id"] for p in json.loads(r.stdout)["packs"]] == ["cu130", "cu128", "cu126", "cu126-legacy", "cu118", "cpu"]
    r = run_cli(bundle, "packs", "show", "cu118", "--json")
    shown = json.loads(r.stdout)
    assert shown["pins"]["windows"] == ["torch==2.7.1+cu118", "torchvision==0.22.1+cu118"]
    assert "diffusers==0.42.1" in shown["runtime_requirements"] and shown["min_driver"]["windows"] == "452.39"
    r = run_cli(bundle, "packs", "show", "cu126-legacy")
    assert r.returncode == 0 and "xformers" in r.stdout and "Maxwell" in r.stdout
    shown = json.loads(run_cli(bundle, "packs", "show", "cpu", "--json").stdout)
    assert shown["pins"]["linux"] == ["torch==2.13.0+cpu"] and shown["optional_pins"]["linux"] == ["torchvision==0.28.0+cpu"]
    r = run_cli(bundle, "packs", "show", "cu130")
    assert "0.0.35 (optional: kept where it installs and passes the self-check)" in r.stdout


def test_unknown_pack_is_a_usage_error(bundle: Path) -> None:
    r = run_cli(bundle, "packs", "show", "cu126-leg", "--json")
    assert r.returncode == 2
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "PACK_UNKNOWN" and "cu126-legacy" in error["message"]


def test_a_broken_pack_file_is_reported(tmp_path: Path) -> None:
    broken = copy_bundle(tmp_path / "bundle")
    path = broken / "packs" / "cu128.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("priority = 40", 'priority = "high"'), encoding="utf-8")
    r = run_cli(broken, "packs", "list")
    assert r.returncode == 6 and "PACK_INVALID" in r.stderr and "cu128.toml: priority" in r.stderr
