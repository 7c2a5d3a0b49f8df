"""A1111's ``resize_image`` modes for init images and masks (``modules/images.py``).

0 just resize, 1 crop and resize (cover, centre crop), 2 resize and fill
(fit inside, the empty bands filled by stretching the image's edge rows or
columns: what outpainting relies on).  Any other mode resizes as 2, as
A1111's function does; for mode 3, "just resize (latent upscale)", the
callers leave the init image's pixels alone and interpolate its latent
instead (:func:`runtime.inpaint.latents.encode`).  Lanczos throughout, as
A1111 with no img2img upscaler chosen; modes 1 and 2 return RGB like A1111's.
"""

from __future__ import annotations

from PIL import Image

LANCZOS = Image.Resampling.LANCZOS


def resize_image(mode: int, image: Image.Image, width: int, height: int) -> Image.Image:
    if mode == 0:
        return image.resize((width, height), LANCZOS)
    ratio, src_ratio = width / height, image.width / image.height
    if mode == 1:
        src_w = width if ratio > src_ratio else image.width * height // image.height
        src_h = height if ratio <= src_ratio else image.height * width // image.width
    else:
        src_w = width if ratio < src_ratio else image.width * height // image.height
        src_h = height if ratio >= src_ratio else image.height * width // image.width
    resized = image.resize((src_w, src_h), LANCZOS)
    out = Image.new("RGB", (width, height))
    out.paste(resized, (width // 2 - src_w // 2, height // 2 - src_h // 2))
    if mode == 2:
        _stretch_edges(out, resized, width, height, src_w, src_h, ratio, src_ratio)
    return out


def _stretch_edges(out: Image.Image, resized: Image.Image, width: int, height: int, src_w: int, src_h: int,
                   ratio: float, src_ratio: float) -> None:  # fmt: skip
    """Fill the bands beside the fitted image with its first/last row (or column) stretched, as A1111 does."""
    if ratio < src_ratio:
        band = height // 2 - src_h // 2
        if band > 0:
            top = resized.resize((width, band), LANCZOS, box=(0, 0, width, 0))
            bottom = resized.resize((width, band), LANCZOS, box=(0, resized.height, width, resized.height))
            out.paste(top, (0, 0))
            out.paste(bottom, (0, band + src_h))
    elif ratio > src_ratio:
        band = width // 2 - src_w // 2
        if band > 0:
            left = resized.resize((band, height), LANCZOS, box=(0, 0, 0, height))
            right = resized.resize((band, height), LANCZOS, box=(resized.width, 0, resized.width, height))
            out.paste(left, (0, 0))
            out.paste(right, (band + src_w, 0))
