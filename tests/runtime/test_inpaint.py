"""Inpainting and outpainting through the engine on the tiny random models, on the CPU (A1111 1.10's behaviour).

The tiny model draws noise, which is what these tests need: wherever A1111
would let the model paint, the pixels change; wherever A1111 lays the
original back over the result, they must be the original's, bit for bit.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runtime.engine import Engine
from runtime.inpaint import latents as inpaint_latents
from runtime.inpaint import mask as masks
from runtime.inpaint.fill import fill as a1111_fill
from runtime.pnginfo import parse_parameters
from runtime.request import GenerationRequest
from tests.runtime.conftest import LOCAL, make_bundle
from tests.support.tiny_inpaint import TinyInpaint, box_mask, build_tiny_inpaint, build_tiny_sdxl_inpaint, noise_image
from tests.support.tiny_sd import TinySD
from tests.support.tiny_sdxl import build_tiny_sdxl

SMALL = {"steps": 4, "width": 64, "height": 64, "save_images": False, "prompt": "a cat", "seed": 5}
INPAINT = "tiny-sd15-inpainting.safetensors"
INPAINT_XL = "tiny-xl-inpainting"
PLAIN_XL = "tiny-xl"


def px(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def gen(engine: Engine, **kw: Any) -> Any:
    return engine.generate(GenerationRequest(**{**SMALL, **kw}))


SOURCE = noise_image(64, 64, seed=1)
MASK = box_mask(64, 64, (16, 24, 40, 48))


@pytest.mark.parametrize("fill", [0, 1, 2, 3])
@pytest.mark.parametrize("only_masked", [False, True])
def test_pixels_outside_the_blurred_mask_are_the_originals(engine: Engine, fill: int, only_masked: bool) -> None:
    r = gen(engine, init_images=[SOURCE], mask=MASK, inpainting_fill=fill, inpaint_full_res=only_masked,
            inpaint_full_res_padding=8, denoising_strength=0.9)  # fmt: skip
    out, src = px(r.images[0]), px(SOURCE)
    assert out.shape == src.shape
    untouched = np.asarray(masks.blur(MASK, 4, 4)) == 0  # A1111's overlay: zero blurred mask, original pixel
    assert (out[untouched] == src[untouched]).all()
    inside = np.asarray(MASK) == 255
    assert (out[inside] != src[inside]).any(axis=-1).mean() > 0.5  # the model painted there


def test_only_masked_crops_a_big_image_and_pastes_back_in_place(engine: Engine) -> None:
    src = noise_image(160, 128, seed=2)
    m = box_mask(160, 128, (100, 20, 120, 36))
    r = gen(engine, init_images=[src], mask=m, inpaint_full_res=True, inpaint_full_res_padding=4, mask_blur_x=0,
            mask_blur_y=0, inpainting_fill=1, denoising_strength=1.0)  # fmt: skip
    out = px(r.images[0])
    assert out.shape == (128, 160, 3)  # the original's size, not the 64x64 processing size
    masked = np.asarray(m) == 255
    assert (out[~masked] == px(src)[~masked]).all()
    assert (out[masked] != px(src)[masked]).any(axis=-1).mean() > 0.5
    fields = parse_parameters(r.infotexts[0])
    assert (fields["Inpaint area"], fields["Masked area padding"], fields["Size-1"]) == ("Only masked", "4", "64")


def test_invert_paints_only_what_is_not_masked(engine: Engine) -> None:
    r = gen(engine, init_images=[SOURCE], mask=MASK, inpainting_mask_invert=1, inpaint_full_res=False,
            mask_blur_x=0, mask_blur_y=0, inpainting_fill=1, denoising_strength=1.0)  # fmt: skip
    out, src = px(r.images[0]), px(SOURCE)
    masked = np.asarray(MASK) == 255
    assert (out[masked] == src[masked]).all()
    assert (out[~masked] != src[~masked]).any(axis=-1).mean() > 0.5
    assert "Mask mode: Inpaint not masked" in r.infotexts[0]


def test_outpainting_resize_and_fill_grows_the_canvas_and_paints_the_new_bands(engine: Engine) -> None:
    edges = box_mask(64, 64, (0, 0, 4, 64))
    edges.paste(255, (60, 0, 64, 64))  # the left and right edge columns: resize-and-fill stretches them
    r = gen(engine, init_images=[SOURCE], mask=edges, width=128, height=64, resize_mode=2, inpaint_full_res=False,
            mask_blur_x=0, mask_blur_y=0, inpainting_fill=2, denoising_strength=1.0)  # fmt: skip
    out = px(r.images[0])
    assert out.shape == (64, 128, 3)
    assert (out[:, 36:92] == px(SOURCE)[:, 4:60]).all()  # the picture itself, where the mask is black
    from runtime.inpaint.resize import resize_image

    stretched = px(resize_image(2, SOURCE, 128, 64))
    assert (out[:, :32] != stretched[:, :32]).any(axis=-1).mean() > 0.5  # the new bands are painted
    assert (out[:, 96:] != stretched[:, 96:]).any(axis=-1).mean() > 0.5


class PipelineSpy:
    """Stands in for the inpainting pipeline: records its arguments, returns the init latent it was given."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []  # type: ignore[var-annotated]
        self.unet, self.scheduler = real.unet, real.scheduler

    def __call__(self, **kw: Any) -> Any:
        self.calls.append(kw)
        return type("Out", (), {"images": kw["image"]})()


def reference_latent(engine: Engine, image: Image.Image, seed: int) -> Any:
    """The VAE encoding A1111 starts from (``get_first_stage_encoding``: a sample, scaled), computed with diffusers."""
    import torch

    assert engine.model is not None
    pipe = engine.model.pipe
    pixels = pipe.image_processor.preprocess(image)
    with torch.inference_mode():
        dist = pipe.vae.encode(pixels).latent_dist
    return dist.sample(generator=torch.Generator("cpu").manual_seed(seed)) * pipe.vae.config.scaling_factor


@pytest.mark.parametrize("fill", [0, 1, 2, 3])
def test_each_masked_content_mode_changes_the_initial_latent_as_a1111(
    engine: Engine, fill: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    assert engine.model is not None
    spy = PipelineSpy(inpaint_latents.inpaint_pipeline(engine.model))
    monkeypatch.setattr(inpaint_latents, "inpaint_pipeline", lambda model: spy)
    gen(engine, init_images=[SOURCE], mask=MASK, inpaint_full_res=False, mask_blur_x=0, mask_blur_y=0,
        inpainting_fill=fill)  # fmt: skip
    init = spy.calls[0]["image"]
    paint = torch.from_numpy(np.asarray(MASK.resize((8, 8)), dtype=np.float32) / 255).round()  # A1111's latmask
    keep = 1 - paint
    original = reference_latent(engine, SOURCE, SMALL["seed"])  # type: ignore[arg-type]
    filled = reference_latent(engine, a1111_fill(SOURCE, MASK), SMALL["seed"])  # type: ignore[arg-type]
    # A1111 paints the masked pixels over with the surroundings' colours (masking.fill) in every mode but
    # "original", and then changes the latent for the two latent modes
    if fill == 0:
        assert torch.allclose(init, filled, atol=1e-5)
        assert not torch.allclose(init * paint, original * paint, atol=1e-3)
    elif fill == 1:
        assert torch.allclose(init, original, atol=1e-5)
    elif fill == 2:  # latent noise: the seed's Gaussian noise where masked
        noise = torch.randn(original.shape[1:], generator=torch.Generator("cpu").manual_seed(SMALL["seed"]))  # type: ignore[arg-type]
        assert torch.allclose(init, filled * keep + noise * paint, atol=1e-5)
    else:  # latent nothing: zero where masked
        assert torch.allclose(init, filled * keep, atol=1e-5)
        assert (init[..., paint.bool()] == 0).all()


def test_the_noise_multiplier_is_recorded(engine: Engine) -> None:
    r = gen(engine, init_images=[SOURCE], mask=MASK, initial_noise_multiplier=0.9)
    s = gen(engine, init_images=[SOURCE], mask=MASK)
    assert "Noise multiplier: 0.9" in r.infotexts[0] and "Noise multiplier" not in s.infotexts[0]
    assert (px(r.images[0]) != px(s.images[0])).any()


def test_the_parameters_text_has_a1111s_inpaint_keys(engine: Engine) -> None:
    r = gen(engine, init_images=[SOURCE], mask=MASK, inpaint_full_res=True, inpaint_full_res_padding=32,
            inpainting_fill=0, denoising_strength=0.6)  # fmt: skip
    fields = parse_parameters(r.infotexts[0])
    assert fields["Denoising strength"] == "0.6" and fields["Mask blur"] == "4"
    assert (fields["Inpaint area"], fields["Masked area padding"], fields["Masked content"]) == (
        "Only masked",
        "32",
        "fill",
    )
    assert r.info["is_using_inpainting_conditioning"] is False


# --- inpainting models (9-channel UNets) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_inpaint(tmp_path_factory: pytest.TempPathFactory) -> TinyInpaint:
    return build_tiny_inpaint(tmp_path_factory.mktemp("tiny_inpaint"))


@pytest.fixture(scope="module")
def inpaint_engine(
    tiny_sd: TinySD, tiny_inpaint: TinyInpaint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bundle-inpaint")
    bundle = make_bundle(root, tiny_sd)
    shutil.copy(tiny_inpaint.checkpoint, root / "models" / "Stable-diffusion" / INPAINT)
    folder = root / "models" / "Stable-diffusion"
    shutil.copytree(build_tiny_sdxl_inpaint(tmp_path_factory.mktemp("xl")), folder / INPAINT_XL)
    shutil.copytree(build_tiny_sdxl(tmp_path_factory.mktemp("xl-plain")).diffusers_dir, folder / PLAIN_XL)
    e = Engine(bundle)
    e._switch_to(_as_sd15(e, INPAINT))  # the tiny file's cross-attention is 32 wide: the library cannot name it
    yield e


def _as_sd15(engine: Engine, name: str) -> Any:
    from runtime.checkpoints import Checkpoint

    ckpt = next(c for c in engine.checkpoints if c.path.name == name)
    return Checkpoint(ckpt.path, ckpt.format, "sd15", False)


def test_a_single_inpainting_file_loads_with_a_9_channel_unet(
    inpaint_engine: Engine, tiny_inpaint: TinyInpaint
) -> None:
    from diffusers import UNet2DConditionModel

    assert inpaint_engine.model is not None
    unet = inpaint_engine.model.pipe.unet
    assert unet.config.in_channels == 9
    theirs = UNet2DConditionModel.from_pretrained(tiny_inpaint.diffusers_dir, subfolder="unet").state_dict()
    ours = unet.state_dict()
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)


def test_an_inpainting_model_gets_the_mask_and_the_masked_image_as_conditioning(inpaint_engine: Engine) -> None:
    import torch

    assert inpaint_engine.model is not None
    pipe = inpaint_engine.model.pipe
    seen: list[Any] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        r = gen(inpaint_engine, init_images=[SOURCE], mask=MASK, inpaint_full_res=False, mask_blur_x=0,
                mask_blur_y=0, inpainting_fill=1, cfg_scale=1.0)  # fmt: skip
    finally:
        handle.remove()
    assert seen and all(x.shape[1] == 9 for x in seen)
    first = seen[0][:1]
    # channel 4: the mask at latent size (nearest, as A1111's interpolate); 5-8: the masked image, encoded
    expected_mask = torch.from_numpy(np.asarray(MASK, dtype=np.float32)[::8, ::8] / 255)
    assert torch.equal(first[0, 4], expected_mask)
    blanked = pipe.image_processor.preprocess(SOURCE) * (1 - torch.from_numpy(np.asarray(MASK, dtype=np.float32) / 255))
    with torch.inference_mode():
        dist = pipe.vae.encode(blanked).latent_dist
    expected = dist.sample(generator=torch.Generator("cpu").manual_seed(SMALL["seed"])) * pipe.vae.config.scaling_factor  # type: ignore[arg-type]
    assert torch.allclose(first[:, 5:], expected, atol=1e-5)
    assert r.info["is_using_inpainting_conditioning"] is True
    untouched = np.asarray(MASK) == 0
    assert (px(r.images[0])[untouched] == px(SOURCE)[untouched]).all()


def test_the_masked_image_conditioning_steers_the_result(inpaint_engine: Engine) -> None:
    a = gen(inpaint_engine, init_images=[SOURCE], mask=MASK, inpainting_fill=1, denoising_strength=1.0)
    b = gen(inpaint_engine, init_images=[noise_image(64, 64, seed=9)], mask=MASK, inpainting_fill=1,
            denoising_strength=1.0)  # fmt: skip
    inside = np.asarray(MASK) == 255
    assert (px(a.images[0])[inside] != px(b.images[0])[inside]).any()  # only the (masked) image differs


def test_an_inpainting_model_also_draws_txt2img_and_hires(inpaint_engine: Engine) -> None:
    r = gen(inpaint_engine)
    assert r.images[0].size == (64, 64) and r.info["is_using_inpainting_conditioning"] is True
    h = gen(inpaint_engine, enable_hr=True, hr_scale=1.5)
    assert h.images[0].size == (96, 96)
    plain = gen(inpaint_engine, init_images=[SOURCE], denoising_strength=0.5)  # img2img without a mask
    assert plain.images[0].size == (64, 64)


@pytest.mark.parametrize(("name", "channels"), [(INPAINT_XL, 9), (PLAIN_XL, 4)])
def test_sdxl_models_inpaint(inpaint_engine: Engine, name: str, channels: int) -> None:
    try:
        inpaint_engine.load(name)
        assert inpaint_engine.model is not None and inpaint_engine.model.is_sdxl
        assert inpaint_engine.model.pipe.unet.config.in_channels == channels
        r = gen(inpaint_engine, init_images=[SOURCE], mask=MASK, inpaint_full_res=False, mask_blur_x=0,
                mask_blur_y=0, inpainting_fill=1, denoising_strength=1.0)  # fmt: skip
    finally:
        inpaint_engine._switch_to(_as_sd15(inpaint_engine, INPAINT))
    untouched = np.asarray(MASK) == 0
    assert (px(r.images[0])[untouched] == px(SOURCE)[untouched]).all()
    assert (px(r.images[0])[~untouched] != px(SOURCE)[~untouched]).any()
    assert r.info["is_using_inpainting_conditioning"] is (channels == 9)


# --- the API --------------------------------------------------------------------------------------------------


def b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_the_api_inpaints_with_a_mask(client: Any) -> None:
    body = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "seed": 5, "init_images": [b64(SOURCE)],
            "mask": b64(MASK), "mask_blur": 0, "inpainting_fill": 1, "inpaint_full_res": 0, "denoising_strength": 1}  # fmt: skip
    answer = client.post("/sdapi/v1/img2img", json=body)
    assert answer.status_code == 200, answer.text
    out = px(Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))))
    masked = np.asarray(MASK) == 255
    assert (out[~masked] == px(SOURCE)[~masked]).all()
    assert (out[masked] != px(SOURCE)[masked]).any(axis=-1).mean() > 0.5
    assert "mask" not in answer.json()["parameters"]  # not echoed back
    info = json.loads(answer.json()["info"])
    assert "Masked content" not in info["infotexts"][0] and "Mask blur" not in info["infotexts"][0]


def test_the_api_takes_a_transparent_brush_layer_as_mask(client: Any) -> None:
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (16, 24, 40, 48))
    body = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "seed": 5, "init_images": [b64(SOURCE)],
            "mask": b64(layer), "mask_blur_x": 0, "mask_blur_y": 0, "inpainting_fill": 3,
            "inpaint_full_res": False, "inpainting_mask_invert": 1}  # fmt: skip
    answer = client.post("/sdapi/v1/img2img", json=body)
    assert answer.status_code == 200, answer.text
    out = px(Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))))
    masked = np.asarray(MASK) == 255  # inverted: the stroke is kept, the rest painted
    assert (out[masked] == px(SOURCE)[masked]).all() and (out[~masked] != px(SOURCE)[~masked]).any()


@pytest.mark.parametrize(("field", "value"), [("inpainting_fill", 4), ("mask_blur", -1), ("mask", "not-an-image"),
                                              ("inpainting_mask_invert", 2), ("resize_mode", 4)])  # fmt: skip
def test_the_api_names_a_bad_inpainting_field(client: Any, field: str, value: Any) -> None:
    body = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "init_images": [b64(SOURCE)], field: value}
    answer = client.post("/sdapi/v1/img2img", json=body)
    assert answer.status_code == 422 and field in answer.text


def test_the_host_is_loopback(client: Any) -> None:
    assert str(client.base_url).rstrip("/") == LOCAL


def test_latent_upscale_resizes_the_init_latent_not_the_pixels(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert engine.model is not None
    spy = PipelineSpy(inpaint_latents.inpaint_pipeline(engine.model))
    monkeypatch.setattr(inpaint_latents, "inpaint_pipeline", lambda model: spy)
    small = noise_image(32, 32, seed=4)
    gen(engine, init_images=[small], resize_mode=3)  # A1111's "Just resize (latent upscale)", no mask
    init = spy.calls[0]["image"]
    expected = torch.nn.functional.interpolate(reference_latent(engine, small, SMALL["seed"]), size=(8, 8),  # type: ignore[arg-type]
                                               mode="bilinear")  # fmt: skip
    assert init.shape == (1, 4, 8, 8) and torch.allclose(init, expected, atol=1e-5)


def test_a_mask_of_another_size_is_scaled_to_the_picture(engine: Engine) -> None:
    half = MASK.resize((32, 32), Image.Resampling.NEAREST)
    r = gen(engine, init_images=[SOURCE], mask=half, inpaint_full_res=False, mask_blur_x=0, mask_blur_y=0,
            inpainting_fill=1, denoising_strength=1.0)  # fmt: skip
    far = np.ones((64, 64), dtype=bool)
    far[16:56, 8:48] = False  # the box and the reach of the Lanczos upscale of the mask
    assert (px(r.images[0])[far] == px(SOURCE)[far]).all()
    assert (px(r.images[0])[28:44, 20:36] != px(SOURCE)[28:44, 20:36]).any()
