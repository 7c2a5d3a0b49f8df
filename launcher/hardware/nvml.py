"""NVIDIA GPU and driver facts, read through NVML (``nvidia-ml-py``, import name ``pynvml``) without nvidia-smi.

:func:`probe_nvml` fills the same :class:`~launcher.hardware.nvidia.Hardware` / ``Gpu`` records as the
nvidia-smi probe, with ``source="nvml"``: the driver version (``nvmlSystemGetDriverVersion``), the highest CUDA
the driver supports (``nvmlSystemGetCudaDriverVersion_v2``, falling back to v1; ``12080`` means ``12.8``), and per
GPU its name, compute capability and memory (bytes, reported in MiB).

It answers None when NVML cannot be used at all - ``pynvml`` is not installed, ``libnvidia-ml.so.1`` /
``nvml.dll`` is missing, or the driver is not loaded - so the caller falls back to nvidia-smi.  Any other NVML
failure (a driver/library version mismatch, a lost GPU) gives a ``Hardware`` without GPUs and a ``problem``.
NVML calls block inside the driver, so they run in a daemon thread with a deadline: a hung driver costs
``timeout`` seconds, never a frozen launcher (``problem`` then says so).

``pynvml`` is imported by name inside the probe: it has no type information, so every call goes through ``Any``.
Older releases return ``bytes`` for names and versions, newer ones ``str``; both are accepted.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from launcher.hardware.nvidia import Gpu, Hardware, capability_from_name, host_os

MIB = 1024 * 1024
# NVML return codes that mean "no usable NVIDIA driver here" (nvml.h: NVML_ERROR_DRIVER_NOT_LOADED,
# NVML_ERROR_LIBRARY_NOT_FOUND): the probe answers None for them.
_NO_DRIVER = frozenset({9, 12})
_TIMEOUT = "NVML did not answer within"


@dataclass
class _Outcome:
    """What the worker thread hands back: a result, or the NVML error that stopped it."""

    done: threading.Event = field(default_factory=threading.Event)
    hardware: Hardware | None = None
    error: BaseException | None = None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def cuda_version_text(value: int) -> str | None:
    """``12.8`` from NVML's ``12080``; None for 0 (no CUDA support reported)."""
    if value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _cuda_driver(nvml: Any) -> str | None:
    for call in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        function = getattr(nvml, call, None)
        if function is None:
            continue
        try:
            return cuda_version_text(int(function()))
        except nvml.NVMLError:
            continue
    return None


def _gpu(nvml: Any, index: int) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    capability: tuple[int, int] | None
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        capability, origin = (int(major), int(minor)), "driver"
    except nvml.NVMLError:
        capability = capability_from_name(name)
        origin = "name" if capability else ""
    total: int | None
    free: int | None
    try:
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        total, free = int(memory.total) // MIB, int(memory.free) // MIB
    except nvml.NVMLError:
        total = free = None
    return Gpu(index, name, capability, total, free, origin)


def _read(nvml: Any, os_name: str) -> Hardware:
    """All facts, between ``nvmlInit`` and ``nvmlShutdown``; NVML errors propagate."""
    nvml.nvmlInit()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = _cuda_driver(nvml)
        gpus = tuple(_gpu(nvml, i) for i in range(int(nvml.nvmlDeviceGetCount())))
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return Hardware(os_name, "nvml", driver, cuda, gpus)


def _work(nvml: Any, os_name: str, outcome: _Outcome) -> None:
    try:
        outcome.hardware = _read(nvml, os_name)
    except Exception as exc:  # NVMLError above all; anything else must not kill the thread silently either
        outcome.error = exc
    finally:
        outcome.done.set()


def _problem(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ asks the library, which may be the broken part
        text = ""
    return f"NVML: {text or type(exc).__name__}"


def timed_out(hardware: Hardware) -> bool:
    """Whether this is :func:`probe_nvml`'s answer for a driver that did not answer in time."""
    return hardware.source == "nvml" and hardware.problem.startswith(_TIMEOUT)


def probe_nvml(timeout: float = 5.0, os_name: str | None = None) -> Hardware | None:
    """This machine's NVIDIA facts through NVML; None when NVML is unusable (see the module text).  Never raises."""
    os_name = os_name or host_os()
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    outcome = _Outcome()
    worker = threading.Thread(target=_work, args=(nvml, os_name, outcome), name="yijian-nvml", daemon=True)
    worker.start()
    if not outcome.done.wait(timeout):
        return Hardware(os_name, "nvml", problem=f"{_TIMEOUT} {timeout:g} s")
    if outcome.hardware is not None:
        return outcome.hardware
    error = outcome.error
    nvml_error = getattr(nvml, "NVMLError", ())
    if isinstance(error, nvml_error) and getattr(error, "value", None) in _NO_DRIVER:
        return None
    return Hardware(os_name, "nvml", problem=_problem(error) if error else "NVML failed")
