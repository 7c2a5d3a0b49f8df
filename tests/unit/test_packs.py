"""Every shipped pack against the facts in ../shared/knowledge/compat-and-mirrors.md §1-3 and its third check
(2026-12-07), and the pack loader.

The tables below copy the facts the packs rely on (xformers' exact torch pin, CUDA variants per OS and architecture
lists; torch's torchvision, Python range, variants and architectures; the driver floors), each with the row it comes
from, so a pack edited into an impossible combination fails here before any user downloads 2 GB of it.  Rows read
on PyPI on 2026-12-08 (torchvision 0.29.1 / 0.29.2 uploaded with torch 2.14.1 / 2.15.0) say so.
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib.metadata import requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from launcher.errors import PackFileInvalid, UnknownPack
from launcher.packs.catalog import Pack, coverage, load_packs, parse_arch, version_tuple
from tests.support.hermetic import MACHINE_WHEELS, REPO

PACKS = load_packs(REPO / "packs")
GPU_PACKS = [p for p in PACKS.all() if p.uses_gpu]

# xformers -> exact torch, CUDA variants per OS, Python range (None: no upper bound), arch of its cu11x/cu12x builds.
XFORMERS = {
    "0.0.30": {"torch": "2.7.0", "linux": {"cu118", "cu126", "cu128"}, "windows": {"cu126", "cu128"},
               "python": ("3.9", "3.12"), "arch": ["6.0", "7.0", "7.5", "8.0"], "ptx": ["6.0", "8.0"]},
    "0.0.31": {"torch": "2.7.1", "linux": {"cu118", "cu126", "cu128"}, "windows": {"cu126", "cu128"},
               "python": ("3.9", None), "arch": ["7.5", "8.0"], "ptx": ["8.0"]},
    "0.0.34": {"torch": "2.10.0", "linux": {"cu126", "cu128", "cu130"}, "windows": {"cu126", "cu128", "cu130"},
               "python": ("3.9", None), "arch": ["7.5", "8.0"], "ptx": ["8.0"]},
    # §1 row 0.0.35 and third check 6: requires torch>=2.10 (no exact pin), stable ABI; "loads on later torch" is S,
    # so a pack pairing it with a later torch must mark it optional (kept only if the self-check proves it).
    "0.0.35": {"torch": ">=2.10", "linux": {"cu126", "cu128", "cu130"}, "windows": {"cu126", "cu128", "cu130"},
               "python": ("3.9", None), "arch": ["7.5", "8.0"], "ptx": ["8.0"]},
}  # fmt: skip
CU12_EXTRA_ARCH = ["9.0a"]  # the cu12x builds of xformers 0.0.27+ add Hopper's arch-specific SASS  [§1 V]
CU13_EXTRA_ARCH = ["9.0a", "10.0a", "10.3a", "11.0a", "12.0a", "12.1a"]  # cu130 builds of 0.0.33+  [§1 row 0.0.33 V]
# torch -> torchvision, CUDA variants, Python range.
TORCH = {
    "2.7.0": {"torchvision": "0.22.0", "cuda": {"cu118", "cu126", "cu128"}, "python": ("3.9", "3.13")},
    "2.7.1": {"torchvision": "0.22.1", "cuda": {"cu118", "cu126", "cu128"}, "python": ("3.9", "3.13")},
    "2.10.0": {"torchvision": "0.25.0", "cuda": {"cu126", "cu128", "cu129", "cu130"}, "python": ("3.10", "3.14")},
    "2.13.0": {"torchvision": "0.28.0", "cuda": {"cu126", "cu130", "cpu"}, "python": ("3.10", "3.14")},
    # third check 1, 2 (cu126 legacy/cu130/cu132 for 2.12-2.14), 7 (0.29.x needs torch >= 2.14); pairing: PyPI 2026-12-08
    "2.14.1": {"torchvision": "0.29.1", "cuda": {"cu126", "cu130", "cu132"}, "python": ("3.10", "3.14")},
    # third check 1 (Python >= 3.11), 2 (cu130 and cu132 only); pairing: PyPI 2026-12-08 (0.29.2, torch>=2.14.0)
    "2.15.0": {"torchvision": "0.29.2", "cuda": {"cu130", "cu132"}, "python": ("3.11", "3.15")},
}
# (torch major.minor, variant) -> TORCH_CUDA_ARCH_LIST of the Linux build (§2.2).
TORCH_ARCH = {
    ("2.7", "cu118"): ["3.7", "5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"],
    ("2.7", "cu126"): ["5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"],
    ("2.10", "cu128"): ["7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0"],
    ("2.14", "cu126"): ["5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"],  # §2.2 row "2.6-2.14 cu126" V
    ("2.15", "cu130"): ["7.5", "8.0", "8.6", "9.0", "10.0", "12.0"],  # §2.2 row "2.9+ cu130" (+PTX Linux only) V
}
# CUDA major -> (Linux, Windows) driver floor under minor-version compatibility (§3; 13.x: >= 580, Linux 13.0 GA
# 580.65.06, no Windows toolkit driver listed, so any R580).
DRIVER_FLOOR = {11: ("450.80.02", "452.39"), 12: ("525.60.13", "528.33"), 13: ("580.65.06", "580.0")}


def base(v: str) -> str:
    return v.split("+", 1)[0]


def in_range(python: str, low: str, high: str | None) -> bool:
    return Version(low) <= Version(python) and (high is None or Version(python) <= Version(high))


def test_the_shipped_packs_are_there_best_first() -> None:
    assert [p.id for p in PACKS.all()] == ["cu130", "cu128", "cu126", "cu126-legacy", "cu118", "cpu"]
    assert {p.runtime for p in PACKS.all()} == {"runtime.txt"}, "one runtime set, tested once"


@pytest.mark.parametrize("pack", GPU_PACKS, ids=lambda p: p.id)
def test_xformers_is_built_for_exactly_this_torch_and_variant(pack: Pack) -> None:
    for os_name in pack.os:
        xf = pack.xformers_for(os_name)
        if not xf:
            continue
        facts = XFORMERS[xf]
        if str(facts["torch"]).startswith(">="):  # no exact pin: allowed, but unproven on a later torch
            assert Version(base(pack.torch)) >= Version(str(facts["torch"])[2:])
            if Version(base(pack.torch)) > Version(str(facts["torch"])[2:]):
                assert "xformers" in pack.optional, f"xformers {xf} on torch {pack.torch} must be proven: optional"
        else:
            assert facts["torch"] == base(pack.torch), f"xformers {xf} pins torch=={facts['torch']}"
        assert pack.cuda in facts[os_name], f"no {pack.cuda} wheel of xformers {xf} for {os_name}"
    # A variant missing on one OS must be declared, never silently pinned.
    for os_name in pack.os:
        xf = pack.xformers_for(os_name)
        if pack.xformers and not xf:
            assert pack.cuda not in XFORMERS[pack.xformers][os_name]


@pytest.mark.parametrize("pack", PACKS.all(), ids=lambda p: p.id)
def test_torch_variant_torchvision_and_python(pack: Pack) -> None:
    facts = TORCH[base(pack.torch)]
    assert pack.torch == f"{base(pack.torch)}+{pack.cuda}" and pack.cuda in facts["cuda"]
    if pack.torchvision:
        assert pack.torchvision == f"{facts['torchvision']}+{pack.cuda}"
    assert in_range(pack.python, *facts["python"])
    for xf in {pack.xformers_for(o) for o in pack.os} - {""}:
        assert in_range(pack.python, *XFORMERS[xf]["python"])


@pytest.mark.parametrize("pack", GPU_PACKS, ids=lambda p: p.id)
def test_architecture_lists_match_the_builds(pack: Pack) -> None:
    torch_minor = ".".join(base(pack.torch).split(".")[:2])
    assert list(pack.torch_arch) == TORCH_ARCH[(torch_minor, pack.cuda)]
    assert pack.torch_ptx == ()  # none of these Linux builds carries +PTX (§2.2)
    if not pack.xformers:
        assert pack.xformers_arch == () == pack.xformers_ptx
        return
    facts = XFORMERS[pack.xformers]
    extra = CU12_EXTRA_ARCH if pack.cuda.startswith("cu12") else CU13_EXTRA_ARCH if pack.cuda.startswith("cu13") else []
    assert list(pack.xformers_arch) == facts["arch"] + extra
    assert list(pack.xformers_ptx) == facts["ptx"]


@pytest.mark.parametrize("pack", GPU_PACKS, ids=lambda p: p.id)
def test_driver_minimums_are_the_minor_version_floors(pack: Pack) -> None:
    major = pack.cuda_version[0] if pack.cuda_version else 0
    assert (pack.min_driver("linux"), pack.min_driver("windows")) == DRIVER_FLOOR[major]


def test_the_packs_divide_the_gpu_families_as_planned() -> None:
    legacy, cu128, cu118 = PACKS.require("cu126-legacy"), PACKS.require("cu128"), PACKS.require("cu118")
    cu126, cu130 = PACKS.require("cu126"), PACKS.require("cu130")
    for cc in [(5, 0), (5, 2), (6, 0), (6, 1), (7, 0)]:  # Maxwell, Pascal, Volta: cu126 only, never CUDA 13
        assert cu126.torch_coverage(cc) == "sass" and cu130.torch_coverage(cc) == "none"
    assert cu126.xformers == ""  # no xformers since 0.0.31 covers them (§1)
    for cc in [(7, 5), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0), (12, 1)]:  # Turing to Blackwell and GB10
        assert cu130.torch_coverage(cc) == "sass"
    assert cu130.xformers_coverage((12, 0), "windows") == "sass"  # native 12.0a, no PTX JIT
    assert version_tuple(cu130.min_driver("linux")) >= (580,) and version_tuple(cu130.min_driver("windows")) >= (580,)
    assert cu130.priority > cu128.priority > cu126.priority > legacy.priority > cu118.priority
    for cc in [(5, 0), (5, 2), (6, 0), (6, 1), (7, 0)]:  # Maxwell, Pascal, Volta
        assert legacy.torch_coverage(cc) == "sass"
    for cc in [(6, 1), (7, 0)]:
        assert legacy.xformers_coverage(cc, "windows") == "sass"
    assert legacy.xformers_coverage((5, 2), "linux") == "none" and "Maxwell" in legacy.notes_en
    for cc in [(7, 5), (8, 6), (8, 9), (9, 0), (12, 0)]:  # Turing to RTX 50
        assert cu128.torch_coverage(cc) == "sass"
    assert cu128.torch_coverage((6, 1)) == "none"
    assert cu128.xformers_coverage((12, 0), "windows") == "ptx"  # compute_80 PTX, JIT-compiled
    assert legacy.torch_coverage((12, 0)) == "none" == cu118.torch_coverage((12, 0))
    assert version_tuple(cu118.min_driver("linux")) < version_tuple(cu128.min_driver("linux"))


def test_cpu_pack_is_buildable_on_this_machine() -> None:
    cpu = PACKS.require("cpu")
    assert cpu.pins("linux") == ["torch==2.13.0+cpu"] and cpu.xformers == ""
    assert cpu.optional_pins("linux") == ["torchvision==0.28.0+cpu"] == cpu.optional_pins("windows")
    assert cpu.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (cpu.min_driver("linux"), cpu.torch_coverage((8, 6))) == ("", "none")
    folder = Path(MACHINE_WHEELS) if MACHINE_WHEELS else None
    if folder is None or not folder.is_dir():
        pytest.skip("no local wheel folder (PIP_FIND_LINKS) on this machine")
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert list(folder.glob(f"torch-{cpu.torch}-{tag}-{tag}-*.whl")), f"{cpu.torch} is not in {folder}"


def test_pins_and_per_os_xformers() -> None:
    cu128, cu118 = PACKS.require("cu128"), PACKS.require("cu118")
    assert cu128.pins("windows") == ["torch==2.10.0+cu128", "torchvision==0.25.0+cu128", "xformers==0.0.34"]
    assert cu118.pins("linux")[-1] == "xformers==0.0.31"
    assert cu118.pins("windows") == ["torch==2.7.1+cu118", "torchvision==0.22.1+cu118"]
    assert (cu118.min_driver("windows"), cu118.min_driver("macos")) == ("452.39", "")


def test_runtime_set_is_what_the_tests_run_with_and_fits_every_pack() -> None:
    reqs = [Requirement(line) for line in PACKS.runtime_requirements(PACKS.require("cpu"))]
    assert {r.name for r in reqs} >= {"diffusers", "transformers", "gradio", "safetensors", "accelerate", "peft"}
    for req in reqs:
        pinned = str(req.specifier).removeprefix("==")
        assert version(req.name) == pinned, f"the dev venv has {req.name} {version(req.name)}"
        from importlib.metadata import metadata

        needs_python = SpecifierSet(metadata(req.name).get("Requires-Python") or "")
        torch_reqs = [Requirement(r) for r in requires(req.name) or () if re.match(r"torch\b", r)]
        for pack in PACKS.all():
            assert needs_python.contains(pack.python), f"{req.name} needs Python {needs_python}"
            for tr in torch_reqs:
                assert tr.specifier.contains(base(pack.torch)), f"{req.name} needs {tr} ({pack.id})"


@pytest.mark.parametrize(
    ("arch", "ptx", "cc", "want"),
    [
        (("8.6",), (), (8, 9), "sass"),  # sm_86 SASS runs on Ada
        (("6.0",), (), (6, 1), "sass"),
        (("8.6",), (), (8, 0), "none"),  # never down
        (("9.0",), (), (12, 0), "none"),  # never across majors
        (("9.0a",), (), (9, 0), "sass"),
        (("9.0a",), (), (9, 1), "none"),  # arch-specific: that exact GPU only
        ((), ("8.0",), (12, 0), "ptx"),  # PTX JITs forward
        ((), ("8.0",), (7, 5), "none"),  # but not backward
    ],
)
def test_coverage_rule(arch: tuple[str, ...], ptx: tuple[str, ...], cc: tuple[int, int], want: str) -> None:
    assert coverage(arch, ptx, cc) == want


def test_parse_arch_refuses_garbage() -> None:
    assert parse_arch("12.0") == (12, 0, False)
    with pytest.raises(ValueError):
        parse_arch("sm_86")


def copy_packs(dest: Path) -> Path:
    shutil.copytree(REPO / "packs", dest)
    return dest


def test_a_broken_pack_file_reports_every_problem(tmp_path: Path) -> None:
    folder = copy_packs(tmp_path / "packs")
    text = (folder / "cu128.toml").read_text(encoding="utf-8")
    text = text.replace('id = "cu128"', 'id = "cu-128"').replace('torch = "2.10.0+cu128"', 'torch = "2.10.0+cu126"')
    text = text.replace("priority = 40", 'priorty = 40\nos_list = ["linux"]').replace('"9.0a"', '"sm_90a"')
    (folder / "cu128.toml").write_text(text, encoding="utf-8")
    (folder / "runtime.txt").write_text("diffusers>=0.30\ntorch==2.10.0\npeft==0.21.2\n", encoding="utf-8")
    with pytest.raises(PackFileInvalid) as info:
        load_packs(folder)
    message = info.value.message("en")
    for bit in ("cu128.toml: id", "'cu-128'", "priorty: unknown key; did you mean 'priority'?", "os_list",
                "priority: required", "xformers_arch: 'sm_90a'", "'diffusers>=0.30' is not pinned",
                "torch is pinned by each pack"):  # fmt: skip
        assert bit in message
    assert info.value.params["count"] == 7 and info.value.exit_code == 6
    assert "环境包文件" in info.value.message("zh")


def test_cross_field_rules(tmp_path: Path) -> None:
    folder = copy_packs(tmp_path / "packs")
    path = folder / "cu128.toml"
    text = path.read_text(encoding="utf-8").replace('torch = "2.10.0+cu128"', 'torch = "2.10.0+cu126"')
    path.write_text(text.replace('min_driver_windows = "528.33"', 'min_driver_windows = ""'), encoding="utf-8")
    cpu = (folder / "cpu.toml").read_text(encoding="utf-8").replace("xformers_arch = []", 'xformers_arch = ["8.0"]')
    (folder / "cpu.toml").write_text(cpu, encoding="utf-8")
    with pytest.raises(PackFileInvalid) as info:
        load_packs(folder)
    message = info.value.message("en")
    assert "must carry the local label +cu128" in message and "min_driver_windows: required for a CUDA pack" in message
    assert "cpu.toml: xformers_arch" in message


def test_optional_names_a_part_the_pack_has(tmp_path: Path) -> None:
    folder = copy_packs(tmp_path / "packs")
    for name, line in (("cu126", 'optional = ["xformers"]'), ("cu118", 'optional = ["torch"]'),
                       ("cu128", 'optional = "torchvision"')):  # fmt: skip
        path = folder / f"{name}.toml"
        path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(PackFileInvalid) as info:
        load_packs(folder)
    message = info.value.message("en")
    assert "cu126.toml: optional: names xformers, which this pack does not have" in message
    assert "cu118.toml: optional: 'torch' is not one of torchvision, xformers (torch itself is never optional)" in message
    assert "cu128.toml: optional: must be a list of names" in message


def test_unreadable_toml_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PackFileInvalid, match="no \\*.toml pack files"):
        load_packs(tmp_path)
    (tmp_path / "bad.toml").write_text("id = \n", encoding="utf-8")
    with pytest.raises(PackFileInvalid, match="bad.toml"):
        load_packs(tmp_path)


def test_unknown_pack_suggests_the_near_one() -> None:
    assert PACKS.get("cu999") is None
    with pytest.raises(UnknownPack) as info:
        PACKS.require("cu126-leg")
    assert info.value.code == "PACK_UNKNOWN" and "cu126-legacy" in info.value.message("en")
    assert "cu126-legacy" in info.value.message("zh")
