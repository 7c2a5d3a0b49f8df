"""ControlNet core: units as the extension reads and writes them, model-free preprocessors against OpenCV, model
files by the extension's names, and the UNet hook on a tiny random pipeline with a tiny random ControlNet."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from runtime.controlnet import models, preprocessors
from runtime.controlnet.hook import ActiveUnit, controlled_unet
from runtime.controlnet.run import ModelCache, fit, pixel_perfect_resolution, prepare_units
from runtime.controlnet.units import (
    ControlNetUnitInvalid,
    infotext,
    infotext_items,
    parse_infotext,
    unit_from_api,
    units_from_script_args,
)
from tests.support.tiny_controlnet import shapes_image, tiny_controlnet

# --- units --------------------------------------------------------------------------------------------------------


def test_a_unit_in_the_extensions_current_form() -> None:
    u = unit_from_api({"enabled": True, "module": "canny", "model": "control_v11p_sd15_canny [d14c016b]",
                       "weight": 0.8, "resize_mode": "Crop and Resize", "processor_res": 512, "threshold_a": 100,
                       "threshold_b": 200, "guidance_start": 0.1, "guidance_end": 0.9, "pixel_perfect": True,
                       "control_mode": "My prompt is more important", "image": "abc"})  # fmt: skip
    assert (u.module, u.weight, u.control_mode, u.guidance_start, u.image) == (
        "canny", 0.8, "My prompt is more important", 0.1, "abc")


def test_older_clients_keys_and_integer_enums_mean_the_same() -> None:
    u = unit_from_api({"input_image": "img", "module": "canny", "model": "m", "guidance": 0.5, "lowvram": True,
                       "resize_mode": 2, "control_mode": 2, "guessmode": False})  # fmt: skip
    assert (u.image, u.guidance_end, u.low_vram, u.resize_mode, u.control_mode) == (
        "img", 0.5, True, "Resize and Fill", "ControlNet is more important")
    assert unit_from_api({"resize_mode": "Inner Fit (Scale to Fit)"}).resize_mode == "Crop and Resize"
    assert unit_from_api({"resize_mode": 3}).resize_mode == "Just Resize"  # "Just Resize (Latent upscale)"
    assert unit_from_api({"image": {"image": "i", "mask": "m"}}).mask == "m"


@pytest.mark.parametrize(
    ("raw", "field"),
    [({"control_mode": "Loud"}, "control_mode"), ({"resize_mode": 7}, "resize_mode"),
     ({"guidance_start": 0.8, "guidance_end": 0.2}, "guidance_start"), ({"weight": "heavy"}, "a number")],
)  # fmt: skip
def test_bad_unit_fields_are_named(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ControlNetUnitInvalid) as e:
        units_from_script_args({"args": [{"module": "canny"}, raw]})
    assert field in e.value.message("en") and "unit 1" in e.value.message("en")


def test_the_infotext_is_the_extensions_and_reads_back() -> None:
    u = unit_from_api({"module": "canny", "model": "control_v11p_sd15_canny [d14c016b]", "weight": 1,
                       "processor_res": 512, "threshold_a": 100, "threshold_b": 200, "pixel_perfect": False})  # fmt: skip
    assert infotext(u) == (
        "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, Resize Mode: Crop and Resize, "
        "Low Vram: False, Processor Res: 512, Threshold A: 100, Threshold B: 200, Guidance Start: 0, "
        "Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced, Hr Option: Both, Save Detected Map: True"
    )
    assert parse_infotext(infotext(u)) == u
    # an infotext as Civitai shows it (quoted, as A1111 writes a value with commas)
    civitai = ('"Module: openpose_full, Model: control_v11p_sd15_openpose [cab727d4], Weight: 1, Resize Mode: '
               'Crop and Resize, Low Vram: False, Processor Res: 512, Guidance Start: 0, Guidance End: 1, '
               'Pixel Perfect: True, Control Mode: Balanced"')  # fmt: skip
    back = parse_infotext(civitai)
    assert (back.module, back.pixel_perfect, back.threshold_a) == ("openpose_full", True, -1)
    assert list(infotext_items([u, unit_from_api({"enabled": False}), u])) == ["ControlNet 0", "ControlNet 2"]


# --- preprocessors ------------------------------------------------------------------------------------------------


def test_canny_is_opencvs_canny_on_the_extensions_padded_resize() -> None:
    import cv2

    img = shapes_image()
    out = preprocessors.find("canny")(img, 64, 100, 200)  # short side already 64: no resize, no padding
    assert out.shape == (64, 64, 3) and np.array_equal(out[:, :, 0], cv2.Canny(img, 100, 200))
    wide = preprocessors.find("canny")(shapes_image(50, 30), 64)  # defaults 100/200; short side to 64
    assert wide.shape == (64, 107, 3) and set(np.unique(wide)) <= {0, 255}
    assert np.array_equal(wide, preprocessors.find("canny")(shapes_image(50, 30), 64))  # deterministic


def test_model_free_preprocessors_and_unknown_names() -> None:
    img = shapes_image()
    assert np.array_equal(preprocessors.find("invert (from white bg & black line)")(img), 255 - img)
    assert preprocessors.find("tile_resample")(img, -1, 2.0).shape == (32, 32, 3)
    assert preprocessors.find("lineart_standard")(img, 64).shape == (64, 64, 3)
    assert preprocessors.find("none")(img[:, :, :1]).shape == (64, 64, 3)
    with pytest.raises(preprocessors.PreprocessorUnknown) as e:
        preprocessors.find("depth_midas")
    assert "canny" in e.value.message("en")


@pytest.mark.parametrize(
    ("mode", "size"), [("Just Resize", (48, 32)), ("Crop and Resize", (48, 32)), ("Resize and Fill", (48, 32))]
)
def test_fitting_the_map_to_the_image_size(mode: str, size: tuple[int, int]) -> None:
    detected = np.zeros((64, 64, 3), dtype=np.uint8)
    detected[:, 28:36] = 255  # a vertical bar in the middle
    out = fit(detected, *size, mode)
    assert out.shape == (32, 48, 3)
    assert out[:, 24].min() == 255  # the bar stays in the middle whatever the mode
    if mode == "Resize and Fill":
        assert out[:, 0].max() == 0  # filled beside the fitted square with the border colour
    assert pixel_perfect_resolution(detected, 48, 32, mode) == (32 if mode == "Resize and Fill" else 48)


# --- models and the hook on a tiny pipeline -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipe() -> Any:
    from runtime.demo import build_demo_pipeline

    torch.set_num_threads(1)
    return build_demo_pipeline(seed=0)


@pytest.fixture(scope="module")
def cn_folder(pipe: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("bundle") / "models" / "ControlNet"
    folder.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in tiny_controlnet(pipe.unet).state_dict().items()}
    save_file(state, str(folder / "control_tiny_canny.safetensors"))
    return folder


def generate(pipe: Any, units: list[ActiveUnit], steps: int = 3, guidance: float = 7.0) -> np.ndarray:
    state = {"step": 0}

    def on_step(_pipe: Any, step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        state["step"] = step + 1
        return kwargs

    with controlled_unet(pipe, units, lambda: (state["step"], steps)):
        out = pipe("a box", num_inference_steps=steps, guidance_scale=guidance, height=64, width=64,
                   generator=torch.Generator().manual_seed(5), output_type="np", callback_on_step_end=on_step)  # fmt: skip
    return np.asarray(out.images[0])


def unit_for(pipe: Any, folder: Path, **kw: Any) -> ActiveUnit:
    cache = ModelCache()
    raw = {"module": "canny", "model": "control_tiny_canny", "processor_res": 64,
           "image": _b64(shapes_image()), **kw}  # fmt: skip
    prepared = prepare_units([unit_from_api(raw)], unet=pipe.unet, architecture="sd15", width=64, height=64,
                             folders=[folder], cache=cache)  # fmt: skip
    return prepared.units[0]


def _b64(img: np.ndarray) -> str:
    import base64
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_model_files_are_listed_by_the_extensions_name_and_found_by_stem(cn_folder: Path) -> None:
    (listed,) = models.list_models([cn_folder])
    assert listed.name == f"control_tiny_canny [{models.short_hash(listed.path)}]"
    assert models.find_model(listed.name, [cn_folder]) == listed
    assert models.find_model("control_tiny_canny", [cn_folder]) == listed
    with pytest.raises(models.ControlNetModelNotFound):
        models.find_model("control_v11p_sd15_depth", [cn_folder])


def test_a_unit_changes_the_image_and_weight_0_or_a_window_outside_the_steps_does_not(
    pipe: Any, cn_folder: Path
) -> None:
    plain = generate(pipe, [])
    controlled = generate(pipe, [unit_for(pipe, cn_folder)])
    assert np.abs(controlled - plain).max() > 1e-3
    assert np.array_equal(generate(pipe, [unit_for(pipe, cn_folder, weight=0)]), plain)
    late = generate(pipe, [unit_for(pipe, cn_folder, guidance_start=0.9, guidance_end=0.95)])  # steps at 0, 1/3, 2/3
    assert np.array_equal(late, plain)
    first_only = generate(pipe, [unit_for(pipe, cn_folder, guidance_start=0.0, guidance_end=0.0)])
    assert not np.array_equal(first_only, plain) and not np.array_equal(first_only, controlled)


def test_control_modes_differ_and_two_units_add_up(pipe: Any, cn_folder: Path) -> None:
    balanced = generate(pipe, [unit_for(pipe, cn_folder)])
    prompt = generate(pipe, [unit_for(pipe, cn_folder, control_mode="My prompt is more important")])
    control = generate(pipe, [unit_for(pipe, cn_folder, control_mode="ControlNet is more important")])
    assert not np.array_equal(balanced, prompt) and not np.array_equal(prompt, control)
    half = unit_for(pipe, cn_folder, weight=0.5)
    assert np.allclose(generate(pipe, [half, half]), balanced, atol=1e-4)  # 0.5 + 0.5 = one unit at weight 1


def test_several_units_load_the_model_once_and_a_foreign_controlnet_is_refused(
    pipe: Any, cn_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []
    real = models.load_controlnet
    monkeypatch.setattr(models, "load_controlnet", lambda *a: loads.append(a) or real(*a))
    raw = {"module": "none", "model": "control_tiny_canny", "image": _b64(shapes_image())}
    prepared = prepare_units([unit_from_api(raw), unit_from_api(raw)], unet=pipe.unet, architecture="sd15",
                             width=64, height=64, folders=[cn_folder], cache=ModelCache())  # fmt: skip
    assert len(prepared.units) == 2 and len(loads) == 1 and len(prepared.maps) == 2
    # a ControlNet of another shape (a wider UNet) does not fit this checkpoint
    from diffusers import UNet2DConditionModel

    wider = tuple(2 * c for c in pipe.unet.config.block_out_channels)
    other = UNet2DConditionModel(**{**dict(pipe.unet.config), "block_out_channels": wider})
    from safetensors.torch import save_file

    shutil.copytree(cn_folder, tmp_path / "cn")
    save_file({k: v.contiguous() for k, v in tiny_controlnet(other).state_dict().items()},
              str(tmp_path / "cn" / "control_wide.safetensors"))  # fmt: skip
    with pytest.raises(models.ControlNetModelMismatch) as e:
        models.load_controlnet(models.find_model("control_wide", [tmp_path / "cn"]), pipe.unet, "sd15")
    assert "control_wide" in e.value.message("en") and "sd15" in e.value.message("en")


@pytest.mark.parametrize("prefix", ["control_model.", ""], ids=["1.0 layout", "1.1 pruned layout"])
def test_lllyasviels_file_layouts_load_to_the_same_network(pipe: Any, tmp_path: Path, prefix: str) -> None:
    from safetensors.torch import save_file

    from tests.support.tiny_controlnet import original_layout

    net = tiny_controlnet(pipe.unet, seed=7)
    (tmp_path / "cn").mkdir()
    save_file(original_layout(net, prefix), str(tmp_path / "cn" / "control_v11p_sd15_canny.safetensors"))
    loaded = models.load_controlnet(models.find_model("control_v11p_sd15_canny", [tmp_path / "cn"]), pipe.unet, "sd15")
    want, got = net.state_dict(), loaded.state_dict()
    assert set(want) == set(got) and all(torch.equal(want[k], got[k]) for k in want)
