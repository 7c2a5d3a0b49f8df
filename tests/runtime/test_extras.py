"""Extras (A1111's postprocessing upscale): sizes, crop, blend and infotext by A1111 1.10's rules, through the API too.

The expected images are built here step by step from A1111's published rules (scripts/postprocessing_upscale.py,
modules/upscaler.py) with PIL directly, not with runtime.extras.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import save_file

from runtime import extras
from runtime.engine import Engine
from runtime.errors import FeatureNotAvailable
from runtime.extras import ExtrasOptions, postprocess
from runtime.upscale import SRVGGNetCompact

LANCZOS, NEAREST = Image.Resampling.LANCZOS, Image.Resampling.NEAREST


def gradient(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def no_model(*_: object) -> Image.Image:
    raise AssertionError("no model upscaler in this case")


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_scale_by_rounds_the_target_down_to_a_multiple_of_8_after_a1111s_two_resizes() -> None:
    src = gradient(50, 30)
    out, notes = postprocess(src, ExtrasOptions(upscaler_1="Lanczos", upscaling_resize=1.3), [], no_model)
    expected = src.resize((65, 39), LANCZOS).resize((64, 32), LANCZOS)  # int(w·f), then (w·f)//8·8
    assert same(out, expected)
    assert extras.infotext(notes) == "Postprocess upscale by: 1.3, Postprocess upscaler: Lanczos"


def test_scale_to_with_crop_centres_the_upscale_on_the_canvas() -> None:
    src = gradient(64, 64)
    opts = ExtrasOptions(resize_mode=1, upscaling_resize_w=100, upscaling_resize_h=60, upscaler_1="Nearest")
    out, notes = postprocess(src, opts, [], no_model)
    big = src.resize((100, 100), NEAREST).resize((96, 96), LANCZOS)  # factor max(100/64, 60/64) = 1.5625
    canvas = Image.new("RGB", (100, 60))
    canvas.paste(big, (50 - 48, 30 - 48))
    assert same(out, canvas)
    assert extras.infotext(notes) == ("Postprocess upscale to: 100x60, Postprocess crop to: 100x60, "
                                      "Postprocess upscaler: Nearest")  # fmt: skip
    uncropped, _ = postprocess(src, ExtrasOptions(**{**opts.__dict__, "upscaling_crop": False}), [], no_model)
    assert uncropped.size == (96, 96)


def test_upscaler_2_is_blended_in_by_its_visibility() -> None:
    src = gradient(32, 32)
    opts = ExtrasOptions(upscaler_1="Lanczos", upscaler_2="Nearest", extras_upscaler_2_visibility=0.25)
    out, notes = postprocess(src, opts, [], no_model)
    a, b = src.resize((64, 64), LANCZOS), src.resize((64, 64), NEAREST)
    assert same(out, Image.blend(a, b, 0.25))
    assert notes["Postprocess upscaler 2"] == "Nearest"
    zero, notes0 = postprocess(src, ExtrasOptions(upscaler_1="Lanczos", upscaler_2="Nearest"), [], no_model)
    assert same(zero, a) and "Postprocess upscaler 2" not in notes0


def test_upscaler_none_leaves_the_image_and_says_nothing() -> None:
    src = gradient(20, 20).convert("RGBA")
    out, notes = postprocess(src, ExtrasOptions(), [], no_model)
    assert out.mode == "RGB" and out.size == (20, 20) and notes == {}


def test_face_restoration_is_refused_by_name_never_skipped() -> None:
    with pytest.raises(FeatureNotAvailable) as e:
        postprocess(gradient(8, 8), ExtrasOptions(upscaler_1="Lanczos", codeformer_visibility=0.5), [], no_model)
    assert "codeformer_visibility" in e.value.message("en") and "CodeFormer" in e.value.message("zh")


def test_a_latent_upscaler_is_not_an_extras_upscaler() -> None:
    with pytest.raises(extras.ExtrasInvalid) as e:
        postprocess(gradient(8, 8), ExtrasOptions(upscaler_1="Latent"), [], no_model)
    assert "upscaler_1" in e.value.message("en")


# --- through the API, with a model upscaler ---------------------------------------------------------------------


def b64png(image: Image.Image, **texts: str) -> str:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in texts.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()


def opened(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.fixture(scope="module")
def compact_x4(engine: Engine) -> Path:
    import torch

    torch.manual_seed(0)
    net = SRVGGNetCompact(nf=8, n_conv=2, scale=4).eval()
    path = engine.view.upscalers_dir / "4x-tiny-compact.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    engine.refresh()
    return path


def test_extra_single_image_answers_a1111s_shape(client: TestClient) -> None:
    src = gradient(64, 64)
    r = client.post("/sdapi/v1/extra-single-image",
                    json={"image": b64png(src, parameters="a cat\nSteps: 3"), "upscaling_resize": 2,
                          "upscaler_1": "Lanczos"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"html_info", "image"}
    assert body["html_info"] == "<p>Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos</p>"
    out = opened(body["image"])
    assert out.size == (128, 128) and same(out.convert("RGB"), src.resize((128, 128), LANCZOS))
    assert out.info["parameters"] == "a cat\nSteps: 3"  # the source's own text stays, as in A1111
    assert out.info["postprocessing"] == "Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos"


def test_extra_batch_images_runs_a_model_upscaler_on_each(client: TestClient, compact_x4: Path) -> None:
    images = [gradient(16, 16), gradient(24, 16)]
    r = client.post("/sdapi/v1/extra-batch-images",
                    json={"imageList": [{"data": b64png(im), "name": f"{i}.png"} for i, im in enumerate(images)],
                          "upscaling_resize": 2, "upscaler_1": compact_x4.stem})  # fmt: skip
    assert r.status_code == 200, r.text
    outs = [opened(x) for x in r.json()["images"]]
    assert [o.size for o in outs] == [(32, 32), (48, 32)]  # a ×4 model, then Lanczos down to ×2
    assert "Postprocess upscaler: 4x-tiny-compact" in r.json()["html_info"]


def test_extras_errors_name_the_field_or_the_missing_feature(client: TestClient) -> None:
    image = b64png(gradient(8, 8))
    r = client.post("/sdapi/v1/extra-single-image", json={"image": image, "upscaler_1": "Lanczos",
                                                          "gfpgan_visibility": 1})  # fmt: skip
    assert r.status_code == 501 and r.json()["code"] == "FEATURE_NOT_AVAILABLE" and "gfpgan_visibility" in r.text
    r = client.post("/sdapi/v1/extra-single-image", json={"image": image, "upscaler_1": "4x-NoSuchModel"})
    assert r.status_code == 422 and "4x-NoSuchModel" in r.text
    r = client.post("/sdapi/v1/extra-single-image", json={"image": image, "upscaling_resize": 9})
    assert r.status_code == 422
    r = client.post("/sdapi/v1/extra-batch-images", json={"imageList": []})
    assert r.status_code == 422 and "imageList" in r.text
