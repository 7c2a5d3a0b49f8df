"""Inpaint area "only masked" (``inpaint_full_res``): the crop around the mask and the paste back (A1111 1.10).

The crop is the mask's bounding box grown by the padding, then widened or
heightened to the processing size's aspect ratio (``masking.py``).  The
result is scaled back into that box (crop-and-resize) on a transparent canvas
of the original size, and the untouched original is laid over it through the
inverted overlay mask (``apply_overlay``): outside the blurred mask every
pixel is the original's.
"""

from __future__ import annotations

from PIL import Image

from runtime.inpaint.resize import resize_image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2


def crop_region(mask: Image.Image, pad: int = 0) -> Box | None:
    """The bounding box of the mask's non-black pixels grown by ``pad`` inside the image; None for a blank mask."""
    box = mask.getbbox()
    if not box:
        return None
    x1, y1, x2, y2 = box
    if not pad:
        return box
    return max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.width), min(y2 + pad, mask.height)


def expand_crop_region(box: Box, width: int, height: int, image_width: int, image_height: int) -> Box:
    """Grow ``box`` to the ``width``:``height`` ratio, shifted back inside the image where it overflows."""
    x1, y1, x2, y2 = box
    if (x2 - x1) / (y2 - y1) > width / height:
        y1, y2 = _grow(y1, y2, int((x2 - x1) / (width / height) - (y2 - y1)), image_height)
    else:
        x1, x2 = _grow(x1, x2, int((y2 - y1) * (width / height) - (x2 - x1)), image_width)
    return x1, y1, x2, y2


def _grow(lo: int, hi: int, grow: int, limit: int) -> tuple[int, int]:
    """One side of the box grown by ``grow`` around its middle, moved back inside ``0..limit``."""
    lo, hi = lo - grow // 2, hi + grow - grow // 2
    if hi >= limit:
        lo, hi = lo - (hi - limit), limit
    if lo < 0:
        lo, hi = 0, hi - lo
    return lo, min(hi, limit)


def overlay(image: Image.Image, overlay_mask: Image.Image) -> Image.Image:
    """The original, transparent where it is to be painted: what is laid over the result."""
    keep = Image.new("RGBa", image.size)
    keep.paste(image.convert("RGBA").convert("RGBa"), mask=Image.eval(overlay_mask.convert("L"), lambda v: 255 - v))
    return keep.convert("RGBA")


def apply_overlay(result: Image.Image, paste_to: tuple[int, int, int, int] | None, cover: Image.Image) -> Image.Image:
    """The result scaled into its crop (``paste_to`` = x, y, w, h) when there is one, with the original laid over."""
    if paste_to is not None:
        x, y, w, h = paste_to
        canvas = Image.new("RGBA", cover.size)
        canvas.paste(resize_image(1, result, w, h), (x, y))
        result = canvas
    out = result.convert("RGBA")
    out.alpha_composite(cover)
    return out.convert("RGB")
