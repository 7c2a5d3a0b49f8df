"""``/controlnet/*`` in the extension's shapes, over the runtime app (FastAPI's TestClient)."""

from __future__ import annotations

import base64
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import save_file

from runtime.engine import Engine
from tests.support.tiny_controlnet import shapes_image, tiny_controlnet


def b64(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_version_settings_and_module_list(client: TestClient) -> None:
    assert client.get("/controlnet/version").json() == {"version": 2}
    assert client.get("/controlnet/settings").json() == {"control_net_unit_count": 3}
    body = client.get("/controlnet/module_list").json()
    assert {"none", "canny", "invert", "tile_resample", "lineart_standard"} <= set(body["module_list"])
    canny = body["module_detail"]["canny"]["sliders"]
    assert [s["value"] for s in canny] == [512, 100, 200]


def test_model_list_names_models_with_their_short_hash(client: TestClient, engine: Engine) -> None:
    folder = engine.bundle.root / "models" / "ControlNet"
    folder.mkdir(parents=True, exist_ok=True)
    unet = engine.model.pipe.unet  # type: ignore[union-attr]
    save_file({k: v.contiguous() for k, v in tiny_controlnet(unet).state_dict().items()},
              str(folder / "control_tiny_canny.safetensors"))  # fmt: skip
    names = client.get("/controlnet/model_list").json()["model_list"]
    assert len(names) == 1 and names[0].startswith("control_tiny_canny [") and len(names[0]) == len(
        "control_tiny_canny [12345678]")
    types = client.get("/controlnet/control_types").json()["control_types"]
    assert types["Canny"]["default_model"] == names[0] and types["Canny"]["default_option"] == "canny"


def test_detect_answers_the_map_as_the_extension(client: TestClient) -> None:
    import cv2

    r = client.post("/controlnet/detect", json={"controlnet_module": "canny",
                                                 "controlnet_input_images": [b64(shapes_image())],
                                                 "controlnet_processor_res": 64, "controlnet_threshold_a": 100,
                                                 "controlnet_threshold_b": 200})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["info"] == "Success"
    detected = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))))
    assert np.array_equal(detected[:, :, 0], cv2.Canny(shapes_image(), 100, 200))
    assert client.post("/controlnet/detect", json={"controlnet_module": "canny"}).status_code == 422
    bad = client.post("/controlnet/detect", json={"controlnet_module": "depth_midas",
                                                   "controlnet_input_images": [b64(shapes_image())]})  # fmt: skip
    assert bad.status_code == 422 and "depth_midas" in bad.text


def test_the_routes_need_the_login_when_there_is_one(locked: TestClient) -> None:
    assert locked.get("/controlnet/version").status_code == 401
    assert locked.get("/controlnet/version", auth=("ann", "秘密pw".encode())).status_code == 200  # type: ignore[arg-type]


# --- units in generation requests ---------------------------------------------------------------------------------

SMALL = {"prompt": "a box", "steps": 2, "width": 64, "height": 64, "seed": 3, "cfg_scale": 7}


def canny_unit(name: str, **kw: object) -> dict[str, object]:
    return {"enabled": True, "image": b64(shapes_image()), "module": "canny", "model": name, "weight": 1.0,
            "resize_mode": "Crop and Resize", "processor_res": 64, "threshold_a": 100, "threshold_b": 200,
            "guidance_start": 0.0, "guidance_end": 1.0, "control_mode": "Balanced", **kw}  # fmt: skip


def png_of(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_txt2img_with_a_canny_unit_returns_the_image_the_map_and_the_unit_in_the_infotext(
    client: TestClient, engine: Engine
) -> None:
    (name,) = client.get("/controlnet/model_list").json()["model_list"] or [None]
    assert name, "the model_list test puts the tiny model in place first"
    plain = client.post("/sdapi/v1/txt2img", json=SMALL).json()["images"][0]
    r = client.post("/sdapi/v1/txt2img", json={**SMALL, "alwayson_scripts": {"controlnet": {"args": [canny_unit(name)]}}})
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert len(images) == 2
    picture, detected = png_of(images[0]), png_of(images[1])
    assert np.asarray(picture.convert("RGB")).tolist() != np.asarray(png_of(plain).convert("RGB")).tolist()
    assert np.array_equal(np.asarray(detected)[:, :, 0], __import__("cv2").Canny(shapes_image(), 100, 200))
    text = picture.info["parameters"]
    assert f'ControlNet 0: "Module: canny, Model: {name}, Weight: 1, Resize Mode: Crop and Resize' in text
    assert text.index("ControlNet 0") < text.index("Version:")
    weightless = {**SMALL, "alwayson_scripts": {"ControlNet": {"args": [canny_unit(name, weight=0)]}}}
    same = client.post("/sdapi/v1/txt2img", json=weightless).json()["images"][0]
    assert np.array_equal(np.asarray(png_of(same).convert("RGB")), np.asarray(png_of(plain).convert("RGB")))


def test_img2img_units_use_the_init_image_when_they_have_none(client: TestClient) -> None:
    (name,) = client.get("/controlnet/model_list").json()["model_list"]
    unit = canny_unit(name)
    unit.pop("image")
    r = client.post("/sdapi/v1/img2img", json={**SMALL, "init_images": [b64(shapes_image())],
                                               "denoising_strength": 0.75,
                                               "alwayson_scripts": {"controlnet": {"args": [unit]}}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 2


def test_bad_units_are_refused_with_the_field_named(client: TestClient) -> None:
    bad_mode = {**SMALL, "alwayson_scripts": {"controlnet": {"args": [canny_unit("x", control_mode="Loud")]}}}
    r = client.post("/sdapi/v1/txt2img", json=bad_mode)
    assert r.status_code == 422 and "control_mode" in r.text
    missing = {**SMALL, "alwayson_scripts": {"controlnet": {"args": [canny_unit("control_v11p_sd15_depth")]}}}
    r = client.post("/sdapi/v1/txt2img", json=missing)
    assert r.status_code == 422 and "control_v11p_sd15_depth" in r.text
    no_image = {**SMALL, "alwayson_scripts": {"controlnet": {"args": [{"module": "canny", "model": "x"}]}}}
    assert client.post("/sdapi/v1/txt2img", json=no_image).status_code == 422
