"""环境: the pack choice and why, pinning a pack, the environment's state, rebuild and repair with progress.

The GPU is the fake ``nvidia-smi`` replaying a real RTX 4090 (tests/support/data/gpus); the environment is planted
(its stamp and the dist-info folders, which is all the page reads); the builder is a fake that emits the real
builder's events, and can stop half-way through the download so a test can look at the progress bar.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, ProgressBar, RichLog, Select, Static

from bootstrap.builder.build import Event
from bootstrap.layout import Bundle
from launcher import config
from launcher.errors import EnvironmentBuildFailed
from launcher.tui.app import YijianApp
from launcher.tui.confirm import ConfirmScreen
from launcher.tui.pages.environment import EnvironmentPage
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text, settle

GPU = "rtx4090-552"


@pytest.fixture
def tui_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bundle:
    """Like conftest's, but under tmp_path: this page never shows the bundle's path, and the fixed path is shared
    with the other pages' tests, which may run at the same time."""
    bundle = Bundle(tmp_path / "bundle")
    bundle.ensure_dirs()
    monkeypatch.setenv("YIJIAN_HOME", str(bundle.root))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return bundle


def plant_env(bundle: Bundle, pack: str = "cu126-legacy", versions: dict[str, str] | None = None) -> None:
    """env/runtime as the builder leaves it, as far as the page can tell: the stamp, python, the dist-infos."""
    env = bundle.env_dir / "runtime"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("", encoding="utf-8")
    (env / "yijian-env.json").write_text(json.dumps({"pack": pack, "python": "3.11.9", "built": "2026-03-01T10:20:30"}),
                                         encoding="utf-8")  # fmt: skip
    site = env / "lib" / "python3.11" / "site-packages"
    for name, version in (
        versions or {"torch": "2.7.0+cu126", "torchvision": "0.22.0+cu126", "xformers": "0.0.30"}
    ).items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")


class FakeBuilder:
    """Emits what the real builder emits; ``gate`` holds it half-way through the download."""

    instances: list[FakeBuilder] = []
    fail: Exception | None = None
    gate: threading.Event | None = None
    reached: threading.Event | None = None

    def __init__(self, bundle: Bundle, lang: str = "en", say: Callable[[str], None] = lambda _: None,
                 on_event: Callable[[Any], None] | None = None) -> None:  # fmt: skip
        self.bundle, self.say, self.on_event = bundle, say, on_event or (lambda _: None)
        self.calls: list[tuple[str, ...]] = []
        FakeBuilder.instances.append(self)

    def _run(self, steps: list[Event]) -> None:
        self.say("mirrors: pypi tuna, torch nju")
        for e in steps:
            self.on_event(e)
            if e.step == "prefetch" and e.done == 512 and FakeBuilder.gate is not None:
                assert FakeBuilder.reached is not None
                FakeBuilder.reached.set()
                assert FakeBuilder.gate.wait(10)
        if FakeBuilder.fail is not None:
            raise FakeBuilder.fail

    def build(self, pack: str, force: bool) -> str | None:
        self.calls.append(("build", pack, str(force)))
        wheel = "torch-2.7.0+cu126-cp311-cp311-linux_x86_64.whl"
        self._run([Event("plan", "准备", "planning"),
                   Event("prefetch", f"下载 {wheel}", f"downloading {wheel}", 0, 2048),
                   Event("prefetch", f"下载 {wheel}", f"downloading {wheel}", 512, 2048),
                   Event("prefetch", f"下载 {wheel}", f"downloading {wheel}", 2048, 2048),
                   Event("torch", "安装 torch 组件", "installing the torch trio"),
                   Event("check", "自检新环境", "checking the new environment"),
                   Event("done", "环境已就绪", "Environment ready")])  # fmt: skip
        return "runtime: built for pack cu126-legacy (torch 2.7.0+cu126)"

    def repair(self, what: str) -> str | None:
        self.calls.append(("repair", what))
        self._run([Event("torch", f"重新安装 {what}", f"reinstalling {what}"), Event("done", "已修复", "Repaired")])
        return f"runtime: reinstalled {what}"

    @classmethod
    def all_calls(cls) -> list[tuple[str, ...]]:
        return [c for b in cls.instances for c in b.calls]


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch, fake_gpu: Callable[[str], Any]) -> type[FakeBuilder]:
    from launcher.tui.pages import environment

    fake_gpu(GPU)
    FakeBuilder.instances, FakeBuilder.fail, FakeBuilder.gate, FakeBuilder.reached = [], None, None, None
    monkeypatch.setattr(environment, "EnvironmentBuilder", FakeBuilder)
    return FakeBuilder


async def open_page(app: YijianApp, pilot: Any) -> EnvironmentPage:
    app.show("environment")
    await settle(app, pilot)
    return app.query_one(EnvironmentPage)


def text_of(app: YijianApp, wid: str) -> str:
    return str(app.query_one(wid, Static).render())


def choice_text(app: YijianApp) -> str:
    return "\n".join(str(s.render()) for s in app.query_one("#env-choice").query(Static))


def log_text(app: YijianApp) -> str:
    return "\n".join(line.text for line in app.query_one("#env-log", RichLog).lines)


async def until_asked(app: YijianApp, pilot: Any) -> None:
    for _ in range(100):
        await pilot.pause(0.02)
        if isinstance(app.screen, ConfirmScreen) and app.screen.query("#confirm-yes"):
            await pilot.pause()
            return
    raise AssertionError("no question was asked")


# --- what the page shows -----------------------------------------------------------------------------------------
async def test_the_choice_is_explained_and_the_environment_described(tui_bundle: Bundle, builder: Any) -> None:
    plant_env(tui_bundle)
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_page(app, pilot)
        facts = page.facts
        assert facts is not None and facts.choice is not None
        chosen = facts.choice.chosen.id
        choice = choice_text(app)
        assert "Machine: linux · driver 552.22 (CUDA 12.4) · RTX 4090 sm_89" in choice
        assert f"Chosen automatically: {chosen}" in choice and "Not chosen:" in choice
        for line in facts.choice.reasons("en"):
            assert line in choice
        for r in facts.choice.rejected:
            assert f"\n{r.id}: " in choice
        state = text_of(app, "#env-state")
        assert "Built · pack cu126-legacy · built 2026-03-01T10:20:30" in state
        table = app.query_one("#env-table", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[1][:2] == ["torch", "2.7.0+cu126"] and rows[3][:2] == ["xformers", "0.0.30"]
        assert [c.width for c in table.columns.values()] == [13, 22, 22, 3]
        assert app.query_one("#env-pack", Select).value == "auto"


async def test_not_built_says_how_to_build(tui_bundle: Bundle, builder: Any) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert "未构建：点 重建" in text_of(app, "#env-state")
        table = app.query_one("#env-table", DataTable)
        assert [str(c) for c in table.get_row_at(1)][1] == "–"


async def test_pinning_a_pack_writes_setup_pack_and_auto_removes_it(tui_bundle: Bundle, builder: Any) -> None:
    plant_env(tui_bundle)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_page(app, pilot)
        select = app.query_one("#env-pack", Select)
        assert [v for _, v in select._options] == ["auto", "cu130", "cu128", "cu126", "cu126-legacy", "cu118", "cpu"]
        select.value = "cu118"
        await settle(app, pilot)
        assert config.load(tui_bundle)["setup.pack"] == "cu118"
        assert 'pack = "cu118"' in tui_bundle.config_file.read_text(encoding="utf-8")
        assert "已保存：setup.pack = cu118" in text_of(app, "#env-result")
        choice = choice_text(app)
        assert "你固定了：cu118" in choice and "自动选择会是" in choice
        assert page.facts is not None and page.facts.target is not None and page.facts.target.id == "cu118"
        assert "当前环境是 cu126-legacy，而要用的环境包是 cu118：点 重建 换过去。" in text_of(app, "#env-state")
        select.value = "auto"
        await settle(app, pilot)
        assert config.load(tui_bundle)["setup.pack"] == "auto"
        assert "pack" not in tui_bundle.config_file.read_text(encoding="utf-8").split("[setup]")[-1]


async def test_f2_relabels_everything_and_keeps_the_pinned_pack(tui_bundle: Bundle, builder: Any) -> None:
    config.apply(tui_bundle, [("setup.pack", "cpu")])
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        screen = screen_text(app)
        for words in ("Rebuild", "Repair xformers", "Repair torch", "Part", "Installed", "Pack wants",
                      "cpu  CPU only"):  # fmt: skip
            assert words in screen, words
        assert app.query_one("#env-pack", Select).value == "cpu"
        assert config.load(tui_bundle)["setup.pack"] == "cpu"  # relabelling the Select wrote nothing


# --- rebuild and repair ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", ["no", "yes"])
async def test_rebuild_asks_first_then_builds_with_progress(tui_bundle: Bundle, builder: Any, answer: str) -> None:
    plant_env(tui_bundle)
    FakeBuilder.gate, FakeBuilder.reached = threading.Event(), threading.Event()
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert await pilot.click("#env-rebuild")
        await until_asked(app, pilot)
        question = str(app.screen.query_one("#confirm-title", Static).render()) + str(
            app.screen.query_one("#confirm-body", Static).render())  # fmt: skip
        assert "重建生成环境？" in question and "旧环境保持不变" in question
        assert "模型（models/）、图片（outputs/）和设置（config.toml）都不会动" in question
        if answer == "no":
            assert await pilot.click("#confirm-no")
            await settle(app, pilot)
            assert FakeBuilder.all_calls() == []
            return
        assert await pilot.click("#confirm-yes")
        for _ in range(200):  # the worker stops half-way through the download
            await pilot.pause(0.01)
            if FakeBuilder.reached.is_set():
                break
        await pilot.pause(0.05)
        bar = app.query_one("#env-bar", ProgressBar)
        assert bar.total == 2048 and bar.progress == 512
        assert app.query_one("#env-progress").display
        assert "512 B / 2.0 KiB" in text_of(app, "#env-bytes")
        assert all(app.query_one(w).disabled for w in ("#env-rebuild", "#env-repair-torch", "#env-pack"))
        assert "重建中……" in text_of(app, "#env-result")
        FakeBuilder.gate.set()
        await settle(app, pilot)
        assert FakeBuilder.all_calls() == [("build", "setting", "True")]
        log = log_text(app)
        assert "mirrors: pypi tuna, torch nju" in log and "· 下载 torch-2.7.0" in log and "· 自检新环境" in log
        assert log.count("下载 torch") == 2  # the start and the end; the bar shows the bytes in between
        assert not app.query_one("#env-progress").display
        assert "✓ 重建完成：runtime: built for pack cu126-legacy" in text_of(app, "#env-result")
        assert not app.query_one("#env-rebuild", Button).disabled


@pytest.mark.parametrize("what", ["xformers", "torch"])
async def test_repairs_need_no_question(tui_bundle: Bundle, builder: Any, what: str) -> None:
    plant_env(tui_bundle)
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert await pilot.click(f"#env-repair-{what}")
        await settle(app, pilot)
        assert FakeBuilder.all_calls() == [("repair", what)]
        assert f"· reinstalling {what}" in log_text(app)
        assert f"✓ Repair {what} done: runtime: reinstalled {what}" in text_of(app, "#env-result")


async def test_a_failed_build_is_explained_and_the_page_stays_usable(tui_bundle: Bundle, builder: Any) -> None:
    plant_env(tui_bundle)
    FakeBuilder.fail = EnvironmentBuildFailed(
        "uv pip install exited with 1\nerror: No space left on device", step="torch", log="logs/setup-1.log",
        advice_zh="诊断：磁盘空间不足，请清理后重试。", advice_en="Diagnosis: the disk is full; free some space and retry.",
    )  # fmt: skip
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert await pilot.click("#env-repair-torch")
        await settle(app, pilot)
        result = text_of(app, "#env-result")
        assert "✗ 修复 torch失败：[ENV_BUILD_FAILED] 构建生成环境失败（torch）" in result
        assert "No space left on device" in result
        assert "正在使用的环境没有改动。完整日志：logs/setup-1.log。诊断：磁盘空间不足" in result
        assert not app.query_one("#env-repair-torch", Button).disabled
        await pilot.press("f2")
        await settle(app, pilot)
        assert "Diagnosis: the disk is full" in text_of(app, "#env-result")
        FakeBuilder.fail = RuntimeError("something unexpected")  # not a typed error: still shown, still usable
        assert await pilot.click("#env-repair-xformers")
        await settle(app, pilot)
        result = text_of(app, "#env-result")
        assert "RuntimeError('something unexpected')" in result and "logs/" in result
        assert "Built · pack cu126-legacy" in text_of(app, "#env-state")  # the old environment is still there


async def test_no_build_while_the_generation_ui_runs(tui_bundle: Bundle, builder: Any) -> None:
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert app._flow_lock.acquire(blocking=False)  # one-click start is under way (F5 holds this lock)
        try:
            assert await pilot.click("#env-repair-torch")
            await settle(app, pilot)
            assert FakeBuilder.all_calls() == []
            assert "stop it on the Console page" in text_of(app, "#env-result")
        finally:
            app._flow_lock.release()


# --- snapshots ---------------------------------------------------------------------------------------------------
def _snapshot(snap_compare: Any, bundle: Bundle, f2: bool) -> bool:
    plant_env(bundle)

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        if f2:
            await pilot.press("f2")
        app.show("environment")
        await settle(app, pilot)

    return bool(snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before))


def test_snapshot_zh(snap_compare: Any, tui_bundle: Bundle, builder: Any) -> None:
    assert _snapshot(snap_compare, tui_bundle, f2=False)


def test_snapshot_en(snap_compare: Any, tui_bundle: Bundle, builder: Any) -> None:
    assert _snapshot(snap_compare, tui_bundle, f2=True)
