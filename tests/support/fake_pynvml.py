"""A fake ``pynvml`` module file for child processes: NVML answering with a recorded machine.

tests/unit/test_hardware_nvml.py fakes NVML inside the test process.  To see the whole CLI find a GPU through
NVML, :func:`install_fake_pynvml` writes ``<folder>/pynvml.py`` holding one recording's facts (the same
``tests/support/data/gpus`` files the fake nvidia-smi replays); a test puts ``folder`` on the child's
PYTHONPATH, after the bundle, so ``import pynvml`` in :mod:`launcher.hardware.nvml` finds it before the real
nvidia-ml-py of the environment.  Nothing in the product knows about it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fake_nvidia_smi import load_recording

MIB = 1024 * 1024

MODULE = '''"""Fake pynvml replaying the recording {name} (written by tests/support/fake_pynvml.py)."""
import json

_REC = json.loads({facts!r})


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value


class _Memory:
    def __init__(self, total, free, used):
        self.total, self.free, self.used = total, free, used


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return _REC["driver_version"]


def nvmlSystemGetCudaDriverVersion():
    return _REC["cuda"]


nvmlSystemGetCudaDriverVersion_v2 = nvmlSystemGetCudaDriverVersion


def nvmlDeviceGetCount():
    return len(_REC["gpus"])


def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < len(_REC["gpus"]):
        raise NVMLError(2)
    return index


def nvmlDeviceGetName(handle):
    return _REC["gpus"][handle]["name"]


def nvmlDeviceGetCudaComputeCapability(handle):
    return tuple(_REC["gpus"][handle]["capability"])


def nvmlDeviceGetMemoryInfo(handle):
    g = _REC["gpus"][handle]
    return _Memory(g["total"], g["free"], g["used"])
'''


def install_fake_pynvml(folder: Path, recording: str) -> Path:
    """Write ``folder/pynvml.py`` answering like NVML on the machine ``recording``; returns ``folder``."""
    rec = load_recording(recording)
    if rec.mode != "ok":
        raise ValueError(f"{recording} has no GPUs to report (mode {rec.mode})")
    major, minor = (rec.cuda_version or "0.0").split(".")
    facts = {
        "driver_version": rec.driver_version,
        "cuda": int(major) * 1000 + int(minor) * 10,
        "gpus": [{"name": g.name, "capability": list(g.capability), "total": g.memory_total_mib * MIB,
                  "free": g.memory_free_mib * MIB, "used": g.memory_used_mib * MIB} for g in rec.gpus],
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pynvml.py").write_text(MODULE.format(name=recording, facts=json.dumps(facts)), encoding="utf-8")
    return folder
