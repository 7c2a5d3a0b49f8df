"""Every A1111 1.10 flag reaches ``python -m runtime``: mapped ones take effect, the others warn once, and the
server flags (CORS, --api-log, frozen settings, the stop routes) and ``GET /sdapi/v1/cmd-flags`` work on the app."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bootstrap.a1111_flags import table
from bootstrap.layout import Bundle
from runtime.checkpoints import TypedDir, read_library
from runtime.errors import ListenWithoutAuth
from runtime.options import LOGIN_FLAGS, MAPPERS, RuntimeOptions, build_parser, own_flags, parse
from tests.support.tiny_sd import TinySD

LOCAL = "http://127.0.0.1:7861"


def sample(name: str, tmp_path: Path) -> list[str]:
    f = table().flags[name]
    if name in LOGIN_FLAGS:
        if name == "--gradio-auth-path":
            (tmp_path / "logins.txt").write_text("amy:PwFile1\n", encoding="utf-8")
            return [name, str(tmp_path / "logins.txt")]
        return [name, "amy:PwFlag1"]
    if not f.takes_value:
        return [name]
    if f.takes == "many":
        return [name, "sd"]
    value = f.choices[0] if f.choices else {"int": "7", "json": "{}"}.get(f.type, str(tmp_path / "x"))
    return [name, "192.168.1.5" if name == "--server-name" else value]


@pytest.mark.parametrize("name", sorted(table().flags))
def test_every_a1111_flag_starts_the_runtime_mapped_or_named_once(name: str, tmp_path: Path) -> None:
    argv = [*sample(name, tmp_path), *sample(name, tmp_path), "--insecure-no-auth", "--lang", "en"]  # given twice
    options = parse(argv, {})
    said = [w for w in options.warnings if w.startswith(f"{name} has no effect here: ")]
    if table().flags[name].effect == "none":
        assert len(said) == 1 and said[0].endswith(".")
        zh = parse([*argv[:-2], "--lang", "zh"], {})
        assert any(w.startswith(f"{name} 在这里不起作用：") for w in zh.warnings)
    else:
        assert said == []
        assert name in MAPPERS or name in LOGIN_FLAGS or name in own_flags(build_parser())


def test_the_launchers_list_of_the_runtimes_own_flags_is_the_runtimes_parser() -> None:
    from bootstrap.a1111_flags import YIJIAN_FLAGS

    assert YIJIAN_FLAGS == own_flags(build_parser())


def test_the_mapped_flags_and_the_mappers_are_the_same_set() -> None:
    mapped = {f.name for f in table().flags.values() if f.effect == "mapped"}
    own = mapped & set(own_flags(build_parser()))
    assert own == {"--port", "--listen", "--precision", "--ckpt"}
    assert set(MAPPERS) == mapped - own - set(LOGIN_FLAGS)


def opts(*argv: str, env: dict[str, str] | None = None) -> RuntimeOptions:
    return parse([*argv, "--lang", "en"], env or {})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--medvram-sdxl"], {"vram": "medvram-sdxl"}),
        (["--medvram", "--lowvram"], {"vram": "lowvram"}),  # A1111: --lowvram wins
        (["--vram", "none", "--medvram"], {"vram": "medvram"}),
        (["--opt-split-attention"], {"attention": "sdpa"}),
        (["--opt-sub-quad-attention", "--xformers"], {"attention": "xformers"}),
        (["--force-enable-xformers"], {"attention": "xformers"}),
        (["--precision", "half"], {"precision": "fp16"}),
        (["--precision", "autocast"], {"precision": "auto"}),
        (["--precision", "full"], {"precision": "full"}),
        (["--no-half"], {"precision": "full"}),
        (["--use-cpu", "all"], {"environ": {"CUDA_VISIBLE_DEVICES": ""}}),
        (["--use-cpu", "sd", "--device-id", "1"], {"environ": {"CUDA_VISIBLE_DEVICES": ""}}),
        (["--device-id", "1"], {"environ": {"CUDA_VISIBLE_DEVICES": "1"}}),
        (["--nowebui"], {"no_ui": True, "api": True, "port": 7861}),
        (["--nowebui", "--port", "9000"], {"port": 9000}),
        (["--server-name", "localhost"], {"host": "localhost", "listen": False}),
        (["--skip-load-model-at-start"], {"load_model": False}),
        (["--ui-debug-mode"], {"load_model": False}),
        (["--cors-allow-origins", "http://a,http://b", "--cors-allow-origins-regex", "https://.*"],
         {"cors_origins": ("http://a", "http://b"), "cors_regex": "https://.*"}),
        (["--api-log", "--api-server-stop", "--timeout-keep-alive", "60", "--loglevel", "DEBUG"],
         {"api_log": True, "api_server_stop": True, "timeout_keep_alive": 60, "loglevel": "DEBUG"}),
        (["--loglevel", "debug"], {"loglevel": "DEBUG", "warnings": []}),
        (["--freeze-settings"], {"freeze_settings": True}),
        (["--freeze-specific-settings", "sd_vae, CLIP_stop_at_last_layers"],
         {"frozen_settings": ("sd_vae", "CLIP_stop_at_last_layers")}),
        (["--styles-file", "a.csv", "--styles-file", "b.csv"], {"styles_files": ("a.csv", "b.csv")}),
        (["--data-dir", "/d"], {"extra_model_dirs": ("/d",), "styles_files": ("/d/styles.csv",)}),
        (["--data-dir", "/d", "--styles-file", "s.csv"], {"styles_files": ("s.csv",)}),
        (["--models-dir", "/m"], {"extra_model_dirs": ("/m",)}),
        (["--ckpt", "m.safetensors"], {"model": "m.safetensors"}),
        (["--vae-path", "/v/x.vae.pt"], {"vae_path": "/v/x.vae.pt", "extra_model_dirs": ("/v/x.vae.pt",)}),
        (["--autolaunch", "--no-browser"], {"open_browser": False}),
        (["--autolaunch"], {"open_browser": True}),
        (["--no-download-sd-model"], {"warnings": []}),
    ],
)  # fmt: skip
def test_mapped_flags_take_effect(argv: list[str], expected: dict[str, Any]) -> None:
    o = opts(*argv)
    assert {k: getattr(o, k) for k in expected} == expected


def test_device_id_counts_among_the_visible_devices() -> None:
    assert opts("--device-id", "1", env={"CUDA_VISIBLE_DEVICES": "2,3"}).environ == {"CUDA_VISIBLE_DEVICES": "3"}


def test_a_server_name_on_the_network_needs_the_login_as_listen_does() -> None:
    with pytest.raises(ListenWithoutAuth):
        opts("--server-name", "192.168.1.5")
    o = opts("--server-name", "192.168.1.5", "--gradio-auth", "amy:PwNet1")
    assert (o.host, o.listen, o.auth) == ("192.168.1.5", True, ("amy", "PwNet1"))
    assert "PwNet1" not in " ".join(o.warnings)


def test_model_folder_flags_become_typed_folders_and_one_upscaler_folder() -> None:
    o = opts("--ckpt-dir", "/c", "--lora-dir", "/l", "--lyco-dir", "/y", "--vae-dir", "/v", "--embeddings-dir", "/e",
             "--esrgan-models-path", "/u", "--realesrgan-models-path", "/u2")  # fmt: skip
    typed = [(str(d), d.kind) for d in o.extra_model_dirs if isinstance(d, TypedDir)]
    assert typed == [("/c", "checkpoint"), ("/l", "lora"), ("/y", "lora"), ("/v", "vae"), ("/e", "embedding"),
                     ("/u", "upscaler")]  # fmt: skip
    assert any("/u2" in w and "upscaler folder" in w for w in o.warnings)


def test_an_unknown_log_level_is_info_with_a_warning() -> None:
    o = opts("--loglevel", "loud")
    assert o.loglevel == "INFO" and any("--loglevel loud is not a log level" in w for w in o.warnings)


def test_use_cpu_for_other_modules_is_named() -> None:
    o = opts("--use-cpu", "interrogate", "ESRGAN")
    assert o.environ == {} and any("--use-cpu esrgan interrogate has no effect here" in w for w in o.warnings)


def test_commandline_args_come_first_and_the_command_line_wins() -> None:
    o = opts("--port", "7003", env={"COMMANDLINE_ARGS": "--port 7002 --xformers --theme dark"})
    assert (o.port, o.attention) == (7003, "xformers") and any(w.startswith("--theme") for w in o.warnings)


def test_typed_folders_reach_the_model_library(tiny_sd: TinySD, tmp_path: Path) -> None:
    outside = tmp_path / "a1111"
    for sub in ("ckpts", "loras", "vae", "emb", "up"):
        (outside / sub).mkdir(parents=True)
    shutil.copy(tiny_sd.checkpoint, outside / "ckpts" / "far.safetensors")
    shutil.copy(tiny_sd.lora, outside / "loras" / "farlora.safetensors")
    shutil.copy(tiny_sd.lora, outside / "vae" / "far.vae.safetensors")
    shutil.copy(tiny_sd.embedding, outside / "emb" / "faremb.safetensors")
    bundle = Bundle(tmp_path / "bundle")
    o = opts("--ckpt-dir", str(outside / "ckpts"), "--lora-dir", str(outside / "loras"), "--vae-path",
             str(outside / "vae" / "far.vae.safetensors"), "--embeddings-dir", str(outside / "emb"),
             "--esrgan-models-path", str(outside / "up"))  # fmt: skip
    view = read_library(bundle, o.extra_model_dirs)
    assert [c.path.name for c in view.checkpoints] == ["far.safetensors"]
    assert view.loras == {"farlora": outside / "loras" / "farlora.safetensors"}
    assert view.vaes == {"far.vae.safetensors": outside / "vae" / "far.vae.safetensors"}
    assert view.embeddings == {"faremb": outside / "emb" / "faremb.safetensors"}
    assert view.upscalers_dir == outside / "up"


class RecordingEngine:
    """Stands in for the engine at start: only which calls load_first_model makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.checkpoints = [type("C", (), {"title": "first.safetensors [abc]"})()]

    def load(self, name: str) -> None:
        self.calls.append(("load", name))

    def load_demo(self) -> None:
        self.calls.append(("demo",))

    def select_vae(self, name: str) -> None:
        self.calls.append(("vae", name))


@pytest.mark.parametrize(
    ("argv", "calls"),
    [
        ([], [("load", "first.safetensors [abc]")]),
        (["--skip-load-model-at-start"], []),
        (["--ckpt", "m.safetensors", "--vae-path", "/v/x.vae.pt"], [("load", "m.safetensors"), ("vae", "x.vae.pt")]),
    ],
)
def test_the_first_model_and_the_vae_path_at_start(argv: list[str], calls: list[tuple[str, ...]]) -> None:
    from runtime.cli import load_first_model

    engine = RecordingEngine()
    load_first_model(engine, opts(*argv))
    assert engine.calls == calls


# --- the app ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from runtime.engine import Engine

    return Engine(Bundle(tmp_path_factory.mktemp("bundle")))


def app_client(engine: Any, *argv: str) -> Iterator[TestClient]:
    from runtime.server import build_app

    app = build_app(engine, opts("--nowebui", "--no-browser", *argv))
    with TestClient(app, base_url=LOCAL) as client:
        yield client


@pytest.fixture
def flagged(empty_engine: Any) -> Iterator[TestClient]:
    yield from app_client(empty_engine, "--xformers", "--theme", "dark", "--cors-allow-origins", "http://krita.local",
                          "--freeze-specific-settings", "sd_vae", "--api-log", "--api-server-stop",
                          "--styles-file", "s.csv")  # fmt: skip


def test_cmd_flags_answers_every_a1111_flag(flagged: TestClient, empty_engine: Any) -> None:
    r = flagged.get("/sdapi/v1/cmd-flags")
    assert r.status_code == 200
    got = r.json()
    assert set(got) == {f.dest for f in table().flags.values()}
    root = empty_engine.bundle.root
    assert (got["xformers"], got["theme"], got["port"], got["nowebui"], got["api"]) == (True, "dark", 7861, True, True)
    assert got["styles_file"] == ["s.csv"] and got["use_cpu"] == [] and got["gradio_auth"] is None
    assert got["data_dir"] == str(root) and got["embeddings_dir"] == str(root / "models" / "embeddings")
    assert (got["precision"], got["timeout_keep_alive"], got["medvram"]) == ("autocast", 5, False)


def test_cmd_flags_never_shows_an_ngrok_token(tmp_path: Path) -> None:
    from runtime.api.cmd_flags import cmd_flags

    got = cmd_flags(opts("--ngrok", "2NgRokT0kenAbCdEf123", "--ngrok-region", "eu"), tmp_path, tmp_path / "models")
    assert (got["ngrok"], got["ngrok_region"], got["ngrok_options"]) == ("***", "eu", None)


def test_cmd_flags_needs_the_login_and_never_shows_it(empty_engine: Any) -> None:
    for client in app_client(empty_engine, "--gradio-auth", "amy:PwApi1"):
        assert client.get("/sdapi/v1/cmd-flags").status_code == 401
        r = client.get("/sdapi/v1/cmd-flags", auth=("amy", "PwApi1"))
        assert r.status_code == 200 and r.json()["gradio_auth"] == "***" and "PwApi1" not in r.text


def test_cors_origins_are_allowed(flagged: TestClient) -> None:
    r = flagged.options("/sdapi/v1/cmd-flags", headers={"Origin": "http://krita.local",
                                                          "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert r.headers.get("access-control-allow-origin") == "http://krita.local"
    other = flagged.get("/sdapi/v1/cmd-flags", headers={"Origin": "http://elsewhere"})
    assert "access-control-allow-origin" not in other.headers


def test_frozen_settings_refuse_only_what_is_frozen(flagged: TestClient, empty_engine: Any) -> None:
    r = flagged.post("/sdapi/v1/options", json={"sd_vae": "x.safetensors"})
    assert r.status_code == 403 and "sd_vae" in r.json()["detail"]
    assert flagged.post("/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 2}).status_code == 200
    assert empty_engine.clip_skip == 2
    for client in app_client(empty_engine, "--freeze-settings"):
        before = empty_engine.clip_skip  # the saved settings (webui-settings.json) applied at the app's start
        assert client.post("/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 3}).status_code == 403
        assert empty_engine.clip_skip == before


def test_api_log_logs_each_request(flagged: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="yijian.runtime"):
        flagged.get("/sdapi/v1/cmd-flags")
    assert any("API" in r.getMessage() and "GET /sdapi/v1/cmd-flags 200" in r.getMessage() for r in caplog.records)


def test_the_stop_routes(flagged: TestClient) -> None:
    server = type("Server", (), {"should_exit": False})()
    flagged.app.state.api.control["server"] = server  # type: ignore[attr-defined]
    assert flagged.post("/sdapi/v1/server-restart").status_code == 501
    assert server.should_exit is False
    assert flagged.post("/sdapi/v1/server-stop").status_code == 200
    assert server.should_exit is True


def test_no_stop_routes_without_the_flag(empty_engine: Any) -> None:
    for client in app_client(empty_engine):
        assert client.post("/sdapi/v1/server-stop").status_code == 404
