"""The fake nvidia-smi: every recording replays consistently through a real subprocess, the special modes
behave, and the recordings' facts agree with the compatibility notes (driver -> CUDA, GPU family -> compute
capability; /work/shared/knowledge/compat-and-mirrors.md sections 2.3, 3 and 6)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fake_nvidia_smi import (
    DRIVER_NOT_LOADED,
    INVALID_ARGS,
    NO_DEVICES,
    RECORDINGS,
    Recording,
    install_fake_nvidia_smi,
    load_recording,
)
from tests.support.plugin_gpu import path_without_nvidia_smi

MACHINES = [n for n in RECORDINGS if load_recording(n).mode == "ok"]
FakeGpu = Callable[[str], Recording]
PROBE_QUERY = "--query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,memory.free,compute_cap"
HEADER = re.compile(
    r"NVIDIA-SMI (\S+)\s+(?:Driver|KMD) Version: (\S+)\s+CUDA (?:UMD )?Version: (\S+)"
)  # KMD/UMD: R610+


def smi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60)


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# --- replay through a subprocess ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MACHINES)
def test_table_header_and_rows_match_recording(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    done = smi()
    assert done.returncode == 0 and done.stderr == ""
    header = HEADER.search(done.stdout)
    assert header is not None
    assert header.groups() == (rec.smi_version, rec.driver_version, rec.cuda_version or "N/A")
    boxed = [line for line in done.stdout.splitlines() if line[:1] in "|+"]
    assert len({len(line) for line in boxed}) == 1, "every box line has the same width"
    usage = re.findall(r"(\d+)MiB\s*/\s*(\d+)MiB", done.stdout)
    assert usage == [(str(g.memory_used_mib), str(g.memory_total_mib)) for g in rec.gpus]
    for g in rec.gpus:
        (row,) = [line for line in boxed if line.startswith(f"|{g.index:>4}  ")]
        assert g.pci_bus_id in row
        assert g.name in row or (g.name[:12] in row and "..." in row)
        assert (g.driver_model or ("On" if g.persistence_mode else "Off")) in row
    assert ("No running processes found" in done.stdout) == (not rec.processes)


@pytest.mark.parametrize("name", MACHINES)
def test_probe_query(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    done = smi(PROBE_QUERY, "--format=csv,noheader,nounits")
    if not rec.has_compute_cap_field:
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            'Field "compute_cap" is not a valid field to query.\n\n',
            "",
        )
        return
    assert done.returncode == 0
    rows = [line.split(", ") for line in done.stdout.splitlines()]
    assert len(rows) == len(rec.gpus)
    for row, g in zip(rows, rec.gpus, strict=True):
        index, gpu_name, uuid, bus, driver, total, free, cap = row
        assert (int(index), gpu_name, uuid, bus, driver) == (g.index, g.name, g.uuid, g.pci_bus_id, rec.driver_version)
        assert (int(total), int(free), cap) == (g.memory_total_mib, g.memory_free_mib, g.compute_cap)


@pytest.mark.parametrize("name", MACHINES)
def test_query_header_units_and_variants(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    query = "--query-gpu=count,name,memory.total,memory.used,temperature.gpu,power.limit"
    header = "count, name, memory.total [MiB], memory.used [MiB], temperature.gpu, power.limit [W]"
    units = [f"{len(rec.gpus)}, {g.name}, {g.memory_total_mib} MiB, {g.memory_used_mib} MiB, "
             f"{g.temperature_c}, {g.power_limit_w:.2f} W" for g in rec.gpus]  # fmt: skip
    bare = [row.replace(" MiB", "").replace(" W", "") for row in units]
    assert smi(query, "--format=csv").stdout.splitlines() == [header, *units]
    assert smi(query, "--format=csv,nounits").stdout.splitlines() == [header, *bare]
    assert smi(query, "--format=csv,noheader").stdout.splitlines() == units
    assert smi(query, "--format", "csv,noheader,nounits").stdout.splitlines() == bare


@pytest.mark.parametrize("name", MACHINES)
def test_aliases_print_canonical_header(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    lines = smi("--query-gpu=gpu_name,gpu_uuid,gpu_bus_id", "--format=csv").stdout.splitlines()
    assert lines == ["name, uuid, pci.bus_id", *(f"{g.name}, {g.uuid}, {g.pci_bus_id}" for g in rec.gpus)]


@pytest.mark.parametrize("name", MACHINES)
def test_unknown_field_is_rejected_on_stdout(fake_gpu: FakeGpu, name: str) -> None:
    fake_gpu(name)
    done = smi("--query-gpu=index,cuda_version", "--format=csv,noheader")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        'Field "cuda_version" is not a valid field to query.\n\n',
        "",
    )


@pytest.mark.parametrize("name", MACHINES)
def test_list_gpus(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    done = smi("-L")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [f"GPU {g.index}: {g.name} (UUID: {g.uuid})" for g in rec.gpus]


@pytest.mark.parametrize("name", MACHINES)
def test_detailed_report(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    text = smi("-q").stdout

    def values(label: str) -> list[str]:
        return re.findall(rf"^\s*{label}\s*: (.*)$", text, re.M)

    # From R610 these two carry a "[Deprecated; …]" note and "KMD Version" / "CUDA UMD Version" follow.
    assert [v.split(" [")[0] for v in values("Driver Version")] == [rec.driver_version]
    assert [v.split(" [")[0] for v in values("CUDA Version")] == [rec.cuda_version or "Not Found"]
    assert values("Attached GPUs") == [str(len(rec.gpus))]
    assert values("Product Name") == [g.name for g in rec.gpus]
    assert values("GPU UUID") == [g.uuid for g in rec.gpus]
    assert values("Free") == [f"{g.memory_free_mib} MiB" for g in rec.gpus]


@pytest.mark.parametrize("name", ["rtx5090-572", "a100-550"])
def test_line_endings_follow_the_os(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=60).stdout
    assert out.count(b"\n") == len(rec.gpus)
    assert out.count(b"\r\n") == (len(rec.gpus) if rec.os == "windows" else 0)


@pytest.mark.parametrize("pick", ["1", "GPU-d941a47c-ddf9-00ce-970b-33eeeb47cf20", "00000000:02:00.0"])
def test_select_gpu_by_id(fake_gpu: FakeGpu, pick: str) -> None:
    rec = fake_gpu("dual-3090-1080ti-560")
    done = smi("-i", pick, "--query-gpu=index,name", "--format=csv,noheader")
    assert done.stdout == f"1, {rec.gpus[1].name}\n"
    table = smi(f"--id={pick}").stdout
    assert "GTX 1080 Ti" in table and "RTX 3090" not in table


def test_select_missing_gpu(fake_gpu: FakeGpu) -> None:
    fake_gpu("rtx4090-552")
    done = smi("-i", "1", "-L")
    assert (done.returncode, done.stdout) == (6, NO_DEVICES + "\n")


@pytest.mark.parametrize(
    "args",
    [["--query-gpu=name"], ["--format=csv"], ["--query-gpu=name", "--format=xml"], ["-L", "-q"], ["--bogus"]],
)
def test_invalid_arguments(fake_gpu: FakeGpu, args: list[str]) -> None:
    fake_gpu("rtx3060-537")
    done = smi(*args)
    assert (done.returncode, done.stdout) == (2, INVALID_ARGS + "\n")


# --- special modes and fixtures --------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["-L"], [PROBE_QUERY, "--format=csv,noheader,nounits"]])
def test_driver_not_loaded(fake_gpu: FakeGpu, args: list[str]) -> None:
    fake_gpu("driver-not-loaded")
    done = smi(*args)
    assert (done.returncode, done.stdout, done.stderr) == (9, DRIVER_NOT_LOADED + "\n\n", "")


def test_driver_library_mismatch(fake_gpu: FakeGpu) -> None:
    fake_gpu("driver-mismatch")
    done = smi()
    assert done.returncode == 18
    assert done.stdout.splitlines() == ["Failed to initialize NVML: Driver/library version mismatch",
                                        "NVML library version: 535.161"]  # fmt: skip


def test_hang_needs_a_timeout(fake_gpu: FakeGpu) -> None:
    fake_gpu("hang")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=1)


def test_absent_leaves_no_nvidia_smi(fake_gpu: FakeGpu, tmp_path: Path) -> None:
    rec = fake_gpu("absent")
    assert rec.gpus == () and shutil.which("nvidia-smi") is None
    with pytest.raises(FileNotFoundError):
        smi()
    with pytest.raises(ValueError, match="no_nvidia_smi"):
        install_fake_nvidia_smi(tmp_path / "bin", "absent")
    assert not (tmp_path / "bin").exists()


def test_fake_gpu_stub_comes_first_and_can_be_replaced(fake_gpu: FakeGpu, tmp_path: Path) -> None:
    assert fake_gpu("rtx4090-552") == load_recording("rtx4090-552")
    found = shutil.which("nvidia-smi")
    assert found is not None and Path(found).is_relative_to(tmp_path)
    fake_gpu("t4-460")
    assert smi("-L").stdout.startswith("GPU 0: Tesla T4 ")


def test_no_nvidia_smi_hides_a_real_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        request: pytest.FixtureRequest) -> None:  # fmt: skip
    tools = tmp_path / "usr-bin"
    tools.mkdir()
    for tool in ("nvidia-smi", "other-tool"):
        (tools / tool).write_text(f"#!/bin/sh\necho {tool}\n")
        (tools / tool).chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tools), os.environ["PATH"]]))
    assert shutil.which("nvidia-smi") == str(tools / "nvidia-smi")
    path = request.getfixturevalue("no_nvidia_smi")
    assert os.environ["PATH"] == path and shutil.which("nvidia-smi") is None
    other = subprocess.run(["other-tool"], capture_output=True, text=True, timeout=60)
    assert other.stdout == "other-tool\n"
    assert path_without_nvidia_smi(path, tmp_path / "again") == path


def test_unknown_recording() -> None:
    with pytest.raises(KeyError, match="rtx5090-572"):
        load_recording("rtx9090")


# --- the recordings' facts ------------------------------------------------------------------------------------

# (recording, os, driver, CUDA in the header, GPU 0 name, compute capability, memory MiB): what the brief asked for.
REQUIRED = [
    ("gtx1060-472", "windows", "472.12", "11.4", "NVIDIA GeForce GTX 1060 6GB", "6.1", 6144),
    ("rtx3060-537", "windows", "537.58", "12.2", "NVIDIA GeForce RTX 3060", "8.6", 12288),
    ("rtx4090-552", "windows", "552.22", "12.4", "NVIDIA GeForce RTX 4090", "8.9", 24564),
    ("rtx5090-572", "windows", "572.16", "12.8", "NVIDIA GeForce RTX 5090", "12.0", 32607),
    ("rtx2080ti-535", "linux", "535.183.01", "12.2", "NVIDIA GeForce RTX 2080 Ti", "7.5", 11264),
    ("a100-550", "linux", "550.54.15", "12.4", "NVIDIA A100-SXM4-80GB", "8.0", 81920),
    ("rtx4060laptop-566", "windows", "566.36", "12.7", "NVIDIA GeForce RTX 4060 Laptop GPU", "8.9", 8188),
]


@pytest.mark.parametrize(("name", "os_", "driver", "cuda", "gpu", "cap", "mib"), REQUIRED)
def test_required_machines(name: str, os_: str, driver: str, cuda: str, gpu: str, cap: str, mib: int) -> None:
    rec = load_recording(name)
    g = rec.gpus[0]
    assert (rec.os, rec.driver_version, rec.cuda_version) == (os_, driver, cuda)
    assert (g.name, g.compute_cap, g.memory_total_mib) == (gpu, cap, mib)


def test_special_and_coverage_recordings() -> None:
    modes = {load_recording(n).mode for n in RECORDINGS}
    assert modes == {"ok", "absent", "driver-not-loaded", "driver-mismatch", "hang"}
    assert any(len(load_recording(n).gpus) == 2 for n in MACHINES)
    assert any(not load_recording(n).has_compute_cap_field for n in MACHINES)
    for n in set(RECORDINGS) - set(MACHINES):
        assert load_recording(n).gpus == ()


# Section 3 toolkit drivers (GA), plus rows marked "+" taken from the same NVIDIA release-notes Table 3.
TOOLKIT_DRIVERS = [  # (cuda, linux, windows)
    ("11.0", "450.51.05", "451.48"),  # + (NVIDIA's toolkit table; for titanxp-450)
    ("11.2", "460.27.03", "460.82"),  # +
    ("11.4", "470.42.01", "471.11"),  # +
    ("11.7", "515.43.04", "516.01"),
    ("11.8", "520.61.05", "520.06"),
    ("12.1", "530.30.02", "531.14"),
    ("12.2", "535.54.03", "536.25"),  # +
    ("12.4", "550.54.14", "551.61"),
    ("12.5", "555.42.02", "555.85"),  # +
    ("12.6", "560.28.03", "560.76"),
    ("12.8", "570.26", "570.65"),
    ("12.9", "575.51.03", "576.02"),
    ("13.0", "580.65.06", "580"),
    # NVIDIA lists no Windows toolkit driver for 13.x: the Windows column is the branch (knowledge third check 5).
    ("13.1", "590.44.01", "590"),
    ("13.2", "595.45.04", "595"),
    ("13.3", "610", "610"),  # + the R610 capture (rtx2080super-610) reports CUDA UMD 13.3
]


@pytest.mark.parametrize("name", [n for n in MACHINES if load_recording(n).cuda_version])
def test_cuda_version_is_what_the_driver_supports(name: str) -> None:
    rec = load_recording(name)
    driver = version(rec.driver_version)
    column = 1 if rec.os == "linux" else 2
    reached = [version(row[0]) for row in TOOLKIT_DRIVERS if version(row[column]) <= driver]
    beyond = [version(row[0]) for row in TOOLKIT_DRIVERS if version(row[column]) > driver]
    assert reached and max(reached) <= version(rec.cuda_version or "") < min(beyond, default=version("99"))


# Section 2.3: GPU family -> compute capability, keyed by how the product name reads.
FAMILIES = [
    (r"GTX 10\d0|Tesla P4\b|TITAN Xp", "Pascal", "6.1"),
    (r"RTX 20\d0|GTX 16\d0|Tesla T4", "Turing", "7.5"),
    (r"A100", "Ampere", "8.0"),
    (r"RTX 30\d0", "Ampere", "8.6"),
    (r"RTX 40\d0", "Ada Lovelace", "8.9"),
    (r"H100", "Hopper", "9.0"),
    (r"RTX 50\d0", "Blackwell", "12.0"),
]


@pytest.mark.parametrize("name", MACHINES)
def test_compute_capability_matches_family(name: str) -> None:
    rec = load_recording(name)
    for g in rec.gpus:
        (family,) = [(arch, cap) for pattern, arch, cap in FAMILIES if re.search(pattern, g.name)]
        assert (g.architecture, g.compute_cap) == family
        if g.capability >= (12, 0):
            assert rec.driver_major >= 570, "RTX 50 needs R570+"


@pytest.mark.parametrize("name", MACHINES)
def test_facts_fit_the_driver_and_os(name: str) -> None:
    rec = load_recording(name)
    assert rec.os in ("linux", "windows") and rec.smi_version and rec.timestamp
    assert rec.has_compute_cap_field == (rec.driver_major >= 510)
    for g in rec.gpus:
        if not g.name.startswith("Tesla "):  # Tesla-branded cards keep their name: "Tesla P4" on 550.135 (teslap4-550)
            assert g.name.startswith("NVIDIA ") == (rec.driver_major >= 470), "R470 added the NVIDIA prefix"
        assert 0 <= g.memory_used_mib and g.memory_used_mib + g.memory_reserved_mib <= g.memory_total_mib
        assert g.memory_reserved_mib == 0 or rec.driver_major >= 510
        assert 0 < g.power_draw_w < g.power_limit_w
        if rec.os == "windows":
            assert g.driver_model in ("WDDM", "TCC") and g.persistence_mode is None
        else:
            assert g.driver_model is None and g.persistence_mode is not None
    assert {p.gpu for p in rec.processes} <= {g.index for g in rec.gpus}
    assert all((p.used_mib is None) == (rec.os == "windows") for p in rec.processes)


def test_ids_are_unique_and_well_formed() -> None:
    gpus = [g for n in MACHINES for g in load_recording(n).gpus]
    assert len({g.uuid for g in gpus}) == len(gpus)
    for g in gpus:
        assert re.fullmatch(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", g.uuid)
        assert re.fullmatch(r"[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]", g.pci_bus_id)
