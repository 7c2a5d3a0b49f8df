"""Tiny random ControlNets for tests, shaped after a tiny UNet, and a test picture with clear edges."""

from __future__ import annotations

from typing import Any

import numpy as np


def shapes_image(w: int = 64, h: int = 64) -> np.ndarray:
    """Black, with a white rectangle in the middle half: edges a canny map must find."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    return img


def tiny_controlnet(unet: Any, seed: int = 1) -> Any:
    """A ControlNet shaped after ``unet`` with random weights everywhere (a fresh one has zero convolutions,
    which would add nothing and hide every bug)."""
    import torch
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net.eval()
