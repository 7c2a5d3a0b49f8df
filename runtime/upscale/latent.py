"""The hires fix's latent upscalers: interpolate the latents before the second pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from runtime.upscale.registry import latent_mode


def upscale_latents(
    latents: Tensor, upscaler: str, *, scale: float | None = None, size: tuple[int, int] | None = None
) -> Tensor:
    """Resize ``latents`` (batch, channels, height, width) as the A1111 upscaler ``upscaler`` does.

    Give exactly one of ``scale`` or ``size``, the target (width, height) in
    latent cells, i.e. the image size divided by the VAE factor (8); A1111
    computes ``(target_width // 8, target_height // 8)``.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    how = latent_mode(upscaler)
    height, width = latents.shape[-2:]
    if size is None:
        assert scale is not None
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"the latent size must be positive, not {size}")
    # CPU kernels lack half-precision antialiasing: compute in float32 there and convert back.
    work = latents.float() if latents.device.type == "cpu" and latents.dtype != torch.float32 else latents
    antialias = how.antialias and how.mode in ("bilinear", "bicubic")
    out = F.interpolate(work, size=(size[1], size[0]), mode=how.mode, antialias=antialias)
    return out.to(latents.dtype)
