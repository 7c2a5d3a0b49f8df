"""Masked content (``inpainting_fill``): what the masked area starts from, as A1111 1.10 does it.

0 fill: the masked pixels are painted over with blurred colours of the
surroundings before encoding (``masking.fill``); 1 original: the image as it
is; 2 latent noise: the masked latent pixels replaced by seeded Gaussian
noise; 3 latent nothing: the masked latent pixels set to zero.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFilter

FILL, ORIGINAL, LATENT_NOISE, LATENT_NOTHING = 0, 1, 2, 3
NAMES = {FILL: "fill", ORIGINAL: "original", LATENT_NOISE: "latent noise", LATENT_NOTHING: "latent nothing"}

# (blur radius, times composited): wide blurs first, then sharper ones over them
_LAYERS = ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1))


def fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The masked area painted with the surroundings' colours, smeared inwards by ever smaller blurs."""
    out = Image.new("RGBA", image.size)
    kept = Image.new("RGBa", image.size)
    kept.paste(image.convert("RGBA").convert("RGBa"), mask=Image.eval(mask.convert("L"), lambda v: 255 - v))
    for radius, times in _LAYERS:
        layer = kept.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(times):
            out.alpha_composite(layer)
    return out.convert("RGB")


def fill_latent(init: Any, keep: Any, mode: int, seeds: list[int]) -> Any:
    """The init latent with the masked area (``keep`` = 0) replaced: seeded noise (2), zeros (3), else unchanged."""
    import torch

    if mode == LATENT_NOISE:
        noise = torch.stack(
            [torch.randn(init.shape[1:], generator=torch.Generator("cpu").manual_seed(s)) for s in seeds]
        )
        return init * keep + noise.to(init.device, init.dtype) * (1 - keep)
    if mode == LATENT_NOTHING:
        return init * keep
    return init
