"""The pack chosen for recorded and described machines, the reasons in both languages, and the JSON contract."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher.errors import NoPackFits
from launcher.hardware.nvidia import Hardware, given_gpu, given_hardware, probe
from launcher.packs.catalog import load_packs
from launcher.packs.resolver import Choice, choose
from tests.support.fake_nvidia_smi import RECORDINGS, Recording
from tests.support.hermetic import REPO
from tests.support.packs import EXPECTED

PACKS = load_packs(REPO / "packs")
FakeGpu = Callable[[str], Recording]
CJK = re.compile(r"[\u4e00-\u9fff]")


def recorded(fake_gpu: FakeGpu, name: str) -> Choice:
    rec = fake_gpu(name)
    return choose(probe(os_name=rec.os, timeout=2.0), PACKS)


def described(os_name: str, driver: str, *gpus: str, cuda: str | None = None) -> Choice:
    return choose(given_hardware(os_name, driver, [given_gpu(g, index=i) for i, g in enumerate(gpus)], cuda), PACKS)


def rejected(choice: Choice, pack_id: str, lang: str = "en") -> str:
    return " | ".join(next(r for r in choice.rejected if r.id == pack_id).reasons(lang))


def codes(choice: Choice) -> set[str]:
    return {w.code for w in choice.warnings}




def test_every_recording_has_an_expected_pack() -> None:
    assert set(EXPECTED) == set(RECORDINGS)


@pytest.mark.parametrize(("recording", "pack"), sorted(EXPECTED.items()))
def test_the_pack_for_each_recorded_machine(fake_gpu: FakeGpu, recording: str, pack: str) -> None:
    choice = recorded(fake_gpu, recording)
    assert choice.chosen.id == pack
    assert {choice.chosen.id, *(r.id for r in choice.rejected)} == {p.id for p in PACKS.all()}
    for lang in ("zh", "en"):
        assert choice.reasons(lang) and all(r.reasons(lang) for r in choice.rejected)
    assert all(CJK.search(line) for line in choice.reasons("zh"))
    assert not any(CJK.search(line) for line in choice.reasons("en") + [w.en for w in choice.warnings])
    for r in choice.rejected:
        assert len(r.reasons_zh) == len(r.reasons_en) and not any(CJK.search(x) for x in r.reasons_en)


def test_rtx5090_reasons_read_like_the_plan(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "rtx5090-572")
    assert (
        choice.reasons("zh")[0]
        == "驱动 572.16 支持 CUDA 12.8，显卡 RTX 5090 是 sm_120 → 选 cu128（torch 2.10.0+cu128）"
    )
    assert choice.reasons("en")[0].startswith("Driver 572.16 supports CUDA 12.8, and the RTX 5090 is sm_120 → cu128")
    assert "xformers 0.0.34 runs on sm_120 (via PTX JIT)" in choice.reasons("en")
    assert "has no kernels for the RTX 5090 (sm_120)" in rejected(choice, "cu126-legacy")
    assert "sm_120" in rejected(choice, "cu126-legacy", "zh") and "ptx-jit" in codes(choice)


def test_gtx1060_on_an_old_driver_gets_cu118_and_driver_advice(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "gtx1060-472")
    assert rejected(choice, "cu126") == "driver 472.12 is older than the 528.33 it needs on Windows"
    cu128 = rejected(choice, "cu128")
    assert "528.33" in cu128 and "has no kernels for the GTX 1060 6GB (sm_61)" in cu128
    advice = next(w for w in choice.warnings if w.code == "driver-update")
    assert "with driver ≥ 528.33 you would get cu126: torch 2.14.1 / CUDA 12.6" in advice.en
    assert "works as it is; whether to update is up to you" in advice.en and "由你决定" in advice.zh
    assert [s.pack.id for s in choice.driver_gain] == ["cu126"]  # CUDA 13 has nothing for sm_61
    assert "xformers-missing" in codes(choice)  # no cu118 xformers on Windows
    assert choice.chosen.pins("windows") == ["torch==2.7.1+cu118", "torchvision==0.22.1+cu118"]


def test_a_mixed_pair_needs_a_pack_for_both_cards(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "dual-3090-1080ti-560")
    assert "cannot run the GTX 1080 Ti (sm_61), while cu126 runs every GPU" in rejected(choice, "cu128")
    assert any("main GPU is GPU 0, the RTX 3090" in line for line in choice.reasons("en"))
    assert choice.unsupported_gpus == ()


def test_modern_cards_prefer_cu128_and_say_why_the_others_lost(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "rtx3060-537")
    assert rejected(choice, "cu126-legacy") == "would work, but cu128 ranks higher (40 > 20, torch 2.10.0+cu128)"
    assert rejected(choice, "cu130") == "driver 537.58 is older than the 580 it needs on Windows"
    assert "far faster" in rejected(choice, "cpu") and codes(choice) == {"driver-update"}
    gain = next(w for w in choice.warnings if w.code == "driver-update")
    assert gain.en == ("The driver is 537.58: with driver ≥ 580 you would get cu130: torch 2.15.0 / CUDA 13.0. "
                       "The current choice, cu128, works as it is; whether to update is up to you.")  # fmt: skip


def test_nvidia_smi_problems_fall_back_to_cpu_with_the_cause(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "driver-not-loaded")
    assert "couldn't communicate" in rejected(choice, "cu128") and "nvidia-smi-failed" in codes(choice)
    assert "cuda-library-missing" in codes(recorded(fake_gpu, "gtx1660-550-nocuda"))


@pytest.mark.parametrize(
    ("os_name", "driver", "gpu", "pack"),
    [
        ("windows", "560.94", "GeForce GTX 1060 6GB", "cu126"),  # Pascal: torch 2.14 beats torch 2.7 + xformers
        ("windows", "581.57", "GeForce GTX 1060 6GB", "cu126"),  # R580 does not help Pascal: no CUDA 13 for sm_61
        ("linux", "550.54.15", "Tesla V100-SXM2-16GB", "cu128"),  # torch 2.10 still has sm_70
        ("linux", "560.35.03", "GeForce GTX 970", "cu126"),  # Maxwell
        ("linux", "580.65.06", "GeForce RTX 3090", "cu130"),  # exactly the CUDA 13 floor
        ("linux", "575.57.08", "GeForce RTX 5090", "cu128"),  # Blackwell below R580
        ("windows", "581.57", "GeForce RTX 5090", "cu130"),
        ("linux", "470.82.01", "GeForce GTX 970", "cu118"),
        ("linux", "525.60.13", "GeForce RTX 3090", "cu128"),  # exactly the floor
        ("windows", "528.24", "GeForce RTX 3090", "cu118"),  # just below it
    ],
)
def test_described_machines(os_name: str, driver: str, gpu: str, pack: str) -> None:
    assert described(os_name, driver, gpu).chosen.id == pack


def test_old_cards_get_the_newest_torch_and_hear_what_xformers_would_need() -> None:
    volta = described("linux", "550.54.15", "Tesla V100-SXM2-16GB")
    assert rejected(volta, "cu126-legacy") == (
        "would work (with xformers 0.0.30 on sm_70), but cu128 ranks higher (40 > 20, torch 2.10.0+cu128)"
    )
    maxwell = described("linux", "560.35.03", "GeForce GTX 970")
    assert "xformers-missing" in codes(maxwell) and "has no kernels for the GTX 970 (sm_52)" in rejected(
        maxwell, "cu128"
    )
    assert maxwell.driver_gain == ()  # no newer driver brings a better pack to Maxwell


def test_no_card_fits_every_gpu_then_the_main_one_decides() -> None:
    hw = given_hardware("windows", "572.16", [given_gpu("GeForce GTX 1080", memory_total_mib=8192),
                                              given_gpu("RTX 5090", memory_total_mib=32607, index=1)])  # fmt: skip
    choice = choose(hw, PACKS)
    assert choice.chosen.id == "cu128" and [g.index for g in choice.unsupported_gpus] == [0]
    assert "gpu-unsupported" in codes(choice)


def test_a_gpu_no_pack_can_run_falls_back_to_cpu_with_advice() -> None:
    choice = described("windows", "472.12", "RTX 5090")  # impossible in practice: RTX 50 needs R570
    assert choice.chosen.id == "cpu" and {"cpu-fallback", "driver-update"} <= codes(choice)
    gain = next(w.en for w in choice.warnings if w.code == "driver-update")
    assert "≥ 528.33 you would get cu128" in gain and "≥ 580 you would get cu130" in gain and "instead of the CPU" in gain


def test_no_pack_fits_raises_with_every_reason() -> None:
    with pytest.raises(NoPackFits) as info:
        choose(Hardware("linux", "none"), PACKS, available_pythons={"3.10", "3.12"})
    message = info.value.message("en")
    assert "needs Python 3.11; only 3.10, 3.12 is here" in message and "cpu:" in message
    assert info.value.exit_code == 6 and "没有适合" in info.value.message("zh")
    with pytest.raises(NoPackFits, match="not made for macOS"):
        choose(Hardware("macos", "none"), PACKS)
    assert choose(Hardware("linux", "none"), PACKS, available_pythons={"3.11"}).chosen.id == "cpu"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_json_contract(fake_gpu: FakeGpu, lang: str) -> None:
    data = json.loads(json.dumps(recorded(fake_gpu, "rtx4090-552").to_json(lang)))
    assert {"hardware", "chosen", "rejected"} <= set(data)
    chosen = data["chosen"]
    assert {"id", "python", "torch", "torchvision", "xformers", "cuda"} <= set(chosen)
    assert (chosen["id"], chosen["cuda"], chosen["python"]) == ("cu128", "cu128", "3.11")
    assert (chosen["torch"], chosen["torchvision"], chosen["xformers"]) == ("2.10.0+cu128", "0.25.0+cu128", "0.0.34")
    assert [r["id"] for r in data["rejected"]] == ["cu130", "cu126", "cu126-legacy", "cu118", "cpu"]
    assert [(g["pack"], g["driver"], g["cuda"]) for g in data["driver_gain"]] == [("cu130", "580", "13.0")]
    assert all(r["reasons"] and all(isinstance(x, str) for x in r["reasons"]) for r in data["rejected"])
    hw = data["hardware"]
    assert (hw["os"], hw["driver_version"], hw["cuda_driver"], hw["source"]) == (
        "windows",
        "552.22",
        "12.4",
        "nvidia-smi",
    )
    assert hw["gpus"][0]["compute_capability"] == "8.9" and hw["gpus"][0]["memory_total_mib"] == 24564
    assert bool(CJK.search(" ".join(chosen["reasons"]))) == (lang == "zh")


def test_json_for_the_cpu_pack_uses_null_for_what_it_lacks(fake_gpu: FakeGpu) -> None:
    data = recorded(fake_gpu, "absent").to_json("en")
    assert (data["chosen"]["torchvision"], data["chosen"]["xformers"], data["chosen"]["cuda"]) == (
        "0.28.0+cpu", None, "cpu")  # fmt: skip
    assert data["chosen"]["pins"] == ["torch==2.13.0+cpu"] and data["chosen"]["optional_pins"] == ["torchvision==0.28.0+cpu"]
    assert data["hardware"]["gpus"] == [] and data["hardware"]["source"] == "none"


def test_cuda_13_drivers_get_cu130_on_both_systems(fake_gpu: FakeGpu) -> None:
    linux = recorded(fake_gpu, "rtx5090-4090-580")
    assert linux.reasons("en")[0].startswith("Driver 580.82.09 supports CUDA 13.0, and the RTX 5090 is sm_120 → cu130")
    assert "xformers 0.0.35 runs on sm_120" in linux.reasons("en")  # native 12.0a: no ptx-jit advice
    assert "ptx-jit" not in codes(linux) and linux.driver_gain == () and linux.unsupported_gpus == ()
    windows = recorded(fake_gpu, "rtx2080super-610")  # R610 prints "CUDA UMD Version: 13.3"
    assert windows.chosen.id == "cu130" and windows.hardware.cuda_driver == "13.3"
    assert "cuda-library-missing" not in codes(windows)


def test_blackwell_under_wsl_is_told_what_r580_would_bring(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "rtx5090-wsl-572")
    assert rejected(choice, "cu130") == "driver 572.70 is older than the 580.65.06 it needs on Linux"
    assert [(s.pack.id, s.driver) for s in choice.driver_gain] == [("cu130", "580.65.06")]
    assert "xformers 0.0.35 with native sm_120 kernels (no PTX JIT)" in choice.driver_gain[0].text("en")


def test_pascal_on_a_driver_too_old_for_any_pack_hears_both_steps(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "titanxp-450")
    assert choice.chosen.id == "cpu" and {"cpu-fallback", "driver-update"} <= codes(choice)
    assert [(s.pack.id, s.driver) for s in choice.driver_gain] == [("cu118", "450.80.02"), ("cu126", "525.60.13")]
    gain = next(w for w in choice.warnings if w.code == "driver-update")
    assert "generation on the TITAN Xp instead of the CPU" in gain.en and "在 TITAN Xp 上生成" in gain.zh
    assert "Until then the CPU is used" in gain.en


def test_pascal_datacenter_card_gets_torch_2_14(fake_gpu: FakeGpu) -> None:
    choice = recorded(fake_gpu, "teslap4-550")
    assert choice.chosen.pins("linux") == ["torch==2.14.1+cu126", "torchvision==0.29.1+cu126"]
    assert "would work (with xformers 0.0.30 on sm_61), but cu126 ranks higher" in rejected(choice, "cu126-legacy")
    assert "xformers-missing" in codes(choice) and choice.driver_gain == ()  # CUDA 13 never runs sm_61


def test_packs_of_equal_priority_say_what_broke_the_tie(tmp_path: Path) -> None:
    folder = tmp_path / "packs"
    shutil.copytree(REPO / "packs", folder)
    legacy = folder / "cu126-legacy.toml"  # same priority as cu126: xformers decides for a GTX 1060
    legacy.write_text(legacy.read_text(encoding="utf-8").replace("priority = 20", "priority = 30"), encoding="utf-8")
    hw = given_hardware("windows", "560.94", [given_gpu("GeForce GTX 1060 6GB")])
    choice = choose(hw, load_packs(folder))
    assert choice.chosen.id == "cu126-legacy"
    assert rejected(choice, "cu126") == "would work, but has no xformers on this OS; cu126-legacy has"
