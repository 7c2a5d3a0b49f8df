"""The demo's ControlNet: a tiny random one shaped after the demo model's UNet, so ``--demo`` can show the
whole ControlNet path (panel, API, infotext) on a machine with no model.  Like the demo model it draws
noise and its name says so.  It is written once to the bundle's cache (``cache/demo/ControlNet``) and
listed beside the user's models only while the demo model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEMO_CONTROLNET = "control_demo_random_weights"


def random_controlnet(unet: Any, seed: int = 1) -> Any:
    """A ControlNet shaped after ``unet`` with random weights everywhere (a fresh one has zero convolutions,
    which would add nothing)."""
    import torch
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net.eval()


def demo_folder(cache_dir: Path) -> Path:
    return cache_dir / "demo" / "ControlNet"


def ensure_demo_controlnet(cache_dir: Path, unet: Any) -> Path:
    """The demo ControlNet's file, written when missing (whole or not at all)."""
    from safetensors.torch import save_file

    path = demo_folder(cache_dir) / f"{DEMO_CONTROLNET}.safetensors"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in random_controlnet(unet).state_dict().items()}, str(temp))
    os.replace(temp, path)
    return path
