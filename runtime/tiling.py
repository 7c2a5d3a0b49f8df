"""Seamless tiling: images whose left/right and top/bottom edges meet.

A1111 does it by switching every convolution of the UNet and VAE to circular
padding, so the network sees the image as wrapped around.  The switch is a
context manager that restores the original padding afterwards, so one tiled
request never leaks into the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _convs(*modules: Any) -> list[Any]:
    import torch

    return [m for module in modules if module is not None for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


@contextmanager
def seamless(pipe: Any, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    convs = _convs(getattr(pipe, "unet", None), getattr(pipe, "vae", None))
    before = [c.padding_mode for c in convs]
    try:
        for c in convs:
            c.padding_mode = "circular"
        yield
    finally:
        for c, mode in zip(convs, before, strict=True):
            c.padding_mode = mode
