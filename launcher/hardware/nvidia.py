"""NVIDIA GPU and driver facts, read from ``nvidia-smi``.

:func:`probe` answers what the pack resolver needs: the OS, the driver version, the highest CUDA the driver
supports (the ``CUDA Version:`` of the summary table; there is no query field for it), and per GPU its index,
name, compute capability and memory.  It runs two commands at once, with one deadline for both:

* ``nvidia-smi --query-gpu=index,name,memory.total,memory.free,compute_cap,driver_version --format=csv,…``;
  drivers before R510 know no ``compute_cap`` field and answer ``Field "compute_cap" is not a valid field to
  query.``, so the query is repeated without it and the capability comes from the GPU's name (:func:`capability_from_name`);
* plain ``nvidia-smi``, for the table header.

No ``nvidia-smi`` anywhere means no NVIDIA GPU (``source="none"``).  An ``nvidia-smi`` that fails (driver not
loaded, NVML version mismatch) or hangs gives no GPUs and a ``problem`` text for the doctor.  On Windows the tool
is also looked for where drivers put it: ``%SystemRoot%\\System32`` (DCH drivers) and
``%ProgramFiles%\\NVIDIA Corporation\\NVSMI`` (older ones).

The records are source-neutral, so NVML (nvidia-ml-py) can fill them later; :func:`given_hardware` builds them
from explicit facts, for tests and for ``packs explain --gpu …``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap import proc

QUERY_FIELDS = ("index", "name", "memory.total", "memory.free", "compute_cap", "driver_version")
_CUDA_HEADER = re.compile(r"CUDA (?:UMD )?Version\s*:\s*(\d+\.\d+|N/A)")  # "CUDA UMD Version" from R610
_NOT_A_FIELD = "is not a valid field to query"

# Compute capability by GPU name, for drivers whose nvidia-smi cannot report it (before R510).  First match wins;
# such drivers predate RTX 40, so the table stops at Ampere plus a few newer names.  Values from NVIDIA's CUDA GPU
# lists (developer.nvidia.com/cuda-gpus); the name patterns are approximate.
_CAPABILITY_BY_NAME: tuple[tuple[re.Pattern[str], tuple[int, int]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cc)
    for pattern, cc in (
        (r"RTX 50\d0|RTX PRO \d+ Blackwell", (12, 0)),
        (r"\bB[12]00\b", (10, 0)),
        (r"\bH(100|200|800)\b", (9, 0)),
        (r"RTX 40\d0|RTX \d+ Ada|\bL4\b|\bL40S?\b", (8, 9)),
        (r"RTX 30\d0|RTX A\d+|\bA(2|10|10G|16|40)\b", (8, 6)),
        (r"\bA(30|100|800)\b", (8, 0)),
        (r"RTX 20\d0|GTX 16\d0|TITAN RTX|Quadro RTX|\bT4\b|\bT(400|600|1000|1200)\b|MX[45]50", (7, 5)),
        (r"TITAN V\b|V100|GV100", (7, 0)),
        (r"P100|GP100", (6, 0)),
        (r"GTX 10\d0|GT 10\d0|TITAN Xp|TITAN X \(Pascal\)|MX[1-3]50|\bP(4|6|40)\b|Quadro P\d+", (6, 1)),
        (r"GTX 75\d|GTX 745|M\d{3,4}M\b", (5, 0)),
        (r"GTX 9\d0|GTX TITAN X|\bM(4|6|40|60)\b|Quadro M\d+", (5, 2)),
        (r"\bK80\b", (3, 7)),
    )
)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str  # as the driver reports it: "NVIDIA GeForce RTX 5090"
    capability: tuple[int, int] | None  # (12, 0); None when unknown
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None
    capability_from: str = "driver"  # "driver" | "name" (derived) | "given" | "" (unknown)

    @property
    def short_name(self) -> str:
        """The name without the vendor words: "RTX 5090", "GTX 1060 6GB", "A100-SXM4-80GB"."""
        return re.sub(r"^(NVIDIA\s+)?(GeForce\s+)?", "", self.name).strip() or self.name

    @property
    def sm(self) -> str:
        """``sm_120``, the name torch and the kernels use; ``sm_?`` when unknown."""
        return f"sm_{self.capability[0]}{self.capability[1]}" if self.capability else "sm_?"

    def to_dict(self) -> dict[str, Any]:
        cc = self.capability
        return {"index": self.index, "name": self.name, "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
                "capability_from": self.capability_from, "memory_total_mib": self.memory_total_mib,
                "memory_free_mib": self.memory_free_mib}  # fmt: skip


@dataclass(frozen=True)
class Hardware:
    os: str  # "linux" | "windows" | "macos"
    source: str  # "nvml" | "nvidia-smi" | "none" (no NVIDIA driver tool) | "given"
    driver_version: str | None = None  # "572.16"
    cuda_driver: str | None = None  # the highest CUDA the driver supports: "12.8"; None when N/A or unknown
    gpus: tuple[Gpu, ...] = ()
    problem: str = ""  # why nvidia-smi gave no answer (driver not loaded, timeout ...)

    @property
    def main_gpu(self) -> Gpu | None:
        """The GPU with the most memory (the lowest index among equals): the one generation runs on."""
        return min(self.gpus, key=lambda g: (-(g.memory_total_mib or 0), g.index), default=None)

    @property
    def cuda_driver_tuple(self) -> tuple[int, int] | None:
        if not self.cuda_driver:
            return None
        major, minor = self.cuda_driver.split(".")[:2]
        return int(major), int(minor)

    def to_dict(self) -> dict[str, Any]:
        main = self.main_gpu
        return {"os": self.os, "source": self.source, "problem": self.problem or None,
                "driver_version": self.driver_version, "cuda_driver": self.cuda_driver,
                "gpus": [g.to_dict() for g in self.gpus], "main_gpu": main.index if main else None}  # fmt: skip


def host_os() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


def capability_from_name(name: str) -> tuple[int, int] | None:
    """The compute capability a GPU of this name has, from a small table; None when the name is not in it."""
    return next((cc for pattern, cc in _CAPABILITY_BY_NAME if pattern.search(name)), None)


def given_gpu(name: str, capability: tuple[int, int] | None = None, memory_total_mib: int | None = None,
              index: int = 0) -> Gpu:  # fmt: skip
    """A GPU from explicit facts; the capability comes from the name when not given."""
    if capability is not None:
        return Gpu(index, name, capability, memory_total_mib, None, "given")
    derived = capability_from_name(name)
    return Gpu(index, name, derived, memory_total_mib, None, "name" if derived else "")


def given_hardware(os_name: str, driver_version: str | None = None, gpus: Iterable[Gpu] = (),
                   cuda_driver: str | None = None) -> Hardware:  # fmt: skip
    """A machine described by explicit facts (``source="given"``)."""
    return Hardware(os_name, "given", driver_version, cuda_driver, tuple(gpus))


def find_nvidia_smi(os_name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The nvidia-smi to run: on PATH, else (Windows) where drivers install it."""
    env = os.environ if environ is None else environ
    found = shutil.which("nvidia-smi", path=env.get("PATH"))
    if found or os_name != "windows":
        return found
    places = [Path(env.get("SystemRoot", r"C:\Windows")) / "System32",
              Path(env.get("ProgramFiles", r"C:\Program Files")) / "NVIDIA Corporation" / "NVSMI"]  # fmt: skip
    return next((str(p / "nvidia-smi.exe") for p in places if (p / "nvidia-smi.exe").is_file()), None)


class _Run:
    """One nvidia-smi invocation, started at once and collected against a shared deadline."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = proc.start_bytes(argv)  # no console window flashing up on Windows

    def result(self, deadline: float) -> tuple[int, str] | None:
        """(exit status, output) or None when it did not finish in time (it is killed)."""
        try:
            out, _ = self.proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except proc.TimeoutExpired:
            self.proc.kill()
            try:  # a process stuck in the kernel may not even die: do not wait for it long
                self.proc.communicate(timeout=1.0)
            except proc.TimeoutExpired:
                pass
            return None
        return self.proc.returncode, proc.decode(out)


def _number(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def parse_query(text: str, fields: tuple[str, ...]) -> tuple[list[Gpu], str | None]:
    """GPUs and driver version from ``--query-gpu`` CSV (``noheader,nounits``) with these fields."""
    gpus: list[Gpu] = []
    driver = None
    for row in csv.reader([line for line in text.splitlines() if line.strip()], skipinitialspace=True):
        if len(row) != len(fields):
            continue
        value = {
            f: (None if v.strip() in ("[N/A]", "N/A", "") else v.strip()) for f, v in zip(fields, row, strict=True)
        }
        name = value["name"] or "NVIDIA GPU"
        cc_text = value.get("compute_cap")
        capability: tuple[int, int] | None
        if cc_text and re.fullmatch(r"\d+\.\d+", cc_text):
            major, minor = cc_text.split(".")
            capability, origin = (int(major), int(minor)), "driver"
        else:
            capability = capability_from_name(name)
            origin = "name" if capability else ""
        index = _number(value["index"] or "")
        gpus.append(Gpu(len(gpus) if index is None else index, name, capability,
                        _number(value["memory.total"] or ""), _number(value["memory.free"] or ""), origin))  # fmt: skip
        driver = driver or value["driver_version"]
    return gpus, driver


def parse_cuda_header(text: str) -> str | None:
    """``12.8`` from the summary table's ``CUDA Version: 12.8``; None for ``N/A`` or no header."""
    m = _CUDA_HEADER.search(text)
    return m.group(1) if m and m.group(1) != "N/A" else None


def _query(exe: str, fields: tuple[str, ...]) -> _Run:
    return _Run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])


def _failure(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "nvidia-smi failed without a message"


def probe(os_name: str | None = None, timeout: float = 5.0, environ: Mapping[str, str] | None = None) -> Hardware:
    """This machine's NVIDIA facts.  Never raises: failures end up in ``problem``."""
    os_name = os_name or host_os()
    exe = find_nvidia_smi(os_name, environ)
    if exe is None:
        return Hardware(os_name, "none")
    deadline = time.monotonic() + timeout
    try:
        fields: tuple[str, ...] = QUERY_FIELDS
        query, header = _query(exe, fields), _Run([exe])
        answer = query.result(deadline)
        if answer is not None and answer[0] != 0 and _NOT_A_FIELD in answer[1]:  # before R510: no compute_cap
            fields = tuple(f for f in QUERY_FIELDS if f != "compute_cap")
            answer = _query(exe, fields).result(deadline)
        table = header.result(deadline)
    except OSError as exc:
        return Hardware(os_name, "nvidia-smi", problem=f"nvidia-smi could not be run: {exc}")
    if answer is None:
        return Hardware(os_name, "nvidia-smi", problem=f"nvidia-smi did not answer within {timeout:g} s")
    status, text = answer
    if status != 0:
        return Hardware(os_name, "nvidia-smi", problem=_failure(text))
    gpus, driver = parse_query(text, fields)
    cuda = parse_cuda_header(table[1]) if table is not None and table[0] == 0 else None
    return Hardware(os_name, "nvidia-smi", driver, cuda, tuple(gpus))
