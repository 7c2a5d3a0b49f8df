"""One-click start, step by step: the whole way to a served image, and a diagnosis at each step that fails.

The flow runs in-process against a bundle copy whose generation environment
is the dev venv (:func:`tests.support.runtime_env.fake_runtime_env`), with the
tiny model in the library; the runtime is a real child process.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.oneclick import STEP_IDS, OneClick, OneClickOptions, StepUpdate
from tests.support.bundle_copy import copy_bundle
from tests.support.hf_endpoint import HfEndpoint
from tests.support.httpbase import free_port
from tests.support.runtime_env import fake_runtime_env
from tests.support.tiny_sd import TinySD

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.updates: list[StepUpdate] = []

    def __call__(self, u: StepUpdate) -> None:
        self.updates.append(u)

    def final(self, step: str) -> StepUpdate:
        return [u for u in self.updates if u.step == step and u.state != "progress"][-1]

    def states(self) -> dict[str, str]:
        return {u.step: u.state for u in self.updates if u.state not in ("progress", "running")}


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bundle]:
    root = copy_bundle(tmp_path / "b")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield Bundle(root, code=root)


def api_txt2img(url: str) -> bytes:
    body = json.dumps({"prompt": "a cat", "seed": 7, "steps": 3, "width": 64, "height": 64}).encode()
    req = urllib.request.Request(f"{url}/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return base64.b64decode(json.load(opener.open(req, timeout=120))["images"][0])


def start_headless(bundle: Bundle, port: int, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``yijian --lang en start --no-browser`` in its own session; its output up to the "Generation UI" line."""
    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}
    env.update(PYTHONPATH=str(bundle.root), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "launcher", "--lang", "en", "start", *extra, "--no-browser",
                             "--port", str(port)], cwd=bundle.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "Generation UI: http" in line:
                break
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, lines


def test_the_whole_way_to_a_served_image(bundle: Bundle, tiny_sd: TinySD) -> None:
    fake_runtime_env(bundle.root)
    shutil.copytree(tiny_sd.diffusers_dir, bundle.models_dir / "Stable-diffusion" / "tiny")
    rec, opened = Recorder(), []
    flow = OneClick(bundle, "en", rec, OneClickOptions(port=free_port()), opener=opened.append)
    process = flow.run()
    try:
        assert rec.states() == {s: "done" for s in STEP_IDS}
        assert "1 model(s)" in rec.final("model").message.en  # type: ignore[union-attr]
        assert "already matches" in rec.final("environment").message.en  # type: ignore[union-attr]
        assert opened == [flow.url]
        png = api_txt2img(str(flow.url))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Model: tiny" in png
    finally:
        process.stop()
    assert process.proc.poll() is not None


def test_a_bad_setting_fails_preflight_with_the_line(bundle: Bundle) -> None:
    (bundle.root / "config.toml").write_text("[launch]\nport = 80\n", encoding="utf-8")
    rec = Recorder()
    from launcher.errors import ConfigInvalid

    with pytest.raises(ConfigInvalid):
        OneClick(bundle, "en", rec).run()
    failed = rec.final("preflight")
    assert failed.state == "failed" and failed.error is not None
    assert "config.toml:2" in failed.error.message("en")
    assert [u.step for u in rec.updates if u.state == "running"] == ["preflight"]  # nothing after it ran


def test_an_unbuildable_environment_is_diagnosed(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    # No environment yet and every mirror dead: the build step fails with the installer's diagnosis.
    from tests.support.bundle_copy import isolate_mirrors

    isolate_mirrors(bundle.root)
    (bundle.root / "config.toml").write_text('[setup]\npack = "cpu"\n', encoding="utf-8")
    rec = Recorder()
    from bootstrap.errors import YijianError

    with pytest.raises(YijianError) as err:
        OneClick(bundle, "en", rec, OneClickOptions(demo=True)).run()
    failed = rec.final("environment")
    assert failed.state == "failed" and failed.error is err.value
    assert err.value.hint("en")  # every failure says what to do
    assert (bundle.root / "env" / "runtime").exists() is False  # nothing half-built is left in place


def test_offline_with_an_empty_library_skips_the_model_and_says_why(bundle: Bundle) -> None:
    fake_runtime_env(bundle.root)
    (bundle.root / "config.toml").write_text("[network]\noffline = true\n", encoding="utf-8")
    rec = Recorder()
    flow = OneClick(bundle, "en", rec, OneClickOptions(port=free_port(), open_browser=False))
    process = flow.run()  # the runtime still starts: the UI says a model is needed
    process.stop()
    model = rec.final("model")
    assert model.state == "skipped" and model.message is not None
    assert "offline" in model.message.en and "starting the UI without a model" in model.message.en
    assert str(bundle.models_dir / "Stable-diffusion") in model.message.en and "Stable-diffusion" in model.message.zh
    assert flow.without_model


def _no_route(bundle: Bundle) -> None:
    """Every mirror refused (Hugging Face, its mirror and ModelScope alike), online."""
    from tests.support.bundle_copy import isolate_mirrors

    isolate_mirrors(bundle.root)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_route_for_the_default_model_goes_on_without_one(bundle: Bundle, lang: str) -> None:
    _no_route(bundle)
    rec, asked = Recorder(), []
    flow = OneClick(bundle, lang, rec, OneClickOptions(no_model=lambda e: asked.append(e) or "none"))
    flow._preflight()
    flow._model()  # no exception: the flow goes on
    [err] = asked
    assert err is not None and err.code in ("DOWNLOAD_FAILED", "MIRRORS_ALL_FAILED")
    model = rec.final("model")
    assert model.state == "skipped" and model.message is not None and flow.without_model
    text = model.message.zh if lang == "zh" else model.message.en
    assert "Stable-diffusion" in text and "models download sd15" in text
    assert ("没能下载默认模型" if lang == "zh" else "could not be downloaded") in text
    assert "resume" not in err.hint("en") and "续传" not in err.hint("zh") and "接着下载" not in err.hint("zh")


def test_the_user_can_pick_the_demo_model_instead(bundle: Bundle) -> None:
    _no_route(bundle)
    rec = Recorder()
    options = OneClickOptions(no_model=lambda e: "demo")
    flow = OneClick(bundle, "en", rec, options)
    flow._preflight()
    flow._model()
    assert flow.demo and not flow.without_model  # the launch step starts the labelled demo model
    assert not options.demo  # this run's choice only: the next start asks again
    assert "demo model" in rec.final("model").message.en  # type: ignore[union-attr]


def test_the_user_can_add_a_file_they_have(bundle: Bundle, tiny_sd: TinySD) -> None:
    _no_route(bundle)
    rec = Recorder()

    def add_my_file(err: object) -> str:  # what the TUI's "use a file I have" does: the user copies a file
        shutil.copy2(tiny_sd.checkpoint, bundle.models_dir / "Stable-diffusion" / "mine.safetensors")
        return "file"

    flow = OneClick(bundle, "en", rec, OneClickOptions(no_model=add_my_file))
    flow._preflight()
    flow._model()
    done = rec.final("model")
    assert done.state == "done" and "mine.safetensors" in done.message.en  # type: ignore[union-attr]
    assert not flow.without_model


def test_an_answer_that_is_no_choice_is_a_bug(bundle: Bundle) -> None:
    _no_route(bundle)
    flow = OneClick(bundle, "en", Recorder(), OneClickOptions(no_model=lambda e: "maybe"))
    flow._preflight()
    with pytest.raises(ValueError, match="maybe"):
        flow._model()


def test_start_with_no_route_ends_with_the_ui_ready_and_says_how_to_add_a_model(bundle: Bundle) -> None:
    fake_runtime_env(bundle.root)
    _no_route(bundle)
    port = free_port()
    proc, lines = start_headless(bundle, port)
    try:
        text = "\n".join(lines)
        assert f"Generation UI: http://127.0.0.1:{port}" in text, text
        assert "models/Stable-diffusion" in text and "models download sd15" in text
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        assert opener.open(f"http://127.0.0.1:{port}/", timeout=30).status == 200
        os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0


def test_a_runtime_that_cannot_start_is_diagnosed_from_its_log(bundle: Bundle) -> None:
    import socket

    fake_runtime_env(bundle.root)
    rec = Recorder()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        from launcher.errors import RuntimeStartFailed

        with pytest.raises(RuntimeStartFailed):
            OneClick(bundle, "en", rec, OneClickOptions(demo=True, port=taken)).run()
    failed = rec.final("ready")
    assert failed.state == "failed"
    assert "PORT_IN_USE" in [f.code for f in failed.findings]


def test_the_default_model_is_downloaded_when_the_library_is_empty(bundle: Bundle, tiny_sd: TinySD,
                                                                  hf_endpoint: HfEndpoint) -> None:  # fmt: skip
    # The default entry's repository is served by the Hugging Face stand-in, holding the tiny checkpoint; the
    # catalog copy drops the real file's pinned size, hash and commit (the LFS metadata gives them here).
    import re

    data = tiny_sd.checkpoint.read_bytes()
    name = "v1-5-pruned-emaonly-fp16.safetensors"
    hf_endpoint.add_repo("Comfy-Org/stable-diffusion-v1-5-archive", {name: data}, lfs=(name,))
    catalog = bundle.root / "models" / "catalog.toml"
    text = catalog.read_text(encoding="utf-8")
    entry = re.search(r'(?ms)^\[\[model\]\]\nid = "sd15".*?(?=^\[\[model\]\])', text)
    assert entry is not None
    trimmed = re.sub(r"(?m)^(sha256|revision) = .*\n", "", entry.group(0))
    trimmed = re.sub(r"(?m)^size = .*$", f"size = {len(data)}", trimmed)
    catalog.write_text(text.replace(entry.group(0), trimmed), encoding="utf-8")
    (bundle.root / "config.toml").write_text(f'[mirrors]\nhuggingface = "{hf_endpoint.url}"\n', encoding="utf-8")
    rec = Recorder()
    flow = OneClick(bundle, "en", rec)
    flow._preflight()
    flow._download_default()
    got = bundle.models_dir / "Stable-diffusion" / name
    assert got.read_bytes() == data
    assert any(u.total == len(data) for u in rec.updates if u.step == "model" and u.state == "progress")


def test_yijian_start_is_the_same_flow_headless_and_ctrl_c_stops_it(bundle: Bundle) -> None:
    fake_runtime_env(bundle.root)
    port = free_port()
    proc, lines = start_headless(bundle, port, "--demo")
    try:
        assert any(f"Generation UI: http://127.0.0.1:{port}" in ln for ln in lines), "\n".join(lines)
        for n, step in enumerate(STEP_IDS, 1):
            assert any(ln.startswith(f"[{n}/8]") for ln in lines), step
        assert api_txt2img(f"http://127.0.0.1:{port}")[:4] == b"\x89PNG"
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0
    assert "has stopped" in rest
    assert subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True).returncode == 1  # none left


@pytest.mark.parametrize(
    ("options", "environ", "named"),
    [
        (OneClickOptions(passthrough=("--no-download-sd-model",)), {}, "--no-download-sd-model"),
        (OneClickOptions(), {"COMMANDLINE_ARGS": "--xformers --ckpt-dir /elsewhere/ckpts"}, "--ckpt-dir"),
    ],
)
def test_a1111_flags_that_say_no_download_are_honoured(
    bundle: Bundle, options: OneClickOptions, environ: dict[str, str], named: str
) -> None:
    _no_route(bundle)  # a download would be tried, and fail, were it not skipped
    asked: list[object] = []
    options.no_model = lambda e: asked.append(e) or "none"
    rec = Recorder()
    flow = OneClick(bundle, "en", rec, options, environ={**os.environ, **environ})
    flow._preflight()
    flow._model()
    model = rec.final("model")
    assert model.state == "skipped" and model.message is not None and named in model.message.en
    assert named in model.message.zh and asked == [] and not flow.without_model


def test_a1111_flags_without_effect_are_said_by_one_click_start(bundle: Bundle) -> None:
    _no_route(bundle)
    rec = Recorder()
    options = OneClickOptions(passthrough=("--no-download-sd-model", "--theme", "dark", "--xformers"))
    flow = OneClick(bundle, "en", rec, options, environ={**os.environ, "COMMANDLINE_ARGS": "--theme light"})
    flow._preflight()
    flow._model()
    said = [u.message for u in rec.updates if u.message is not None and "--theme" in u.message.en]
    assert len(said) == 1 and "has no effect here" in said[0].en and "不起作用" in said[0].zh
    assert not [u for u in rec.updates if u.message is not None and "--xformers" in u.message.en]
