"""The NVML probe against a fake ``pynvml`` module that replays the recorded machines of
``tests/support/data/gpus`` (the same facts the fake nvidia-smi replays), its failure modes, and the order in which
:func:`probe_hardware` asks NVML and nvidia-smi."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from launcher.hardware.nvml import cuda_version_text, probe_nvml, timed_out
from launcher.hardware.system import probe_hardware
from tests.support.fake_nvidia_smi import RECORDINGS, Recording, load_recording

MIB = 1024 * 1024
MACHINES = [n for n in RECORDINGS if load_recording(n).mode == "ok"]
LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED, VERSION_MISMATCH, NOT_SUPPORTED = 12, 9, 18, 3
MESSAGES = {
    LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
    VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    NOT_SUPPORTED: "Not Supported",
    2: "Invalid Argument",
}


class FakeNVMLError(Exception):
    """Like ``pynvml.NVMLError``: carries the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return MESSAGES[self.value]


def cuda_int(version: str | None) -> int:
    """NVML's integer form of a CUDA version: "12.8" -> 12080; 0 when the recording has none."""
    if version is None:
        return 0
    major, minor = version.split(".")
    return int(major) * 1000 + int(minor) * 10


def fake_pynvml(rec: Recording, *, init_error: int | None = None, hang: threading.Event | None = None,
                as_bytes: bool = False, v2: bool = True, capability: bool = True) -> ModuleType:  # fmt: skip
    """A ``pynvml`` answering with ``rec``'s facts.  ``as_bytes``: names and versions as bytes (old releases);
    ``v2=False``: no ``nvmlSystemGetCudaDriverVersion_v2``; ``capability=False``: the capability call fails."""
    nvml = ModuleType("pynvml")
    encode: Callable[[str], str | bytes] = (lambda s: s.encode()) if as_bytes else (lambda s: s)

    def init() -> None:
        if hang is not None:
            hang.wait()
        if init_error is not None:
            raise FakeNVMLError(init_error)
        nvml.initialised = True  # type: ignore[attr-defined]

    def handle_by_index(index: int) -> int:
        assert nvml.initialised, "NVML call before nvmlInit"  # type: ignore[attr-defined]
        if not 0 <= index < len(rec.gpus):
            raise FakeNVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return index  # the handles are the indices into the recording

    def compute_capability(handle: int) -> tuple[int, int]:
        if not capability:
            raise FakeNVMLError(NOT_SUPPORTED)
        return rec.gpus[handle].capability

    def memory(handle: int) -> SimpleNamespace:
        g = rec.gpus[handle]
        return SimpleNamespace(total=g.memory_total_mib * MIB, free=g.memory_free_mib * MIB,
                               used=g.memory_used_mib * MIB)  # fmt: skip

    nvml.__dict__.update(
        NVMLError=FakeNVMLError,
        initialised=False,
        nvmlInit=init,
        nvmlShutdown=lambda: setattr(nvml, "initialised", False),
        nvmlSystemGetDriverVersion=lambda: encode(rec.driver_version),
        nvmlSystemGetCudaDriverVersion=lambda: cuda_int(rec.cuda_version),
        nvmlDeviceGetCount=lambda: len(rec.gpus),
        nvmlDeviceGetHandleByIndex=handle_by_index,
        nvmlDeviceGetName=lambda h: encode(rec.gpus[h].name),
        nvmlDeviceGetCudaComputeCapability=compute_capability,
        nvmlDeviceGetMemoryInfo=memory,
    )
    if v2:
        nvml.nvmlSystemGetCudaDriverVersion_v2 = lambda: cuda_int(rec.cuda_version)  # type: ignore[attr-defined]
    return nvml


@pytest.fixture
def use_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[[ModuleType | None], None]:
    """``use_nvml(module)`` makes ``import pynvml`` give ``module``; ``use_nvml(None)`` makes it fail."""

    def install(module: ModuleType | None) -> None:
        monkeypatch.setitem(sys.modules, "pynvml", module)

    return install


UseNvml = Callable[[ModuleType | None], None]


@pytest.mark.parametrize("name", MACHINES)
def test_nvml_reads_every_recorded_machine(use_nvml: UseNvml, name: str) -> None:
    rec = load_recording(name)
    use_nvml(fake_pynvml(rec))
    hw = probe_nvml(os_name=rec.os)
    assert hw is not None
    assert (hw.source, hw.problem, hw.os) == ("nvml", "", rec.os)
    assert (hw.driver_version, hw.cuda_driver) == (rec.driver_version, rec.cuda_version)
    assert [g.index for g in hw.gpus] == [g.index for g in rec.gpus]
    for got, want in zip(hw.gpus, rec.gpus, strict=True):
        assert (got.name, got.capability, got.capability_from) == (want.name, want.capability, "driver")
        assert (got.memory_total_mib, got.memory_free_mib) == (want.memory_total_mib, want.memory_free_mib)


def test_rtx5090_on_its_launch_driver(use_nvml: UseNvml) -> None:
    rec = load_recording("rtx5090-572")
    use_nvml(fake_pynvml(rec))
    hw = probe_nvml(os_name="windows")
    assert hw is not None and hw.main_gpu is not None
    assert (hw.driver_version, hw.cuda_driver, hw.cuda_driver_tuple) == ("572.16", "12.8", (12, 8))
    assert (hw.main_gpu.short_name, hw.main_gpu.sm) == ("RTX 5090", "sm_120")
    assert hw.to_dict()["gpus"][0]["compute_capability"] == "12.0"


@pytest.mark.parametrize(("value", "text"), [(12080, "12.8"), (11040, "11.4"), (13000, "13.0"), (0, None)])
def test_cuda_driver_integers(value: int, text: str | None) -> None:
    assert cuda_version_text(value) == text


def test_old_pynvml_returns_bytes_and_has_no_v2(use_nvml: UseNvml) -> None:
    rec = load_recording("rtx3060-537")
    use_nvml(fake_pynvml(rec, as_bytes=True, v2=False))
    hw = probe_nvml(os_name=rec.os)
    assert hw is not None and hw.gpus[0].name == rec.gpus[0].name == "NVIDIA GeForce RTX 3060"
    assert (hw.driver_version, hw.cuda_driver) == (rec.driver_version, rec.cuda_version)


def test_an_unsupported_capability_call_falls_back_to_the_name(use_nvml: UseNvml) -> None:
    rec = load_recording("rtx3060-537")
    use_nvml(fake_pynvml(rec, capability=False))
    hw = probe_nvml(os_name=rec.os)
    assert hw is not None and (hw.gpus[0].capability, hw.gpus[0].capability_from) == ((8, 6), "name")


def test_two_gpus_and_the_main_one(use_nvml: UseNvml) -> None:
    use_nvml(fake_pynvml(load_recording("dual-3090-1080ti-560")))
    hw = probe_nvml(os_name="linux")
    assert hw is not None and [g.sm for g in hw.gpus] == ["sm_86", "sm_61"]
    assert hw.main_gpu is not None and hw.main_gpu.short_name == "RTX 3090"


@pytest.mark.parametrize("code", [LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED])
def test_no_library_or_no_driver_means_no_answer(use_nvml: UseNvml, code: int) -> None:
    use_nvml(fake_pynvml(load_recording("rtx3060-537"), init_error=code))
    assert probe_nvml(os_name="linux") is None


def test_no_pynvml_means_no_answer(use_nvml: UseNvml) -> None:
    use_nvml(None)
    assert probe_nvml() is None


def test_this_machine_has_no_nvml_library() -> None:
    assert probe_nvml() is None  # the real pynvml of the dev venv, and no libnvidia-ml here


def test_a_version_mismatch_is_a_problem(use_nvml: UseNvml) -> None:
    use_nvml(fake_pynvml(load_recording("rtx3060-537"), init_error=VERSION_MISMATCH))
    hw = probe_nvml(os_name="linux")
    assert hw is not None and hw.gpus == () and hw.problem == "NVML: RM has detected an NVML/RM version mismatch."


@pytest.fixture
def hung_driver() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()  # lets the stuck worker thread end


def test_a_hanging_driver_is_cut_off(use_nvml: UseNvml, hung_driver: threading.Event) -> None:
    use_nvml(fake_pynvml(load_recording("rtx3060-537"), hang=hung_driver))
    hw = probe_nvml(timeout=0.2, os_name="linux")
    assert hw is not None and hw.gpus == () and hw.problem == "NVML did not answer within 0.2 s" and timed_out(hw)


# --- probe_hardware: NVML first, then nvidia-smi -----------------------------------------------------------

FakeGpu = Callable[[str], Recording]


def test_nvml_wins_over_nvidia_smi(use_nvml: UseNvml, fake_gpu: FakeGpu, tmp_path: Path) -> None:
    fake_gpu("rtx3060-537")
    use_nvml(fake_pynvml(load_recording("rtx5090-572")))
    report = probe_hardware(tmp_path, os_name="linux")
    assert report.nvidia.source == "nvml" and report.nvidia.gpus[0].short_name == "RTX 5090"
    assert report.to_dict()["nvidia"]["source"] == "nvml"


def test_nvidia_smi_when_nvml_has_no_library(use_nvml: UseNvml, fake_gpu: FakeGpu, tmp_path: Path) -> None:
    rec = fake_gpu("rtx3060-537")
    use_nvml(fake_pynvml(rec, init_error=LIBRARY_NOT_FOUND))
    report = probe_hardware(tmp_path, os_name="linux")
    assert report.nvidia.source == "nvidia-smi" and report.nvidia.driver_version == rec.driver_version


def test_nvml_problem_kept_when_there_is_no_nvidia_smi(use_nvml: UseNvml, fake_gpu: FakeGpu, tmp_path: Path) -> None:
    fake_gpu("absent")
    use_nvml(fake_pynvml(load_recording("rtx3060-537"), init_error=VERSION_MISMATCH))
    report = probe_hardware(tmp_path, os_name="linux")
    assert report.nvidia.source == "nvml" and "version mismatch" in report.nvidia.problem


def test_a_hung_nvml_is_not_followed_by_nvidia_smi(
    use_nvml: UseNvml, fake_gpu: FakeGpu, tmp_path: Path, hung_driver: threading.Event
) -> None:
    fake_gpu("rtx3060-537")  # would answer, but talks to the same (hung) driver in real life
    use_nvml(fake_pynvml(load_recording("rtx3060-537"), hang=hung_driver))
    report = probe_hardware(tmp_path, os_name="linux", timeout=0.2)
    assert report.nvidia.source == "nvml" and timed_out(report.nvidia)


def test_no_nvidia_anywhere(use_nvml: UseNvml, fake_gpu: FakeGpu, tmp_path: Path) -> None:
    fake_gpu("absent")
    use_nvml(None)
    report = probe_hardware(tmp_path, os_name="linux")
    assert report.nvidia.source == "none" and report.nvidia.gpus == ()
    assert set(report.to_dict()) == {"nvidia", "system"}
