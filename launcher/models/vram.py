"""Which VRAM preset ``auto`` picks for a card and an architecture (standard library only).

One rule for both sides: the runtime applies it when it places a model, and
the launcher's 高级选项 page shows what it will pick on this machine.  Below
these many MiB of VRAM the preset is taken; SDXL needs about twice SD 1.5's.
"""

from __future__ import annotations

AUTO_LOWVRAM_MIB = {"sd15": 3000, "sd2": 3500, "sdxl": 5000}
AUTO_MEDVRAM_MIB = {"sd15": 5000, "sd2": 6000, "sdxl": 10000}


def auto_preset(vram_mib: int | None, architecture: str) -> str:
    """``none``, ``medvram`` or ``lowvram`` for a GPU with ``vram_mib`` (None: no GPU, so ``none``)."""
    if vram_mib is None:
        return "none"
    arch = architecture if architecture in AUTO_MEDVRAM_MIB else "sd15"
    if vram_mib < AUTO_LOWVRAM_MIB[arch]:
        return "lowvram"
    if vram_mib < AUTO_MEDVRAM_MIB[arch]:
        return "medvram"
    return "none"
