"""``--demo`` shows ControlNet too: a tiny random ControlNet beside the demo model, usable through the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from bootstrap.layout import Bundle
from runtime.controlnet.demo import DEMO_CONTROLNET
from tests.runtime.test_controlnet_api import SMALL, canny_unit


def test_the_demo_lists_its_controlnet_and_draws_with_it(tmp_path: Path) -> None:
    import torch

    from runtime.engine import Engine
    from runtime.options import parse
    from runtime.server import build_app

    torch.set_num_threads(1)
    engine = Engine(Bundle(tmp_path))
    assert engine.controlnet_folders()[0].name == "ControlNet" and len(engine.controlnet_folders()) == 2
    engine.load_demo()
    assert len(engine.controlnet_folders()) == 3  # the demo's folder, while the demo model is loaded
    with TestClient(build_app(engine, parse(["--no-browser", "--demo"], {})), base_url="http://127.0.0.1:7860") as c:
        (name,) = c.get("/controlnet/model_list").json()["model_list"]
        assert name.startswith(DEMO_CONTROLNET + " [")
        r = c.post("/sdapi/v1/txt2img", json={**SMALL, "alwayson_scripts": {"controlnet": {"args": [canny_unit(name)]}}})
        assert r.status_code == 200, r.text
        assert len(r.json()["images"]) == 2 and "ControlNet 0" in r.json()["info"]
