"""Tiny random ControlNets for tests (the demo's builder, shaped after a tiny UNet), and a test picture."""

from __future__ import annotations

import numpy as np

from runtime.controlnet.demo import random_controlnet as tiny_controlnet

__all__ = ["shapes_image", "tiny_controlnet"]


def shapes_image(w: int = 64, h: int = 64) -> np.ndarray:
    """Black, with a white rectangle in the middle half: edges a canny map must find."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    return img
