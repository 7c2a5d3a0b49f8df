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
