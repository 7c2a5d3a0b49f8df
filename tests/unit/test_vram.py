"""The VRAM preset ``auto`` picks: one rule, used by the runtime and shown by the launcher."""

from __future__ import annotations

import pytest

from launcher.models.vram import auto_preset


@pytest.mark.parametrize(
    ("mib", "arch", "preset"),
    [
        (None, "sdxl", "none"),  # no GPU: nothing to offload
        (2048, "sd15", "lowvram"),
        (4096, "sd15", "medvram"),
        (6144, "sd15", "none"),
        (8192, "sdxl", "medvram"),  # SDXL needs about twice SD 1.5's memory
        (4096, "sdxl", "lowvram"),
        (12288, "sdxl", "none"),
        (4096, "unknown", "medvram"),  # an unknown architecture is treated as SD 1.5
    ],
)
def test_auto_preset(mib: int | None, arch: str, preset: str) -> None:
    assert auto_preset(mib, arch) == preset


def test_the_runtime_uses_the_same_rule_and_honours_an_explicit_preset() -> None:
    from runtime.device import pick_vram_preset

    assert pick_vram_preset("auto", 8192, "sdxl") == auto_preset(8192, "sdxl") == "medvram"
    assert pick_vram_preset("lowvram", 24576, "sd15") == "lowvram"
