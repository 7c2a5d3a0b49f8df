"""Where and how the model runs: device, precision, VRAM preset and attention.

Each choice is made once at start from the options and the hardware, and
explained in one line of the console log, because a user reading "why is it
slow" needs to see "medvram (6 GB card)" rather than guess.

* precision: fp16 on CUDA (bf16 on request where the card has it), fp32 on
  the CPU and with ``--precision full`` (A1111's ``--no-half``);
* VRAM presets: ``none`` (all on the GPU), ``medvram`` (diffusers' model CPU
  offload: one component on the GPU at a time), ``lowvram`` (sequential
  offload: layer by layer, slowest, for 2-4 GB); ``auto`` picks from the VRAM
  and the architecture (SDXL needs more); ``medvram-sdxl`` is medvram for
  SDXL models and ``auto`` for the others (A1111's ``--medvram-sdxl``);
* attention: PyTorch's SDPA by default; xformers when asked for or, with
  ``auto``, when it is installed and actually works on this GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from launcher.models.vram import auto_preset

if TYPE_CHECKING:
    import torch

log = logging.getLogger("yijian.runtime")

VRAM_PRESETS = ("auto", "none", "medvram", "lowvram", "medvram-sdxl")  # medvram-sdxl: A1111's --medvram-sdxl
ATTENTION = ("auto", "sdpa", "xformers")
PRECISIONS = ("auto", "fp16", "bf16", "fp32", "full")  # fp32 and full (A1111's --no-half) are the same


@dataclass(frozen=True)
class Placement:
    """The resolved choices for one model."""

    device: str  # "cuda" | "cpu"
    dtype_name: str  # "float16" | "bfloat16" | "float32"
    vram: str  # "none" | "medvram" | "lowvram"
    attention: str  # "sdpa" | "xformers"
    vram_mib: int | None  # the GPU's total memory, None on the CPU
    reason: str  # one line for the log

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(self.dtype_name, torch.float32)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def total_vram_mib() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory // (1024 * 1024))


def pick_vram_preset(requested: str, vram_mib: int | None, architecture: str) -> str:
    if requested == "medvram-sdxl":  # medvram for SDXL models, the automatic choice for the others
        return "medvram" if architecture.startswith("sdxl") else auto_preset(vram_mib, architecture)
    return auto_preset(vram_mib, architecture) if requested == "auto" else requested


def pick_precision(requested: str, device: str, bf16_supported: bool) -> str:
    if device == "cpu" or requested in ("full", "fp32"):
        return "float32"
    if requested == "bf16":
        return "bfloat16" if bf16_supported else "float16"
    return "float16"


def xformers_works() -> tuple[bool, str]:
    """Whether xformers imports cleanly and runs one attention call on the GPU."""
    try:
        import torch
        import xformers.ops
    except Exception as e:  # any failure to import means "not usable"
        return False, f"xformers does not import: {e}"
    if not torch.cuda.is_available():
        return False, "xformers needs a CUDA GPU"
    try:
        q = torch.zeros(1, 8, 1, 8, device="cuda", dtype=torch.float16)
        xformers.ops.memory_efficient_attention(q, q, q)
    except Exception as e:  # a build for another torch/CUDA fails here
        return False, f"xformers does not run on this GPU: {e}"
    return True, "xformers works"


def resolve(options: Any, architecture: str) -> Placement:
    """Choose device, precision, VRAM preset and attention from the runtime options."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    vram = total_vram_mib() if device == "cuda" else None
    bf16 = bool(device == "cuda" and torch.cuda.is_bf16_supported())
    dtype = pick_precision(options.precision, device, bf16)
    preset = pick_vram_preset(options.vram, vram, architecture) if device == "cuda" else "none"
    attention = "sdpa"
    why_attention = "PyTorch SDPA"
    if options.attention in ("auto", "xformers") and device == "cuda":
        ok, why = xformers_works()
        if ok:
            attention, why_attention = "xformers", why
        elif options.attention == "xformers":
            log.warning("xformers was asked for but cannot be used (%s); using PyTorch SDPA", why)
    where = f"{torch.cuda.get_device_name(0)}, {vram} MiB" if device == "cuda" else "CPU"
    reason = f"device {device} ({where}), {dtype}, VRAM preset {preset}, attention {why_attention}"
    return Placement(device, dtype, preset, attention, vram, reason)


def oom_advice(placement: Placement, width: int, height: int) -> tuple[str, str]:
    """What to try after an out-of-memory error, most effective first (zh, en)."""
    if placement.vram == "none":
        return (
            "在“设置”里把显存模式改为 medvram（或启动参数 --vram medvram），或减小图片尺寸/批量大小。",
            "Switch the VRAM preset to medvram in Settings (or --vram medvram), or use a smaller size/batch.",
        )
    if placement.vram == "medvram":
        return (
            "改用 lowvram 显存模式（--vram lowvram，较慢），或减小尺寸/批量。",
            "Use the lowvram preset (--vram lowvram, slower), or a smaller size/batch.",
        )
    side = max(width, height)
    return (
        f"已是最省显存的模式：请减小图片尺寸（当前 {width}x{height}，试试 {max(64, side // 2)}）或批量大小为 1。",
        f"This is already the leanest preset: use a smaller size (now {width}x{height}; try {max(64, side // 2)}) "
        "or batch size 1.",
    )
