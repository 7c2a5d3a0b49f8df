"""The image editor's values turned into an init image and a mask, as A1111's img2img tabs do (``img2img.py``).

Gradio's ``ImageEditor`` hands over ``{"background", "layers", "composite"}``.
Inpaint: the picture is the background and the mask is where any layer has
been painted (its alpha).  Inpaint sketch: the picture is the composite,
coloured strokes included; the mask is every pixel the strokes changed,
dimmed by the mask transparency, and the strokes are softened into the
picture by the mask blur (A1111's mode 3).  Nothing here imports Gradio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def _value(editor: Any, key: str) -> Any:
    return editor.get(key) if isinstance(editor, dict) else getattr(editor, key, None)


def painted(layers: list[Image.Image] | None, size: tuple[int, int]) -> Image.Image:
    """One RGBA brush layer: white where any layer is painted, its alpha the strongest stroke's."""
    alpha = np.zeros((size[1], size[0]), dtype=np.uint8)
    for layer in layers or []:
        if layer is None:
            continue
        if layer.size != size:
            layer = layer.resize(size, Image.Resampling.NEAREST)
        alpha = np.maximum(alpha, np.asarray(layer.convert("RGBA"))[:, :, 3])
    out = Image.new("RGBA", size, (255, 255, 255, 0))
    out.putalpha(Image.fromarray(alpha, "L"))
    return out


def inpaint_input(editor: Any) -> tuple[Image.Image | None, Image.Image | None]:
    """(picture, brush layer) of the Inpaint tab; (None, None) before a picture is uploaded."""
    background = _value(editor, "background")
    if background is None:
        return None, None
    return background, painted(_value(editor, "layers"), background.size)


def sketch_input(editor: Any, mask_alpha: float, mask_blur: int) -> tuple[Image.Image | None, Image.Image | None]:
    """(picture with the strokes, mask) of the Inpaint sketch tab."""
    background, composite = _value(editor, "background"), _value(editor, "composite")
    if background is None or composite is None:
        return None, None
    orig = _flat(background)
    image = _flat(composite)
    if image.size != orig.size:
        image = image.resize(orig.size, Image.Resampling.LANCZOS)
    changed = np.any(np.asarray(image) != np.asarray(orig), axis=-1)
    mask = Image.fromarray(changed.astype(np.uint8) * 255, "L")
    mask = ImageEnhance.Brightness(mask).enhance(1 - mask_alpha / 100)
    soften = ImageFilter.GaussianBlur(mask_blur)
    return Image.composite(image.filter(soften), orig, mask.filter(soften)), mask


def _flat(image: Image.Image) -> Image.Image:
    from runtime.inpaint.prepare import flatten

    return flatten(image)


def is_blank(mask: Image.Image | None) -> bool:
    """True when nothing is masked (a brush layer without strokes, an all-black mask)."""
    if mask is None:
        return True
    from runtime.inpaint.mask import binary_mask

    return binary_mask(mask).getbbox() is None
