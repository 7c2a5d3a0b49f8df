"""The TUI tells the truth: after each operation (build, download, mirror test, start, stop, crash) the status cards
and the 环境, 网络 and 控制台 pages show the real state, and F5 starts at most one one-click flow.

The one-click flow is a stand-in (``FakeFlow``) that runs a real child process which prints the runtime's ready line
and serves HTTP on its port, so "running" is read from a real process and a real port; the build and the download use
the fakes of the environment and models page tests.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bootstrap.errors import YijianError
from bootstrap.layout import Bundle
from launcher.mirrors import ranking
from launcher.mirrors.catalog import load_catalog
from launcher.oneclick import StepUpdate
from launcher.runtime_process import RuntimeProcess
from launcher.tui.app import YijianApp
from tests.tui.conftest import SNAPSHOT_SIZE, home_settled, screen_text, settle

SERVER = """
import http.server, sys
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
print(f"Running on local URL:  http://127.0.0.1:{srv.server_port}", flush=True)
srv.serve_forever()
"""


def start_child(bundle: Bundle, on_line: Callable[[str], None] | None) -> RuntimeProcess:
    """A real child that prints the runtime's ready line and answers on its port (as runtime_process.start does)."""
    bundle.logs_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-u", "-c", SERVER], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    rp = RuntimeProcess(proc, bundle.logs_dir / "runtime.log", on_line)
    rp._reader = threading.Thread(target=rp._read, daemon=True)
    rp._reader.start()
    return rp


class FakeFlow:
    """Stands in for launcher.oneclick.OneClick in the app: emits the steps; ``script`` decides what happens."""

    instances: list[FakeFlow] = []
    gate: threading.Event | None = None  # held before the first step
    script: Callable[[FakeFlow], None] | None = None  # runs as the environment/model steps (plant files ...)
    fail: YijianError | None = None

    def __init__(self, bundle: Bundle, lang: str, on_update: Callable[[StepUpdate], None], options: Any = None, *,
                 on_line: Callable[[str], None] | None = None, opener: Any = None) -> None:  # fmt: skip
        self.bundle, self.on_update, self.on_line = bundle, on_update, on_line
        self.process: RuntimeProcess | None = None
        self.url: str | None = None
        FakeFlow.instances.append(self)

    def run(self) -> RuntimeProcess | None:
        if FakeFlow.gate is not None:
            assert FakeFlow.gate.wait(20)
        for step in ("preflight", "hardware", "pack", "environment", "model"):
            self.on_update(StepUpdate(step, "running"))
            if step == "model" and FakeFlow.script is not None:
                FakeFlow.script(self)
            self.on_update(StepUpdate(step, "done"))
        if FakeFlow.fail is not None:
            self.on_update(StepUpdate("launch", "failed", error=FakeFlow.fail))
            raise FakeFlow.fail
        self.process = start_child(self.bundle, self.on_line)
        self.on_update(StepUpdate("launch", "done"))
        self.url = self.process.wait_ready(20)
        assert self.url
        self.on_update(StepUpdate("ready", "done"))
        self.on_update(StepUpdate("browser", "skipped"))
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def fake_flow(monkeypatch: pytest.MonkeyPatch) -> type[FakeFlow]:
    from launcher.tui import app

    FakeFlow.instances, FakeFlow.gate, FakeFlow.script, FakeFlow.fail = [], None, None, None
    monkeypatch.setattr(app, "OneClick", FakeFlow)
    return FakeFlow


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def card(app: YijianApp, key: str) -> str:
    return str(app.query_one(f"#card-{key}").render())


def static(app: YijianApp, selector: str) -> str:
    return str(app.query_one(selector).render())


async def calm(app: YijianApp, pilot: Any) -> None:
    """Like conftest's settle, but without waiting for the flow's worker (it waits on a running runtime)."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        await pilot.pause(0.05)
        others = [w for w in app.workers if w.group != "flow"]
        if others:
            try:
                await app.workers.wait_for_complete(others)
            except WorkerCancelled:  # an exclusive re-read replaced by a newer one
                pass
    await pilot.pause()


async def show(app: YijianApp, pilot: Any, page: str) -> None:
    app.show(page)
    await calm(app, pilot)


# --- at most one flow ----------------------------------------------------------------------------------------------
async def test_f5_and_the_button_pressed_quickly_start_one_flow(tui_bundle: Bundle, fixed_status: None,
                                                                fake_flow: type[FakeFlow]) -> None:  # fmt: skip
    fake_flow.gate = threading.Event()
    fake_flow.fail = YijianError("boom")
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        await pilot.press("f5", "f5", "f5")
        start = app.query_one("#start")
        start.disabled = False  # as if the button were still enabled: the guard is the lock, not the button
        assert await pilot.click("#start")
        app.action_start()
        await pilot.pause(0.2)
        assert len(fake_flow.instances) == 1 and app.busy
        fake_flow.gate.set()
        await until(pilot, lambda: not app.busy)
        await settle(app, pilot)
        assert len(fake_flow.instances) == 1
        assert not app.query_one("#start").disabled  # the flow ended: a new one may start
        await pilot.press("f5")
        await until(pilot, lambda: len(fake_flow.instances) == 2)
        await until(pilot, lambda: not app.busy)


# --- start, stop, crash: the console page and the cards ------------------------------------------------------------
async def test_start_stop_and_crash_are_shown_as_they_are(tui_bundle: Bundle, fake_flow: type[FakeFlow]) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        await show(app, pilot, "console")  # built before the start, so it must follow the state by itself
        assert "尚未启动" in static(app, "#console-state")

        # a failed start leaves its error on the 上次错误 card ...
        fake_flow.fail = YijianError("boom")
        await pilot.press("f5")
        await until(pilot, lambda: len(fake_flow.instances) == 1 and not app.busy)
        await calm(app, pilot)
        assert "boom" in card(app, "last_error")

        # ... a good start clears it, and the console says running with the URL (the port answers)
        fake_flow.fail = None
        await pilot.press("f5")
        await until(pilot, lambda: app.url is not None)
        await until(pilot, lambda: "运行中" in static(app, "#console-state"))
        await calm(app, pilot)
        assert f"运行中: {app.url}" in static(app, "#console-state")
        assert card(app, "last_error") == "无"
        assert not app.query_one("#browser").disabled and not app.query_one("#stop").disabled
        assert app.query_one("#start").disabled
        assert app.run_state() == ("running", app.url)

        # stop: the console and the buttons say stopped
        assert await pilot.click("#console-stop")
        await until(pilot, lambda: "已停止" in static(app, "#console-state"))
        await calm(app, pilot)
        assert app.run_state() == ("stopped", None)
        assert app.query_one("#console-stop").disabled and not app.query_one("#start").disabled

        # crash: the runtime dies by itself (kill -9); the console says stopped with the exit code
        await pilot.press("f5")
        await until(pilot, lambda: "运行中" in static(app, "#console-state"))
        process = app.runtime
        assert process is not None
        process.proc.kill()
        await until(pilot, lambda: "已停止" in static(app, "#console-state"))
        await calm(app, pilot)
        assert "退出码 -9" in static(app, "#console-state")
        assert not app.query_one("#start").disabled and app.query_one("#browser").disabled


# --- build and download: the cards and the 环境 page ---------------------------------------------------------------
async def test_cards_follow_a_build_and_a_download(tmp_path: Path, tui_bundle: Bundle, monkeypatch: pytest.MonkeyPatch,
                                                   fake_gpu: Callable[[str], Any]) -> None:  # fmt: skip
    import launcher.models.fetch as fetch
    from launcher.downloads import Result
    from launcher.tui.pages import environment
    from launcher.tui.pages.environment import EnvironmentPage
    from tests.support.fake_models import SD15_CKPT, write_safetensors
    from tests.tui.test_page_environment import FakeBuilder, plant_env
    from tests.tui.test_page_models import open_catalog, select_row

    fake_gpu("rtx4090-552")

    class PlantingBuilder(FakeBuilder):
        def build(self, pack: str, force: bool) -> str | None:
            changed = super().build(pack, force)
            plant_env(self.bundle)  # what the real builder leaves behind
            return changed

    FakeBuilder.instances, FakeBuilder.fail, FakeBuilder.gate, FakeBuilder.reached = [], None, None, None
    monkeypatch.setattr(environment, "EnvironmentBuilder", PlantingBuilder)
    dest = tui_bundle.models_dir / "Stable-diffusion" / "v1-5-pruned-emaonly-fp16.safetensors"

    def fake_fetch(bundle: Bundle, cfg: Any, request: Any, **kw: Any) -> Result:
        kw["on_plan"](SimpleNamespace(filename=dest.name, size=10))
        write_safetensors(dest, SD15_CKPT)
        return Result(dest, "ab" * 32, 10, 0, 10, 1, "http://mirror/x")

    monkeypatch.setattr(fetch, "fetch_model", fake_fetch)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        assert "未构建" in card(app, "env_state") and card(app, "python") == "无" and card(app, "model_count") == "0"
        await show(app, pilot, "environment")
        page = app.query_one(EnvironmentPage)
        page.start("rebuild")  # what 重建 does once confirmed
        await until(pilot, lambda: not page.building)
        await settle(app, pilot)
        assert "已构建" in card(app, "env_state") and card(app, "python") == "3.11.9"
        assert card(app, "torch") == "2.7.0+cu126"
        assert "2.7.0+cu126" in screen_text(app)  # the 环境 page read the new environment too

        await open_catalog(app, pilot)
        select_row(app, "#models-catalog-table", "Stable Diffusion 1.5 (fp16, pruned)"
                   if app.lang == "en" else "Stable Diffusion 1.5（fp16 精简版）")  # fmt: skip
        assert await pilot.click("#models-download")
        await until(pilot, lambda: dest.exists())
        await settle(app, pilot)
        await until(pilot, lambda: card(app, "model_count") == "1")


# --- mirror test and recorded failures: the 网络 page and the 镜像 card --------------------------------------------
async def test_a_dead_channel_is_shown_dead_after_a_mirror_test(tui_bundle: Bundle, fake_gpu: Callable[[str], Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import launcher.mirrors.measure as measure
    from launcher.mirrors.probe import Result

    fake_gpu("rtx4090-552")
    catalog = load_catalog(tui_bundle.mirrors_file)
    pypi = [m.id for m in catalog.channel("pypi").mirrors if m.automatic]
    torch = [m.id for m in catalog.channel("torch").mirrors if m.automatic]
    fastest = pypi[-1]  # not the catalog's first: the card must move to it

    def fake_measure(bundle: Bundle, cfg: Any, channels: Any, cuda: Any = None, timeout: Any = None) -> Any:
        def result(ch: str, mid: str, ok: bool) -> Result:
            return Result(ch, mid, "http://x", ok, ttfb_ms=10.0 if ok else None, bytes_per_s=1e6 if ok else None,
                          error="" if ok else "DNS lookup failed")  # fmt: skip

        out = {ch: [] for ch in channels}  # type: dict[str, list[Result]]
        out["pypi"] = [result("pypi", fastest, True)] + [result("pypi", i, False) for i in pypi if i != fastest]
        out["torch"] = [result("torch", i, False) for i in torch]
        ranking.save(bundle, {ch: [r.to_dict() for r in rs] for ch, rs in out.items()})
        return out

    monkeypatch.setattr(measure, "measure", fake_measure)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        assert card(app, "mirrors").startswith(pypi[0])
        await show(app, pilot, "network")
        assert "无可用镜像" not in static(app, "#now-torch")
        assert await pilot.click("#net-test")
        await until(pilot, lambda: "无可用镜像" in static(app, "#now-torch"))
        await settle(app, pilot)
        now_torch = static(app, "#now-torch")
        assert now_torch.startswith("✗ 无可用镜像") and "当前" not in now_torch and "测速最快" not in now_torch
        assert "代理" in now_torch and "文件夹" in now_torch  # the fix
        assert "测速最快" in static(app, "#now-pypi")
        mirrors = card(app, "mirrors")
        assert mirrors.startswith(f"{fastest} · torch✗") and "✗ = 无可用镜像" in mirrors
        await pilot.press("f2")
        await pilot.pause()
        assert "no working mirror" in card(app, "mirrors") and "no working mirror" in static(app, "#now-torch")


async def test_a_recorded_failure_reaches_the_card_after_the_operation(tui_bundle: Bundle, fixed_status: None,
                                                                       fake_flow: type[FakeFlow]) -> None:  # fmt: skip
    """A one-click start whose transfers failed on every torch mirror: the network page says so without a test."""
    torch = [m.id for m in load_catalog(tui_bundle.mirrors_file).channel("torch").mirrors if m.automatic]

    def every_torch_mirror_fails(flow: FakeFlow) -> None:
        for mid in torch:
            ranking.record_failure(flow.bundle, "torch", mid, "DNS lookup failed")

    fake_flow.script = every_torch_mirror_fails
    fake_flow.fail = YijianError("torch could not be installed")
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        await show(app, pilot, "network")
        assert "no working mirror" not in static(app, "#now-torch")
        await pilot.press("f5")
        await until(pilot, lambda: len(fake_flow.instances) == 1 and not app.busy)
        await until(pilot, lambda: "no working mirror" in static(app, "#now-torch"))
        assert "now:" not in static(app, "#now-torch")
