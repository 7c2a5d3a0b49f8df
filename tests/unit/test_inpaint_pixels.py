"""The pixel side of inpainting against A1111 1.10's definitions (masking.py, images.py, processing.py).

References are independent of our code: SciPy's Gaussian filter for OpenCV's
blur (same kernel size and reflect-101 border), A1111's own worked example of
the crop expansion, and hand-checked geometry.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from runtime.inpaint import crop, fill, mask
from runtime.inpaint.prepare import prepare
from runtime.inpaint.resize import resize_image
from runtime.request import GenerationRequest
from tests.support.tiny_inpaint import box_mask, noise_image


def test_a_brush_layer_gives_its_alpha_and_an_opaque_image_its_grey() -> None:
    layer = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 200), (2, 2, 5, 5))
    layer.putpixel((6, 6), (255, 0, 0, 100))  # a faint stroke edge: under 128, rounded away
    got = np.asarray(mask.binary_mask(layer))
    assert got[2:5, 2:5].min() == 255 and got.sum() == 9 * 255
    assert np.asarray(mask.binary_mask(layer, round_=False))[6, 6] == 100
    opaque = Image.new("RGBA", (4, 4), (255, 255, 255, 255))  # no transparency: the colours are the mask
    assert np.asarray(mask.binary_mask(opaque)).min() == 255


@pytest.mark.parametrize(("bx", "by"), [(4, 4), (0, 9), (13, 2)])
def test_the_blur_is_opencvs_gaussian_with_a1111s_kernel(bx: int, by: int) -> None:
    from scipy.ndimage import gaussian_filter1d

    m = box_mask(96, 80, (30, 20, 60, 50))
    expected = np.asarray(m, dtype=np.float64)
    for sigma, axis in ((bx, 1), (by, 0)):
        if sigma:
            radius = int(2.5 * sigma + 0.5)  # A1111: ksize = 2 * int(2.5 * sigma + 0.5) + 1
            expected = np.clip(np.rint(gaussian_filter1d(expected, sigma, axis=axis, mode="mirror",
                                                         truncate=radius / sigma)), 0, 255)  # fmt: skip
    got = np.asarray(mask.blur(m, bx, by), dtype=np.float64)
    assert np.abs(got - expected).max() <= 1


def test_the_crop_region_is_the_mask_box_plus_padding_inside_the_image() -> None:
    m = box_mask(100, 80, (40, 30, 50, 45))
    assert crop.crop_region(m) == (40, 30, 50, 45)
    assert crop.crop_region(m, 8) == (32, 22, 58, 53)
    assert crop.crop_region(m, 60) == (0, 0, 100, 80)
    assert crop.crop_region(Image.new("L", (10, 10), 0), 4) is None


def test_the_crop_grows_to_the_processing_ratio_as_a1111s_example() -> None:
    # masking.py: "if user drew mask in a 128x32 region, and the dimensions for processing are 512x512,
    # the region will be expanded to 128x128"
    assert crop.expand_crop_region((100, 200, 228, 232), 512, 512, 1024, 1024) == (100, 152, 228, 280)
    # at the bottom edge the box shifts up instead of leaving the image
    assert crop.expand_crop_region((100, 1000, 228, 1024), 512, 512, 1024, 1024) == (100, 896, 228, 1024)
    # at the left edge it shifts right
    assert crop.expand_crop_region((0, 10, 10, 110), 512, 512, 1024, 1024) == (0, 10, 100, 110)


def test_resize_and_fill_stretches_the_edges_into_the_new_bands() -> None:
    rows = np.random.RandomState(1).randint(0, 256, (64, 1, 3)).astype(np.uint8)
    src = Image.fromarray(np.repeat(rows, 64, axis=1))  # each row one colour: its edge columns are known
    out = np.asarray(resize_image(2, src, 128, 64), dtype=np.int16)
    assert out.shape == (64, 128, 3)
    assert (out[:, 32:96] == np.asarray(src, dtype=np.int16)).all()  # same height: the image unscaled in the middle
    left, right = out[:, :32], out[:, 96:]
    assert (left == left[:, :1]).all() and (right == right[:, :1]).all()  # each band: one column stretched
    assert np.abs(left[:, 0] - rows[:, 0]).max() <= 1 and np.abs(right[:, 0] - rows[:, 0]).max() <= 1


def test_crop_and_resize_covers_and_centres() -> None:
    src = noise_image(128, 64)
    out = np.asarray(resize_image(1, src, 64, 64))
    assert (out == np.asarray(src)[:, 32:96]).all()


def test_fill_paints_the_hole_from_the_surroundings_and_keeps_the_rest() -> None:
    src = Image.new("RGB", (64, 64), (200, 40, 40))
    src.paste((0, 0, 255), (24, 24, 40, 40))  # a blue square, masked: fill must not keep its blue
    m = box_mask(64, 64, (24, 24, 40, 40))
    out = np.asarray(fill.fill(src, m), dtype=np.int16)
    assert (out[np.asarray(m) == 0] == np.asarray(src, dtype=np.int16)[np.asarray(m) == 0]).all()
    hole = out[24:40, 24:40].reshape(-1, 3)
    assert np.abs(hole - np.array([200, 40, 40])).max() <= 8  # the surroundings' red, not the blue


def test_whole_picture_overlay_keeps_everything_outside_the_doubled_blur() -> None:
    src = noise_image(64, 64)
    req = GenerationRequest(width=64, height=64, init_images=[src], mask=box_mask(64, 64, (20, 20, 40, 40)),
                            inpaint_full_res=False, mask_blur_x=2, mask_blur_y=2, inpainting_fill=1)  # fmt: skip
    prepared = prepare(req)
    assert prepared.paste_to is None and prepared.fields == {"Mask blur": 2}
    black = Image.new("RGB", (64, 64))
    result = np.asarray(prepared.finish([black])[0])
    blurred = np.asarray(mask.blur(req.mask, 2, 2))
    outside = blurred == 0
    assert (result[outside] == np.asarray(src)[outside]).all()
    inner = np.clip(blurred.astype(int) * 2, 0, 255) == 255  # the overlay is transparent there: the result shows
    assert inner.any() and (result[inner] == 0).all()


def test_only_masked_crops_around_the_mask_and_pastes_back_in_place() -> None:
    src = noise_image(128, 128, seed=3)
    req = GenerationRequest(width=64, height=64, init_images=[src], mask=box_mask(128, 128, (80, 16, 100, 32)),
                            inpaint_full_res=True, inpaint_full_res_padding=6, mask_blur_x=0, mask_blur_y=0,
                            inpainting_fill=1)  # fmt: skip
    prepared = prepare(req)
    # box (80,16)-(100,32) + 6 = (74,10)-(106,38): 32x28, grown to 1:1 -> 32x32 at (74,8)
    assert prepared.paste_to == (74, 8, 32, 32)
    assert prepared.fields == {"Inpaint area": "Only masked", "Masked area padding": 6}
    expected = src.crop((74, 8, 106, 40)).resize((64, 64), Image.Resampling.LANCZOS)
    assert (np.asarray(prepared.images[0]) == np.asarray(expected)).all()
    assert prepared.mask is not None and prepared.mask.size == (64, 64)
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    result = np.asarray(prepared.finish([white])[0])
    assert result.shape == (128, 128, 3)  # back at the original size
    m = np.asarray(req.mask) > 0  # type: ignore[arg-type]
    assert (result[m] == 255).all() and (result[~m] == np.asarray(src)[~m]).all()


def test_invert_paints_what_is_not_masked() -> None:
    src = noise_image(64, 64)
    m = box_mask(64, 64, (0, 0, 32, 64))
    req = GenerationRequest(width=64, height=64, init_images=[src], mask=m, inpainting_mask_invert=1,
                            inpaint_full_res=False, mask_blur_x=0, mask_blur_y=0, inpainting_fill=1)  # fmt: skip
    prepared = prepare(req)
    assert prepared.fields["Mask mode"] == "Inpaint not masked"
    result = np.asarray(prepared.finish([Image.new("RGB", (64, 64))])[0])
    assert (result[:, :32] == np.asarray(src)[:, :32]).all() and (result[:, 32:] == 0).all()


def test_a_blank_mask_with_only_masked_is_a_plain_img2img_with_a_note() -> None:
    src = noise_image(64, 64)
    req = GenerationRequest(width=64, height=64, init_images=[src], mask=Image.new("L", (64, 64), 0))
    prepared = prepare(req)
    assert prepared.mask is None and not prepared.overlays and prepared.warnings


def test_latent_mask_is_the_resized_mask_rounded() -> None:
    m = box_mask(64, 64, (0, 0, 20, 64))  # 20 px: 2.5 latent columns
    lat = mask.latent_mask(m, 8, 8)
    assert set(np.unique(lat)) <= {0.0, 1.0} and lat.shape == (8, 8)
    assert (lat[:, :2] == 1).all() and (lat[:, 3:] == 0).all()
    soft = mask.latent_mask(m, 8, 8, round_=False)
    assert 0 < soft[0, 2] < 1
    assert (np.asarray(mask.pixel_mask(lat)).reshape(8, 8, 8, 8)[:, 0, :, 0] == lat * 255).all()


def test_bad_inpainting_fields_are_named() -> None:
    from runtime.errors import InvalidRequest

    src = noise_image(64, 64)
    for name, value in (("inpainting_fill", 4), ("resize_mode", 5), ("mask_blur_x", -1),
                        ("inpaint_full_res_padding", -2), ("inpainting_mask_invert", 2)):  # fmt: skip
        with pytest.raises(InvalidRequest) as err:
            GenerationRequest(width=64, height=64, init_images=[src], **{name: value}).check()
        assert name in err.value.message("en") and name in err.value.message("zh")
