"""The inpainting mask, prepared the way A1111 1.10 prepares it (``StableDiffusionProcessingImg2Img.init``).

White (255) means "paint here".  A mask arrives as a black-and-white image or
as an RGBA brush layer (its alpha is the mask); ``inpainting_mask_invert``
swaps the two areas; the blur is OpenCV's Gaussian blur with A1111's kernel
size ``2 * int(2.5 * sigma + 0.5) + 1``, run along x and then along y.  The
latent mask that decides, per latent pixel, what is sampled and what is kept
is the mask resized to the latent size and rounded (``mask_round``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def binary_mask(image: Image.Image, *, round_: bool = True) -> Image.Image:
    """A1111's ``create_binary_mask``: an RGBA image with some transparency gives its alpha, anything else its grey."""
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        alpha = image.split()[-1].convert("L")
        return alpha.point(lambda v: 255 if v > 128 else 0) if round_ else alpha
    return image.convert("L")


def invert(mask: Image.Image) -> Image.Image:
    return ImageOps.invert(mask.convert("L"))


def gaussian_kernel(sigma: float) -> np.ndarray:
    """OpenCV's ``getGaussianKernel`` at A1111's size for ``sigma``."""
    size = 2 * int(2.5 * sigma + 0.5) + 1
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return np.asarray(k / k.sum())


def _blur_axis(values: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    kernel = gaussian_kernel(sigma)
    r = len(kernel) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r, r)
    padded = np.pad(values, pad, mode="reflect")  # OpenCV's default border, BORDER_REFLECT_101
    n = values.shape[axis]
    out = np.zeros_like(values, dtype=np.float64)
    for i, w in enumerate(kernel):
        out += w * (padded[i : i + n] if axis == 0 else padded[:, i : i + n])
    return out


def blur(mask: Image.Image, blur_x: int, blur_y: int) -> Image.Image:
    """A1111's mask blur: horizontal pass with ``blur_x``, then vertical with ``blur_y`` (0 skips a pass)."""
    values = np.asarray(mask.convert("L"), dtype=np.float64)
    for sigma, axis in ((blur_x, 1), (blur_y, 0)):
        if sigma > 0:
            values = np.clip(np.rint(_blur_axis(values, sigma, axis)), 0, 255)
    return Image.fromarray(values.astype(np.uint8), "L")


def doubled(mask: Image.Image) -> Image.Image:
    """The overlay mask of a whole-picture inpaint: the blurred mask x2, so the blur's inner half is fully painted."""
    values = np.asarray(mask.convert("L"), dtype=np.float32) * 2
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


def latent_mask(mask: Image.Image, latent_width: int, latent_height: int, *, round_: bool = True) -> np.ndarray:
    """What is sampled (1) and what is kept (0) per latent pixel: the mask resized (bicubic, as A1111), rounded."""
    small = mask.convert("RGB").resize((latent_width, latent_height))
    values = np.asarray(small, dtype=np.float32)[:, :, 0] / 255
    return np.around(values) if round_ else values


def pixel_mask(latent: np.ndarray, scale: int = 8) -> Image.Image:
    """The latent mask blown up to pixels (each latent pixel a ``scale``-square block), for the pipeline's mask input.

    The pipeline shrinks it again with nearest-neighbour interpolation, which gives back exactly ``latent``.
    """
    big = np.kron(np.clip(latent, 0, 1), np.ones((scale, scale), dtype=np.float32))
    return Image.fromarray(np.rint(big * 255).astype(np.uint8), "L")
