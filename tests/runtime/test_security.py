"""What the API and the UI may make the runtime open, who may call them, and from which Host (issue 13).

Over a real app (FastAPI's TestClient) on the tiny model: a model switch only reaches the model library and
the runtime's own command line; a refused or failed switch answers 4xx with the error's code and the model
before it keeps generating; a foreign Host header is refused on a loopback runtime; with a login every route
needs it, the API's docs included.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.api.guards import is_loopback_host
from runtime.engine import Engine, EngineSettings
from runtime.errors import ModelOutsideLibrary, OutOfMemory
from runtime.options import parse
from runtime.server import build_app
from tests.runtime.conftest import LOGIN, make_bundle
from tests.support.tiny_sd import TinySD

SMALL = {"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler"}


class _Evil:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture(scope="module")
def foreign(tiny_sd: TinySD, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A loadable model outside the library, as a single file and as a diffusers folder."""
    root = tmp_path_factory.mktemp("elsewhere")
    shutil.copy(tiny_sd.checkpoint, root / "tiny-sd.safetensors")
    shutil.copytree(tiny_sd.diffusers_dir, root / "tiny-sd")
    return {"file": root / "tiny-sd.safetensors", "folder": root / "tiny-sd"}


def current(client: TestClient) -> str:
    title: str = client.get("/sdapi/v1/options").json()["sd_model_checkpoint"]
    return title


def generates(client: TestClient) -> bool:
    r = client.post("/sdapi/v1/txt2img", json=SMALL)
    return r.status_code == 200 and len(r.json()["images"]) == 1


def switch(client: TestClient, wanted: str) -> Any:
    return client.post("/sdapi/v1/options", json={"sd_model_checkpoint": wanted})


# --- model loading ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "folder", "missing"])
def test_a_path_outside_the_library_is_refused_and_the_model_kept(
    client: TestClient, foreign: dict[str, Path], kind: str
) -> None:
    before = current(client)
    wanted = str(foreign.get(kind, foreign["file"].with_name("not-there.safetensors")))
    r = switch(client, wanted)
    # the same answer whether the path exists or not: the API is no way to probe the disk
    assert r.status_code == 404 and r.json()["code"] == "MODEL_NOT_IN_LIBRARY"
    assert "library" in r.json()["detail"] and "models/Stable-diffusion" in r.json()["hint"]
    assert current(client) == before and generates(client)


def test_the_error_reads_in_chinese_too() -> None:
    err = ModelOutsideLibrary("/tmp/x.safetensors")
    assert "模型库" in err.message("zh") and "/tmp/x.safetensors" in err.message("zh")
    assert "models/Stable-diffusion" in err.hint("zh")


def test_a_pickle_in_the_library_is_refused_unread_and_the_model_kept(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    import torch

    marker = tmp_path / "PWNED"
    evil = engine.bundle.models_dir / "Stable-diffusion" / "evil.ckpt"
    torch.save({"state_dict": {"x": _Evil(marker)}}, evil)
    try:
        assert client.post("/sdapi/v1/refresh-checkpoints").status_code == 200
        assert "evil.ckpt" in {m["title"].split(" [")[0] for m in client.get("/sdapi/v1/sd-models").json()}
        before, loaded = current(client), engine.model
        r = switch(client, "evil.ckpt")
        assert r.status_code == 403 and r.json()["code"] == "UNSAFE_PICKLE_CHECKPOINT"
        assert "--allow-ckpt" in r.json()["hint"]
        assert not marker.exists()
        assert engine.model is loaded  # refused before anything was released: not even reloaded
        assert current(client) == before and generates(client)
    finally:
        evil.unlink()
        engine.refresh()


@pytest.mark.parametrize("damage", ["truncated", "unrecognised"])
def test_a_broken_model_in_the_library_fails_with_4xx_and_the_model_kept(
    client: TestClient, engine: Engine, tiny_sd: TinySD, damage: str
) -> None:
    folder = engine.bundle.models_dir / "Stable-diffusion"
    if damage == "truncated":  # a diffusers folder whose UNet weights were cut short (an interrupted copy)
        broken = folder / "broken"
        shutil.copytree(tiny_sd.diffusers_dir, broken)
        weights = next((broken / "unet").glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:  # a single file whose architecture cannot be told from its weights
        broken = folder / "broken.safetensors"
        shutil.copy(tiny_sd.checkpoint, broken)
    try:
        engine.refresh()
        before = current(client)
        r = switch(client, broken.name)
        assert r.status_code == 422 and r.json()["code"] == "MODEL_LOAD_FAILED"
        assert broken.name in r.json()["detail"]
        assert current(client) == before and generates(client)
    finally:
        shutil.rmtree(broken) if broken.is_dir() else broken.unlink()
        engine.refresh()


def test_library_models_load_by_name_and_by_their_path(client: TestClient, engine: Engine, tiny_sd: TinySD) -> None:
    single = engine.bundle.models_dir / "Stable-diffusion" / "single"
    shutil.copytree(tiny_sd.diffusers_dir, single)
    try:
        engine.refresh()
        assert switch(client, "single").status_code == 200
        assert current(client).startswith("single") and generates(client)
        assert switch(client, str(engine.bundle.models_dir / "Stable-diffusion" / "tiny")).status_code == 200
        assert current(client).startswith("tiny")
        dotted = engine.bundle.models_dir / "Lora" / ".." / "Stable-diffusion" / "single"
        assert switch(client, str(dotted)).status_code == 200  # the library file by another spelling
        assert current(client).startswith("single")
        assert switch(client, "tiny").status_code == 200
        assert switch(client, "Stable-diffusion/single").status_code == 200  # A1111's relative title
        assert current(client).startswith("single")
        assert switch(client, "../Stable-diffusion/single").json()["code"] == "MODEL_NOT_IN_LIBRARY"
    finally:
        assert switch(client, "tiny").status_code == 200
        shutil.rmtree(single)
        engine.refresh()


def test_override_settings_load_only_library_models(
    client: TestClient, engine: Engine, tiny_sd: TinySD, foreign: dict[str, Path]
) -> None:
    r = client.post(
        "/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": str(foreign["file"])}}
    )
    assert r.status_code == 404 and r.json()["code"] == "MODEL_NOT_IN_LIBRARY"
    single = engine.bundle.models_dir / "Stable-diffusion" / "single"
    shutil.copytree(tiny_sd.diffusers_dir, single)
    try:
        engine.refresh()
        before = current(client)
        r = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": "single"}})
        assert r.status_code == 200
        import json

        assert json.loads(r.json()["info"])["sd_model_name"] == "single"
        assert current(client) == before  # A1111's override_settings_restore_afterwards (the default)
        r = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": "single"},
                                                   "override_settings_restore_afterwards": False})  # fmt: skip
        assert r.status_code == 200 and current(client).startswith("single")
    finally:
        assert switch(client, "tiny").status_code == 200
        shutil.rmtree(single)
        engine.refresh()


def test_a_path_from_the_runtimes_own_command_line_loads(
    tiny_sd: TinySD, foreign: dict[str, Path], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", tiny_sd)
    e = Engine(bundle, EngineSettings(own_paths=(str(foreign["folder"]),)))
    assert e.load(str(foreign["folder"])).checkpoint.path == foreign["folder"]
    with pytest.raises(ModelOutsideLibrary):
        e.load(str(foreign["file"]))
    assert e.model is not None and e.model.checkpoint.path == foreign["folder"]


def test_a_model_that_cannot_be_placed_brings_the_old_one_back(
    tiny_sd: TinySD, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import passes
    from runtime.request import GenerationRequest

    bundle = make_bundle(tmp_path / "b", tiny_sd)
    shutil.copytree(tiny_sd.diffusers_dir, bundle.models_dir / "Stable-diffusion" / "single")
    e = Engine(bundle)
    e.load("tiny")
    real = passes.place
    placed: list[Any] = []

    def place(pipe: Any, placement: Any, **kw: Any) -> None:
        placed.append(pipe)
        if len(placed) == 1:  # the new model, after the old one was released for it
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real(pipe, placement, **kw)

    monkeypatch.setattr(passes, "place", place)
    with pytest.raises(OutOfMemory):
        e.load("single")
    assert len(placed) == 2  # the new one failed, the old one was read and placed again
    assert e.model is not None and e.model.checkpoint.model_name == "tiny"
    assert e.generate(GenerationRequest(prompt="x", steps=2, width=64, height=64, save_images=False)).images


def test_the_ui_model_dropdown_takes_no_custom_value(engine: Engine) -> None:
    from runtime.ui.app import build_ui

    ui = build_ui(engine, "en")
    dropdowns = [b for b in ui.blocks.values() if getattr(b, "elem_id", None) == "model_checkpoint"]
    assert len(dropdowns) == 1 and dropdowns[0].allow_custom_value is False
    with pytest.raises(ModelOutsideLibrary):  # and the engine under it refuses paths anyway
        engine.set_options(checkpoint="/etc/passwd")


# --- Host header --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True), ("127.0.0.1:7860", True), ("localhost:7860", True), ("LOCALHOST", True),
        ("[::1]:7860", True), ("[::1]", True),
        ("evil.example", False), ("127.0.0.1.evil.example", False), ("localhost.evil.example:7860", False),
        ("localhost:7860@evil.example", False), ("localhost:", False), ("localhost:abc", False),
        ("127.0.0.2:7860", False), ("0.0.0.0:7860", False), ("", False), ("::1", False),
    ],
)  # fmt: skip
def test_loopback_host_names(host: str, ok: bool) -> None:
    assert is_loopback_host(host) is ok


def test_a_foreign_host_is_refused_on_a_loopback_runtime(client: TestClient) -> None:
    for path in ("/sdapi/v1/options", "/", "/config"):
        r = client.get(path, headers={"Host": "evil.example"})
        assert r.status_code == 421, path
        assert r.json()["code"] == "HOST_NOT_ALLOWED" and "127.0.0.1" in r.json()["hint"]
    r = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny"}, headers={"Host": "evil.example:7860"})
    assert r.status_code == 421
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860"):
        assert client.get("/sdapi/v1/options", headers={"Host": host}).status_code == 200, host
    assert client.get("/", headers={"Host": "localhost:7860"}).status_code == 200


def test_a_foreign_host_cannot_open_a_websocket(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/", headers={"Host": "evil.example"}):
        pass


def test_with_listen_other_host_names_are_served(engine: Engine) -> None:
    app = build_app(engine, parse(["--listen", "--auth", "ann:秘密pw", "--no-browser"], {}))
    with TestClient(app, base_url="http://192.168.1.20:7860") as c:
        assert c.get("/sdapi/v1/options", auth=LOGIN).status_code == 200


# --- the login ----------------------------------------------------------------------------------------------------


def test_docs_and_openapi_need_the_login(locked: TestClient) -> None:
    for path in ("/docs", "/openapi.json"):
        r = locked.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Basic", path
        assert locked.get(path, auth=("ann", "wrong")).status_code == 401
        assert locked.get(path, auth=LOGIN).status_code == 200
    assert "/sdapi/v1/txt2img" in locked.get("/openapi.json", auth=LOGIN).json()["paths"]
    assert locked.get("/redoc").status_code != 200


def test_every_api_route_needs_the_login(locked: TestClient) -> None:
    paths = locked.get("/openapi.json", auth=LOGIN).json()["paths"]
    assert len(paths) >= 10
    for path, methods in paths.items():
        for method in methods:
            assert locked.request(method.upper(), path).status_code == 401, f"{method} {path}"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/config"), ("GET", "/gradio_api/info"), ("POST", "/gradio_api/queue/join"),
     ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/queue/data?session_hash=x"),
     ("POST", "/gradio_api/call/txt2img_generate"), ("GET", "/gradio_api/openapi.json"),
     ("GET", "/gradio_api/file=/etc/hostname")],
)  # fmt: skip
def test_the_ui_routes_need_the_login(locked: TestClient, method: str, path: str) -> None:
    assert locked.request(method, path, json={} if method == "POST" else None).status_code == 401


def test_the_ui_page_without_the_login_is_the_login_form(locked: TestClient) -> None:
    page = locked.get("/").text
    assert '"auth_required":true' in page.replace(" ", "")
    # the app's own components come only after the login (Gradio 6.31 still embeds its API description in this
    # page: endpoint names and dropdown choices; nothing can be called or read without the login)
    assert '"components":[]' in page.replace(" ", "")
