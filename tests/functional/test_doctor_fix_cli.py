"""`yijian doctor --fix`: settings changed with comments kept, a real (tiny) environment build, a failing fix that
leaves models, outputs, settings and the environment in use alone, and a live probe before and after."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundle_copy import copy_bundle, isolate_mirrors, run_cli
from tests.support.hf_endpoint import HfEndpoint
from tests.support.packs import TEST_PACK
from tests.support.plugin_index import Wheelhouse
from tests.support.plugin_mirrors import MirrorFarm
from tests.support.pypi_index import PackageIndex

pytestmark = pytest.mark.slow
LOGS = Path(__file__).resolve().parents[1] / "support" / "data" / "logs"


def fix(bundle: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli(bundle, "doctor", "--fix", *args, "--json")
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def outcome(report: dict[str, Any], action: str) -> dict[str, Any]:
    return next(f for f in report["fixes"] if f["action"] == action)


def hub_failed_when_measured(bundle: Path, url: str) -> None:
    (bundle / "cache").mkdir(exist_ok=True)
    saved = {"channels": {"huggingface": {"measured_at": time.time(), "results": [
        {"channel": "huggingface", "id": "huggingface", "url": url, "ok": False, "error": "timed out"}]}},
        "failures": []}  # fmt: skip
    (bundle / "cache" / "mirrors.json").write_text(json.dumps(saved), encoding="utf-8")


def test_the_hub_moves_to_hf_mirror_and_comments_stay(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    dead = isolate_mirrors(bundle)
    config = bundle / "config.toml"
    config.write_text('# my settings\n[mirrors]\nhuggingface = "huggingface"  # the official hub\n', encoding="utf-8")
    hub_failed_when_measured(bundle, f"{dead}/huggingface.co")
    rc, planned = fix(bundle, "--no-env", "--dry-run")
    assert planned["dry_run"] is True and outcome(planned, "use-hf-mirror")["status"] == "planned"
    assert 'huggingface = "huggingface"' in config.read_text(encoding="utf-8")  # a dry run changes nothing
    rc, report = fix(bundle, "--no-env")
    done = outcome(report, "use-hf-mirror")
    assert (done["status"], done["codes"], done["changes"]) == (
        "done", ["HF_UNREACHABLE"], ["mirrors.huggingface: huggingface -> hf-mirror"])  # fmt: skip
    text = config.read_text(encoding="utf-8")
    assert "# my settings" in text and 'huggingface = "hf-mirror"' in text and "# the official hub" in text
    assert report["fixed"] == ["HF_UNREACHABLE"] and "HF_UNREACHABLE" not in [f["code"] for f in report["findings"]]
    assert {f["status"] for f in report["fixes"] if f["action"] is None} == {"manual"}  # the info findings
    assert rc == 0


def test_an_oom_lowers_the_vram_preset_once(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    (bundle / "logs").mkdir()
    log = bundle / "logs" / "runtime-console.log"
    log.write_bytes((LOGS / "cuda-oom.log").read_bytes())
    r = run_cli(bundle, "doctor", "--no-env", "--fix")
    assert "[done] vram-medvram (CUDA_OOM)" in r.stdout and "launch.vram: auto -> medvram" in r.stdout, r.stdout
    assert "Fixed: CUDA_OOM" in r.stdout
    assert 'vram = "medvram"' in (bundle / "config.toml").read_text(encoding="utf-8")
    rc, report = fix(bundle, "--no-env")
    assert "CUDA_OOM" not in report["before"]  # the preset changed after that run: no escalation yet
    zh = run_cli(bundle, "--lang", "zh", "doctor", "--no-env", "--fix", "--dry-run").stdout
    assert "修复：" in zh and "[需手动] NO_NVIDIA_GPU" in zh


@pytest.fixture
def buildable(tmp_path: Path, package_index: PackageIndex, wheelhouse: Wheelhouse, no_nvidia_smi: str) -> Path:
    """A bundle whose only fitting pack is a tiny CPU one served by the local index (as test_setup_cli does)."""
    b = copy_bundle(tmp_path / "b")
    isolate_mirrors(b)
    (b / "packs" / "cpu.toml").unlink()  # `auto` then picks the test pack on this GPU-less machine
    (b / "packs" / "test-cpu.toml").write_text(
        TEST_PACK.format(py=f"{sys.version_info[0]}.{sys.version_info[1]}"), encoding="utf-8"
    )
    (b / "packs" / "test-runtime.txt").write_text("tinypkg==1.0\nneeds-torch==1.0\n", encoding="utf-8")
    (b / "config.toml").write_text(
        f'# mine\n[mirrors]\npypi = "{package_index.simple_url()}"\ntorch = "{wheelhouse.variants["cpu"]}"\n'
        '[setup]\npython = "system"\n',
        encoding="utf-8",
    )
    return b


def test_a_missing_environment_is_built(buildable: Path) -> None:
    rc, report = fix(buildable)
    built = outcome(report, "setup-auto")
    assert built["status"] == "done" and built["codes"] == ["ENV_MISSING"], built
    assert built["changes"] == ["runtime: built for pack test-cpu (torch 2.7.1+cpu)"]
    assert report["environment"]["state"] == "ok" and report["pack"] == "test-cpu"
    assert "ENV_MISSING" in report["fixed"] and rc == 0, report["findings"]


def test_a_failing_fix_leaves_models_outputs_settings_and_the_environment(buildable: Path, tmp_path: Path) -> None:
    python = buildable / "env" / "runtime" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nkill -SEGV $$\n")  # ENV_BROKEN: rebuild
    python.chmod(0o755)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    config = buildable / "config.toml"
    config.write_text(re.sub(r'torch = "[^"]*"', f'torch = "{empty}"', config.read_text(encoding="utf-8")),
                      encoding="utf-8")  # fmt: skip
    model = buildable / "models" / "Stable-diffusion" / "mine.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    image = buildable / "outputs" / "txt2img" / "00001.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x89PNG...")
    keep = {p: p.read_bytes() for p in (python, model, image, config)}
    rc, report = fix(buildable)
    failed = outcome(report, "rebuild")
    assert failed["status"] == "failed" and failed["error"]["code"] == "ENV_BUILD_FAILED" and rc == 6, failed
    assert "ENV_BROKEN" in failed["codes"] and "ENV_BROKEN" in [f["code"] for f in report["findings"]]
    assert {p: p.read_bytes() for p in keep} == keep  # nothing of the user's, and not the environment in use
    assert not (buildable / "env" / "runtime.new").exists()


def test_a_live_probe_finds_the_dead_hub_and_the_fix_is_checked_live(tmp_path: Path, hf_endpoint: HfEndpoint,
                                                                     mirror_farm: MirrorFarm) -> None:  # fmt: skip
    bundle = copy_bundle(tmp_path / "b")
    dead = isolate_mirrors(bundle)
    hf_endpoint.add_repo("openai-community/gpt2", {"config.json": b"{}"})  # the object the probe asks for
    catalog = bundle / "mirrors.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(f"{dead}/hf-mirror.com", hf_endpoint.url),
                       encoding="utf-8")  # fmt: skip
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.7.1+cpu-py3-none-any.whl").write_bytes(b"")
    (bundle / "config.toml").write_text(
        f'[mirrors]\npypi = "{mirror_farm.fast.simple_url()}"\ntorch = "{wheels}"\nhuggingface = "{dead}/hub"\n',
        encoding="utf-8",
    )
    rc, report = fix(bundle, "--no-env", "--network")
    assert report["before"][0] == "HF_UNREACHABLE" and "MIRROR_UNREACHABLE" not in report["before"]
    assert outcome(report, "use-hf-mirror")["status"] == "done"
    assert report["network"]["source"] == "live" and report["fixed"] == ["HF_UNREACHABLE"]
    hub = next(e for e in report["network"]["endpoints"] if e["channel"] == "huggingface")
    assert (hub["id"], hub["url"], hub["ok"]) == ("hf-mirror", hf_endpoint.url, True)
