"""The image editor's values turned into picture and mask, as A1111's Inpaint and Inpaint sketch tabs do."""

from __future__ import annotations

import numpy as np
from PIL import Image

from runtime.inpaint import editor
from runtime.inpaint.mask import binary_mask


def picture() -> Image.Image:
    return Image.fromarray((np.random.RandomState(2).rand(32, 48, 3) * 255).astype(np.uint8)).convert("RGBA")


def test_inpaint_takes_the_background_and_the_painted_alpha() -> None:
    layer = Image.new("RGBA", (48, 32), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (10, 8, 20, 16))
    image, mask = editor.inpaint_input({"background": picture(), "layers": [layer], "composite": None})
    assert image is not None and mask is not None and image.size == mask.size == (48, 32)
    m = np.asarray(binary_mask(mask))
    assert (m[8:16, 10:20] == 255).all() and m.sum() == 80 * 255


def test_inpaint_with_nothing_painted_is_blank_and_without_a_picture_is_none() -> None:
    _, mask = editor.inpaint_input({"background": picture(), "layers": [], "composite": None})
    assert editor.is_blank(mask)
    assert editor.inpaint_input({"background": None, "layers": [], "composite": None}) == (None, None)


def test_sketch_masks_what_the_strokes_changed_and_keeps_their_colour() -> None:
    orig = picture()
    drawn = orig.copy()
    drawn.paste((255, 0, 0, 255), (30, 4, 40, 12))
    image, mask = editor.sketch_input({"background": orig, "layers": [], "composite": drawn}, 0, 0)
    assert image is not None and mask is not None
    m = np.asarray(mask)
    assert (m[4:12, 30:40] == 255).all() and m.sum() == 80 * 255
    got = np.asarray(image)
    assert (got[4:12, 30:40] == [255, 0, 0]).all()  # the colour guides the repaint ("original" content)
    assert (got[m == 0] == np.asarray(orig.convert("RGB"))[m == 0]).all()


def test_sketch_transparency_dims_the_mask() -> None:
    orig = picture()
    drawn = orig.copy()
    drawn.paste((0, 0, 255, 255), (0, 0, 8, 8))
    _, mask = editor.sketch_input({"background": orig, "layers": [], "composite": drawn}, 50, 0)
    assert mask is not None and np.asarray(mask)[2, 2] in (127, 128)
