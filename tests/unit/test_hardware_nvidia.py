"""The NVIDIA probe against every recorded machine (through the fake nvidia-smi on PATH), the failure modes, and
the capability-from-name table that old drivers need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from launcher.hardware.nvidia import (
    QUERY_FIELDS,
    Hardware,
    capability_from_name,
    find_nvidia_smi,
    given_gpu,
    given_hardware,
    parse_cuda_header,
    parse_query,
    probe,
)
from tests.support.fake_nvidia_smi import RECORDINGS, Recording, load_recording, table

FakeGpu = Callable[[str], Recording]
MACHINES = [n for n in RECORDINGS if load_recording(n).mode == "ok"]


@pytest.mark.parametrize("name", MACHINES)
def test_probe_reads_every_recorded_machine(fake_gpu: FakeGpu, name: str) -> None:
    rec = fake_gpu(name)
    hw = probe(os_name=rec.os)
    assert (hw.source, hw.problem, hw.os) == ("nvidia-smi", "", rec.os)
    assert hw.driver_version == rec.driver_version
    assert hw.cuda_driver == rec.cuda_version  # None where the header says N/A
    assert [g.index for g in hw.gpus] == [g.index for g in rec.gpus]
    for got, want in zip(hw.gpus, rec.gpus, strict=True):
        assert got.name == want.name and got.capability == want.capability
        assert (got.memory_total_mib, got.memory_free_mib) == (want.memory_total_mib, want.memory_free_mib)
        # Drivers before R510 have no compute_cap field: the capability then comes from the name table.
        assert got.capability_from == ("driver" if rec.has_compute_cap_field else "name")


def test_old_drivers_fall_back_to_the_name_table(fake_gpu: FakeGpu) -> None:
    for name in ("gtx1060-472", "t4-460"):
        rec = fake_gpu(name)
        assert not rec.has_compute_cap_field
        gpu = probe(os_name=rec.os).gpus[0]
        assert (gpu.capability, gpu.capability_from) == (rec.gpus[0].capability, "name")


def test_the_main_gpu_has_the_most_memory(fake_gpu: FakeGpu) -> None:
    fake_gpu("dual-3090-1080ti-560")
    hw = probe(os_name="linux")
    assert hw.main_gpu is not None and hw.main_gpu.short_name == "RTX 3090" and hw.main_gpu.sm == "sm_86"
    assert hw.gpus[1].short_name == "GTX 1080 Ti" and hw.gpus[1].sm == "sm_61"


def test_no_nvidia_smi_means_no_nvidia_gpu(fake_gpu: FakeGpu) -> None:
    fake_gpu("absent")
    hw = probe(os_name="linux")
    assert hw == Hardware("linux", "none") and hw.main_gpu is None


@pytest.mark.parametrize(
    ("name", "words"),
    [("driver-not-loaded", "couldn't communicate with the NVIDIA driver"), ("driver-mismatch", "version mismatch")],
)
def test_a_failing_driver_is_a_problem_not_a_gpu(fake_gpu: FakeGpu, name: str, words: str) -> None:
    fake_gpu(name)
    hw = probe(os_name="linux")
    assert hw.source == "nvidia-smi" and hw.gpus == () and words in hw.problem


def test_a_hanging_nvidia_smi_is_cut_off(fake_gpu: FakeGpu) -> None:
    fake_gpu("hang")
    hw = probe(os_name="linux", timeout=0.5)
    assert hw.gpus == () and hw.problem == "nvidia-smi did not answer within 0.5 s"


def test_windows_places_of_nvidia_smi(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    nvsmi = tmp_path / "pf" / "NVIDIA Corporation" / "NVSMI" / "nvidia-smi.exe"
    nvsmi.parent.mkdir(parents=True)
    nvsmi.write_bytes(b"")
    env = {"PATH": str(empty), "SystemRoot": str(tmp_path / "win"), "ProgramFiles": str(tmp_path / "pf")}
    assert find_nvidia_smi("windows", env) == str(nvsmi)
    dch = tmp_path / "win" / "System32" / "nvidia-smi.exe"  # DCH drivers put it in System32, which wins
    dch.parent.mkdir(parents=True)
    dch.write_bytes(b"")
    assert find_nvidia_smi("windows", env) == str(dch)
    assert find_nvidia_smi("linux", env) is None  # those places mean nothing on Linux


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("NVIDIA GeForce GTX 1060 6GB", (6, 1)), ("GeForce GTX 1080 Ti", (6, 1)), ("NVIDIA TITAN Xp", (6, 1)),
        ("Tesla P100-PCIE-16GB", (6, 0)), ("Tesla P40", (6, 1)), ("GeForce GTX 970", (5, 2)),
        ("GeForce GTX 750 Ti", (5, 0)), ("GeForce GTX TITAN X", (5, 2)), ("TITAN V", (7, 0)),
        ("Tesla V100-SXM2-16GB", (7, 0)), ("Tesla T4", (7, 5)), ("GeForce GTX 1660 SUPER", (7, 5)),
        ("GeForce RTX 2080 Ti", (7, 5)), ("Quadro RTX 6000", (7, 5)), ("GeForce RTX 3060", (8, 6)),
        ("NVIDIA RTX A6000", (8, 6)), ("NVIDIA A10G", (8, 6)), ("NVIDIA A100-SXM4-80GB", (8, 0)),
        ("NVIDIA GeForce RTX 4090", (8, 9)), ("NVIDIA RTX 6000 Ada Generation", (8, 9)), ("NVIDIA L4", (8, 9)),
        ("NVIDIA H100 80GB HBM3", (9, 0)), ("NVIDIA GeForce RTX 5070 Ti Laptop GPU", (12, 0)),
        ("Tesla K80", (3, 7)), ("Some Future GPU", None),
    ],
)  # fmt: skip
def test_capability_from_name(name: str, cc: tuple[int, int] | None) -> None:
    assert capability_from_name(name) == cc


def test_parse_query_tolerates_na_and_odd_rows() -> None:
    text = (
        "0, NVIDIA GeForce RTX 3060, 12288, [N/A], 8.6, 537.58\r\ngarbage\n1, Tesla T4, 15109, 15109, [N/A], 537.58\n"
    )
    gpus, driver = parse_query(text.replace("\r\n", "\n"), QUERY_FIELDS)
    assert driver == "537.58" and [g.index for g in gpus] == [0, 1]
    assert gpus[0].memory_free_mib is None and gpus[0].capability == (8, 6)
    assert (gpus[1].capability, gpus[1].capability_from) == ((7, 5), "name")


def test_cuda_header_from_the_summary_table() -> None:
    assert parse_cuda_header(table(load_recording("rtx5090-572"), ())) == "12.8"
    assert parse_cuda_header(table(load_recording("gtx1060-472"), ())) == "11.4"  # the narrow pre-R530 layout
    assert parse_cuda_header(table(load_recording("gtx1660-550-nocuda"), ())) is None
    assert parse_cuda_header("") is None


# Header lines as real drivers print them: the R610 capture in utkuozdemir/nvidia_gpu_exporter
# (internal/captures/windows-x86_64__nvidia-geforce-rtx-2080-super__610.62.txt) and the R580 table posted in
# aikitoria/open-gpu-kernel-modules#5.
R610_HEADER = "| NVIDIA-SMI 610.62                 KMD Version: 610.62        CUDA UMD Version: 13.3     |"
R580_HEADER = "| NVIDIA-SMI 580.82.09              Driver Version: 580.82.09      CUDA Version: 13.0     |"


def test_cuda_header_of_r580_and_r610_drivers() -> None:
    assert parse_cuda_header(R610_HEADER) == "13.3" and parse_cuda_header(R580_HEADER) == "13.0"
    # The fake prints those very lines for the recordings made from them.
    assert R610_HEADER in table(load_recording("rtx2080super-610"), ()).splitlines()
    assert R580_HEADER in table(load_recording("rtx5090-4090-580"), ()).splitlines()


def test_hardware_from_explicit_facts() -> None:
    hw = given_hardware("windows", "572.16", [given_gpu("RTX 5090", memory_total_mib=32607)], cuda_driver="12.8")
    assert hw.source == "given" and hw.cuda_driver_tuple == (12, 8)
    gpu = hw.gpus[0]
    assert (gpu.capability, gpu.capability_from, gpu.sm) == ((12, 0), "name", "sm_120")
    assert given_gpu("Mystery", (8, 6)).capability_from == "given"
    assert given_gpu("Mystery").capability is None and given_gpu("Mystery").sm == "sm_?"
    d = hw.to_dict()
    assert d == {"os": "windows", "source": "given", "problem": None, "driver_version": "572.16", "cuda_driver": "12.8",
                 "gpus": [{"index": 0, "name": "RTX 5090", "compute_capability": "12.0", "capability_from": "name",
                           "memory_total_mib": 32607, "memory_free_mib": None}], "main_gpu": 0}  # fmt: skip
