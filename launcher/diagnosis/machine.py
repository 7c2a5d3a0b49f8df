"""Holding log findings against what the doctor can check on this machine.

A log may be old, or come from another program's environment.  When a
finding says something the doctor's own probe contradicts (the log says CPU
torch, the bundle's torch has CUDA), it would send the user to fix what is
not broken.  :func:`reconcile` rewords such a finding (confidence "low", with
what this machine shows) or, if it was only a guess to begin with, drops it.
The facts come from the same probe the doctor uses (:func:`from_probe`), and
tests hand in their own :class:`MachineFacts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from launcher.diagnosis.logread import LogView

if TYPE_CHECKING:
    from launcher.doctor.scanner import Finding

SUPPORTED_PYTHON = ("3.10", "3.12")  # the range the packs' torch builds cover


@dataclass(frozen=True)
class MachineFacts:
    python: str | None = None  # "3.10.11"
    torch: str | None = None  # "2.7.1+cu128"
    torch_cuda: str | None = None  # torch.version.cuda; None for a CPU build
    cuda_available: bool | None = None
    arch_list: tuple[str, ...] = ()  # ("sm_80", "sm_86", ...)
    gpus: tuple[str, ...] = field(default_factory=tuple)


def from_probe(facts: dict[str, Any]) -> MachineFacts | None:
    """The facts of :func:`launcher.doctor.envprobe.probe_environment` (its ``facts``), or None without torch."""
    t = facts.get("torch")
    if not isinstance(t, dict):
        return MachineFacts(python=facts.get("python")) if facts.get("python") else None
    return MachineFacts(facts.get("python"), t.get("version"), t.get("cuda"), t.get("cuda_available"),
                        tuple(t.get("arch_list") or ()), tuple(t.get("devices") or ()))  # fmt: skip


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:2])


# code -> what on this machine contradicts it (a sentence for the note), or None
def _cpu_build(m: MachineFacts, f: Finding, v: LogView) -> str | None:
    return f"torch {m.torch} (CUDA {m.torch_cuda})" if m.torch and m.torch_cuda else None


def _no_gpu(m: MachineFacts, f: Finding, v: LogView) -> str | None:
    return f"torch {m.torch}, CUDA available" if m.cuda_available else None


def _python(m: MachineFacts, f: Finding, v: LogView) -> str | None:
    if v.python or v.pythons or not m.python:  # the log names its own Python: nothing to hold it against
        return None
    lo, hi = SUPPORTED_PYTHON
    return f"Python {m.python}" if _vt(lo) <= _vt(m.python) <= _vt(hi) else None


def _arch(m: MachineFacts, f: Finding, v: LogView) -> str | None:
    sm = f.values.get("sm")
    if sm and m.cuda_available and f"sm_{sm}" in m.arch_list:
        return f"torch {m.torch} (sm_{sm} supported)"
    return None


def _xformers(m: MachineFacts, f: Finding, v: LogView) -> str | None:
    have = f.values.get("have_torch")
    return f"torch {m.torch}" if have and m.torch and have != m.torch else None


CONTRADICTIONS: dict[str, Callable[[MachineFacts, Finding, LogView], str | None]] = {
    "TORCH_CPU_BUILD": _cpu_build,
    "TORCH_CUDA_UNAVAILABLE": _no_gpu,
    "DRIVER_TOO_OLD": _no_gpu,
    "PYTHON_VERSION_UNSUPPORTED": _python,
    "GPU_ARCH_UNSUPPORTED": _arch,
    "XFORMERS_TORCH_MISMATCH": _xformers,
}


def reconcile(found: list[Finding], machine: MachineFacts, view: LogView, lang: str) -> list[Finding]:
    out = []
    for f in found:
        check = CONTRADICTIONS.get(f.code)
        seen = check(machine, f, view) if check else None
        if seen is None:
            out.append(f)
        elif f.confidence != "low":
            note = (f"（注意：这台电脑上一键的环境现在是 {seen}，与日志不符；这份日志可能来自别的程序或更早的状态。）" if lang == "zh"
                    else f" (Note: Yijian's environment on this computer now has {seen}, which does not match the log; "
                    "the log may come from another program or an earlier state.)")  # fmt: skip
            out.append(replace(f, detail=f.detail + note, confidence="low"))
    return out
