"""``/sdapi/v1`` with a real HTTP client (FastAPI's TestClient) over the engine and the mounted UI."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.engine import Engine

SMALL = {"steps": 3, "width": 64, "height": 64}


def png_of(b64: str) -> bytes:
    return base64.b64decode(b64.split(",", 1)[-1])


def test_txt2img_answers_a1111_shapes(client: TestClient) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "a cat, (masterpiece:1.2)", "negative_prompt": "blurry",
                                               "seed": 1234, "sampler_name": "Euler a", "cfg_scale": 7, **SMALL})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    png = png_of(body["images"][0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"parameters" in png and b"Seed: 1234" in png
    info = json.loads(body["info"])
    assert info["seed"] == 1234 and info["all_seeds"] == [1234] and info["sampler_name"] == "Euler a"
    assert info["infotexts"][0].startswith("a cat, (masterpiece:1.2)\nNegative prompt: blurry\nSteps: 3")
    assert body["parameters"]["prompt"] == "a cat, (masterpiece:1.2)"


def test_batches_and_older_sampler_index(client: TestClient) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "seed": 5, "batch_size": 2, "n_iter": 2,
                                               "sampler_index": "DDIM", **SMALL})  # fmt: skip
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 4
    assert json.loads(r.json()["info"])["all_seeds"] == [5, 6, 7, 8]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"width": "wide"}, "width"), ({"steps": 0}, "steps"), ({"width": 65}, "width"), ({"cfg_scale": 99}, "cfg_scale")],
)
def test_bad_input_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", **SMALL, **body})
    assert r.status_code == 422, r.text
    assert any(d["loc"][-1] == field for d in r.json()["detail"])


def test_an_unknown_sampler_falls_back_to_a1111_s_default(client: TestClient) -> None:
    """A1111 1.10 answers with its default sampler (and logs the correction), not an error."""
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "sampler_name": "Eulr a", **SMALL})
    assert r.status_code == 200, r.text
    info = json.loads(r.json()["info"])
    assert info["sampler_name"] == "DPM++ 2M" and "Sampler: DPM++ 2M, Schedule type: Karras" in info["infotexts"][0]


def test_img2img_with_a_base64_image(client: TestClient) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 48), (200, 30, 30)).save(buf, format="PNG")
    init = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    r = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [init], "denoising_strength": 0.5,
                                               "seed": 3, **SMALL})  # fmt: skip
    assert r.status_code == 200, r.text
    image = Image.open(io.BytesIO(png_of(r.json()["images"][0])))
    assert image.size == (64, 64)
    assert json.loads(r.json()["info"])["denoising_strength"] == 0.5


def test_a_tiny_strength_answers_images_not_500(client: TestClient) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 200, 30)).save(buf, format="PNG")
    init = base64.b64encode(buf.getvalue()).decode()
    body = {"prompt": "x", "seed": 3, "width": 64, "height": 64, "steps": 5}
    r = client.post("/sdapi/v1/img2img", json={**body, "init_images": [init], "denoising_strength": 0.01})
    assert r.status_code == 200, r.text  # 5 x 0.01 < 1: A1111 runs one step
    r = client.post("/sdapi/v1/txt2img", json={**body, "steps": 2, "enable_hr": True, "hr_scale": 2,
                                               "hr_second_pass_steps": 5, "denoising_strength": 0.01})  # fmt: skip
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(png_of(r.json()["images"][0]))).size == (128, 128)


def test_img2img_rejects_a_broken_image_by_field(client: TestClient) -> None:
    r = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["bm90IGFuIGltYWdl"], **SMALL})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "init_images[0]"]


def test_lists(client: TestClient) -> None:
    models = client.get("/sdapi/v1/sd-models").json()
    assert [m["model_name"] for m in models] == ["tiny"]
    assert {"title", "model_name", "hash", "sha256", "filename"} <= set(models[0])
    names = {s["name"] for s in client.get("/sdapi/v1/samplers").json()}
    assert {
        "Euler a",
        "Euler",
        "DPM++ 2M",
        "DPM++ SDE",
        "DDIM",
        "UniPC",
        "LMS",
        "Heun",
    } <= names
    assert "Lanczos" in {u["name"] for u in client.get("/sdapi/v1/upscalers").json()}
    assert [lo["name"] for lo in client.get("/sdapi/v1/loras").json()] == ["tiny-lora"]


def test_progress_and_interrupt(client: TestClient) -> None:
    idle = client.get("/sdapi/v1/progress").json()
    assert idle["progress"] == 0 and "state" in idle
    assert client.post("/sdapi/v1/interrupt").status_code == 200


def test_options_switch_the_model(client: TestClient, engine: Engine) -> None:
    opts = client.get("/sdapi/v1/options").json()
    assert opts["sd_model_checkpoint"] == engine.model.checkpoint.title  # type: ignore[union-attr]
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny"}).status_code == 200
    r = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "missing.safetensors"})
    assert r.status_code == 404 and "missing.safetensors" in r.json()["detail"]
    r = client.post("/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 40})
    assert r.status_code == 422


def test_png_info_reads_our_images(client: TestClient) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "png info", "seed": 77, **SMALL})
    got = client.post("/sdapi/v1/png-info", json={"image": r.json()["images"][0]}).json()
    assert got["parameters"]["Seed"] == "77" and got["info"].startswith("png info")


def test_the_ui_is_served_on_the_same_port(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/config").status_code == 200


def test_auth_covers_the_api_routes(locked: TestClient) -> None:
    assert locked.get("/sdapi/v1/sd-models").status_code == 401
    assert locked.get("/sdapi/v1/sd-models", auth=("ann", "wrong")).status_code == 401
    assert locked.get("/sdapi/v1/sd-models", auth=("ann", "秘密pw".encode())).status_code == 200  # type: ignore[arg-type]
    assert locked.get("/config").status_code == 401  # Gradio's own pages ask for the login too
