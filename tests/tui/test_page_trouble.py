"""疑难解答: the doctor's findings with 修复, fix all, the confirm modal, the log scan and the diagnostic bundle.

The doctor's examination is replaced by :class:`FakeDoctor`, whose findings follow the bundle's real state
(``config.toml``, the fake builder's work), so a fix run through the real ``doctor.fixes`` really makes its
finding go away.  The environment builder is a fake that records its calls (as in tests/unit/test_doctor_fixes.py).
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Static

from bootstrap.layout import Bundle
from launcher import config
from launcher.doctor.scanner import Finding
from launcher.errors import ConfigInvalid, ConfigProblem, EnvironmentBuildFailed
from launcher.tui.app import YijianApp
from launcher.tui.confirm import ConfirmScreen
from launcher.tui.pages.trouble import FixButton, TroublePage
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text, settle

LOGS = Path(__file__).resolve().parents[1] / "support" / "data" / "logs"

WORDS = {  # code: (severity, action, title zh/en, detail zh/en, fix zh/en)
    "DRIVER_TOO_OLD": ("error", "", ("显卡驱动太旧", "The driver is too old"),
                       ("驱动 472.12 只支持到 CUDA 11.4。", "Driver 472.12 supports CUDA 11.4 at most."),
                       ("到 NVIDIA 官网更新驱动。", "Update the driver from NVIDIA's site.")),
    "CUDA_OOM": ("warning", "vram-medvram", ("上次运行时显存不足", "The last run ran out of VRAM"),
                 ("显卡共 6 GB，还需要 1.50 GiB。", "A 6 GB GPU; it needed 1.50 GiB more."),
                 ("把显存优化设为 medvram。", "Set the VRAM preset to medvram.")),
    "ENV_MISSING": ("warning", "setup-auto", ("还没有生成环境", "No generation environment yet"),
                    ("env/runtime 不存在。", "env/runtime does not exist."),
                    ("点 一键启动 自动构建。", "Press Start to build it.")),
    "XFORMERS_MISSING": ("info", "repair-xformers", ("没有安装 xformers", "xformers is not installed"),
                         ("没有 xformers 也能生成，只是稍慢。", "Generating works without it, a little slower."),
                         ("可以点 修复 安装它。", "Press Fix to install it.")),
}  # fmt: skip


class FakeExam:
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def to_json(self) -> dict[str, Any]:
        return {"hardware": {"gpus": []}, "findings": [f.to_dict() for f in self.findings]}


class FakeDoctor:
    """``report.examine`` with fixed facts: what is wrong follows config.toml and the fake builder."""

    def __init__(self) -> None:
        self.built = False
        self.calls: list[str] = []
        self.fail: Exception | None = None

    def __call__(self, bundle: Bundle, lang: str = "en", probe_env: bool = True, network: bool = False) -> FakeExam:
        self.calls.append(lang)
        if self.fail is not None:
            raise self.fail
        cfg = config.load(bundle)
        codes = ["DRIVER_TOO_OLD"]
        if cfg["launch.vram"] != "medvram":
            codes.append("CUDA_OOM")
        if not self.built:
            codes.append("ENV_MISSING")
        codes.append("XFORMERS_MISSING")
        i = 0 if lang == "zh" else 1
        return FakeExam([Finding(c, WORDS[c][0], WORDS[c][2][i], WORDS[c][3][i], WORDS[c][4][i], {}, WORDS[c][1])
                         for c in codes])  # fmt: skip


class FakeBuilder:
    """Records what it was asked (the real one would build env/runtime); tells the doctor it is built."""

    instances: list[FakeBuilder] = []
    doctor: FakeDoctor | None = None
    fail = False

    def __init__(self, bundle: Bundle, lang: str = "en", say: Any = None, on_event: Any = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.say = say
        FakeBuilder.instances.append(self)

    def build(self, pack: str, force: bool) -> str | None:
        self.calls.append(("build", pack, str(force)))
        if FakeBuilder.fail:
            raise EnvironmentBuildFailed("the installer failed at the torch step", step="torch", log="logs/setup.log",
                                         advice_zh="诊断：磁盘满了", advice_en="Diagnosis: the disk is full")  # fmt: skip
        if self.say:
            self.say("installing the torch trio")
        if FakeBuilder.doctor is not None:
            FakeBuilder.doctor.built = True
        return "runtime: built for pack cpu"

    def repair(self, what: str) -> str | None:
        self.calls.append(("repair", what))
        return f"runtime: reinstalled {what}"

    @classmethod
    def all_calls(cls) -> list[tuple[str, ...]]:
        return [c for b in cls.instances for c in b.calls]


@pytest.fixture
def tui_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bundle:
    """Like conftest's, but under tmp_path: this page never shows the bundle's path (the findings are fixed), and
    the fixed path is shared with the other pages' tests, which may run at the same time."""
    bundle = Bundle(tmp_path / "bundle")
    bundle.ensure_dirs()
    monkeypatch.setenv("YIJIAN_HOME", str(bundle.root))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return bundle


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch) -> FakeDoctor:
    from launcher.doctor import report
    from launcher.tui.pages import trouble

    fake = FakeDoctor()
    monkeypatch.setattr(report, "examine", fake)
    FakeBuilder.instances, FakeBuilder.doctor, FakeBuilder.fail = [], fake, False
    monkeypatch.setattr(trouble, "EnvironmentBuilder", FakeBuilder)
    return fake


async def open_page(app: YijianApp, pilot: Any) -> TroublePage:
    app.show("trouble")
    await settle(app, pilot)
    return app.query_one(TroublePage)


async def until_asked(app: YijianApp, pilot: Any) -> None:
    """Wait for the worker to show the question (it asks from its thread)."""
    for _ in range(100):
        await pilot.pause(0.02)
        if isinstance(app.screen, ConfirmScreen) and app.screen.query("#confirm-yes"):
            await pilot.pause()
            return
    raise AssertionError("no question was asked")


def fix_button(app: YijianApp, code: str, from_log: bool = False) -> FixButton:
    (button,) = [b for b in app.query(FixButton) if b.finding.code == code and b.from_log == from_log]
    return button


def text_of(app: YijianApp, wid: str) -> str:
    return str(app.query_one(wid, Static).render())


# --- the findings -----------------------------------------------------------------------------------------------
async def test_findings_are_listed_root_cause_first_with_a_fix_button_where_there_is_an_action(
    tui_bundle: Bundle, doctor: FakeDoctor
) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_page(app, pilot)
        assert [f.code for f in page.exam.findings] == ["DRIVER_TOO_OLD", "CUDA_OOM", "ENV_MISSING", "XFORMERS_MISSING"]  # type: ignore[union-attr]
        screen = screen_text(app)
        assert "发现 1 个错误、2 个警告、1 个提示" in screen
        assert screen.index("显卡驱动太旧") < screen.index("上次运行时显存不足") < screen.index("还没有生成环境")
        assert "✗ 错误" in screen and "! 警告" in screen
        # a fix button for each finding with an action (the info one too: pressing it is asking for it)
        assert sorted(b.finding.code for b in app.query(FixButton) if not b.from_log) == [
            "CUDA_OOM", "ENV_MISSING", "XFORMERS_MISSING"]  # fmt: skip
        assert not app.query_one("#trouble-fixall", Button).disabled
        assert doctor.calls == ["zh"]


async def test_fix_sets_the_setting_then_checks_again_and_says_what_was_fixed(
    tui_bundle: Bundle, doctor: FakeDoctor
) -> None:
    tui_bundle.config_file.write_text("# mine\n[launch]\nport = 7861\n", encoding="utf-8")
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        fix_button(app, "CUDA_OOM").press()
        await settle(app, pilot)
        assert config.load(tui_bundle)["launch.vram"] == "medvram"
        assert "# mine" in tui_bundle.config_file.read_text(encoding="utf-8")
        result = text_of(app, "#trouble-fixes")
        assert "✓ [已完成] 把显存优化设为 medvram" in result
        assert "launch.vram: auto -> medvram" in result
        assert "已解决：上次运行时显存不足（CUDA_OOM）" in result
        assert doctor.calls == ["zh", "zh"]  # examined again after the fix
        assert "CUDA_OOM" not in [f.code for f in app.query_one(TroublePage).exam.findings]  # type: ignore[union-attr]
        assert FakeBuilder.all_calls() == []  # nothing else was touched


async def test_fix_all_runs_every_runnable_fix_and_leaves_the_rest(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert await pilot.click("#trouble-fixall")
        await settle(app, pilot)
        assert config.load(tui_bundle)["launch.vram"] == "medvram"
        assert FakeBuilder.all_calls() == [("build", "auto", "False")]  # the info finding's repair is not run
        result = text_of(app, "#trouble-fixes")
        assert "Fixed: The last run ran out of VRAM (CUDA_OOM), No generation environment yet (ENV_MISSING)" in result
        assert "[optional: press its Fix to run it]" in result and "[up to you] Update the driver" in result
        assert "Still there: The driver is too old (DRIVER_TOO_OLD)" in result
        assert "installing the torch trio" in "\n".join(line.text for line in app.query_one("#trouble-fix-log").lines)  # type: ignore[attr-defined]
        assert app.query_one("#trouble-fixall", Button).disabled  # nothing runnable is left (the driver is manual)
        assert not app.query_one("#trouble-recheck", Button).disabled


async def test_an_info_findings_fix_runs_when_pressed(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        fix_button(app, "XFORMERS_MISSING").press()
        await settle(app, pilot)
        assert FakeBuilder.all_calls() == [("repair", "xformers")]
        assert "runtime: reinstalled xformers" in text_of(app, "#trouble-fixes")


async def test_a_failing_fix_is_shown_in_plain_words_and_the_page_stays_usable(
    tui_bundle: Bundle, doctor: FakeDoctor
) -> None:
    FakeBuilder.fail = True
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        fix_button(app, "ENV_MISSING").press()
        await settle(app, pilot)
        result = text_of(app, "#trouble-fixes")
        assert "✗ [失败]" in result and "[ENV_BUILD_FAILED] 构建生成环境失败（torch）" in result
        assert "正在使用的环境没有改动" in result and "诊断：磁盘满了" in result
        assert "仍存在：还没有生成环境（ENV_MISSING）" in result
        assert all(not b.disabled for b in app.query(FixButton))
        FakeBuilder.fail = False
        fix_button(app, "ENV_MISSING").press()
        await settle(app, pilot)
        assert "已解决：还没有生成环境（ENV_MISSING）" in text_of(app, "#trouble-fixes")


async def test_environment_fixes_wait_while_the_generation_ui_runs(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert app._flow_lock.acquire(blocking=False)  # one-click start is under way (F5 holds this lock)
        try:
            fix_button(app, "ENV_MISSING").press()
            await settle(app, pilot)
            assert FakeBuilder.all_calls() == []
            assert "stop it on the Console page" in text_of(app, "#trouble-fixes")
            fix_button(app, "CUDA_OOM").press()  # a setting is fine meanwhile
            await settle(app, pilot)
            assert config.load(tui_bundle)["launch.vram"] == "medvram"
        finally:
            app._flow_lock.release()


# --- the confirm modal ---------------------------------------------------------------------------------------------
@pytest.fixture
def risky(monkeypatch: pytest.MonkeyPatch) -> None:
    """vram-medvram marked not safe, so the fix must ask first."""
    from launcher.doctor import fixes

    real = fixes.actions

    def actions() -> dict[str, fixes.Action]:
        known = real()
        known["vram-medvram"] = replace(known["vram-medvram"], safe=False)
        return known

    monkeypatch.setattr(fixes, "actions", actions)


@pytest.mark.parametrize("answer", ["no", "escape", "yes"])
async def test_an_action_not_marked_safe_asks_first(tui_bundle: Bundle, doctor: FakeDoctor, risky: None,
                                                    answer: str) -> None:  # fmt: skip
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        fix_button(app, "CUDA_OOM").press()
        await until_asked(app, pilot)
        question = str(app.screen.query_one("#confirm-title", Static).render()) + str(
            app.screen.query_one("#confirm-body", Static).render())  # fmt: skip
        assert "确认修复" in question and "将要：把显存优化设为 medvram" in question and "CUDA_OOM" in question
        if answer == "escape":
            await pilot.press("escape")
        else:
            assert await pilot.click(f"#confirm-{answer}")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        vram = config.load(tui_bundle)["launch.vram"]
        if answer == "yes":
            assert vram == "medvram" and "✓ [已完成]" in text_of(app, "#trouble-fixes")
        else:
            assert vram == "auto" and "– [未确认，跳过]" in text_of(app, "#trouble-fixes")


# --- the console log -------------------------------------------------------------------------------------------
async def test_the_last_console_log_is_scanned_and_its_fix_works(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    shutil.copy(LOGS / "cuda-oom.log", tui_bundle.logs_dir / "runtime.log")
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        page = await open_page(app, pilot)
        assert [f.code for s in page.scans for f in s.findings["zh"]] == ["CUDA_OOM"]
        button = fix_button(app, "CUDA_OOM", from_log=True)
        box = app.query_one("#trouble-logscan")
        logs = "\n".join(str(w.render()) for w in box.query(Static))
        assert "logs/runtime.log：发现 1 个错误" in logs and "显存不足" in logs and "1.50 GiB" in logs
        button.press()
        await settle(app, pilot)
        assert config.load(tui_bundle)["launch.vram"] == "medvram"
        assert "日志里的旧记录不会消失" in text_of(app, "#trouble-fixes")


async def test_the_previous_log_is_read_when_the_last_one_is_clean(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    (tui_bundle.logs_dir / "runtime.log").write_text("Running on local URL:  http://127.0.0.1:7860\n", encoding="utf-8")
    shutil.copy(LOGS / "port-in-use.log", tui_bundle.logs_dir / "runtime.previous.log")
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        logs = "\n".join(str(w.render()) for w in app.query_one("#trouble-logscan").query(Static))
        assert "logs/runtime.log: no known problem." in logs
        assert "logs/runtime.previous.log: Found 1 error" in logs and "PORT_IN_USE" in logs
        assert fix_button(app, "PORT_IN_USE", from_log=True).finding.action == "free-port"


async def test_no_log_yet_says_so(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert "还没有控制台日志" in screen_text(app) or "还没有控制台日志" in "\n".join(
            str(w.render()) for w in app.query_one("#trouble-logscan").query(Static))  # fmt: skip


# --- the diagnostic bundle, errors, the language ------------------------------------------------------------------
async def test_the_diagnostic_bundle_is_written_and_its_path_shown(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    shutil.copy(LOGS / "cuda-oom.log", tui_bundle.logs_dir / "runtime.log")
    tui_bundle.config_file.write_text('[downloads]\ncivitai_token = "abcdef0123456789"\n', encoding="utf-8")
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert await pilot.click("#trouble-sysinfo")
        await settle(app, pilot)
        (zipped,) = tui_bundle.logs_dir.glob("sysinfo-*.zip")
        assert f"诊断包已生成（已去除令牌、密码和用户名），可直接附在问题报告里：\n{zipped}" in text_of(
            app, "#trouble-sysinfo-result")  # fmt: skip
        with zipfile.ZipFile(zipped) as zf:
            names = zf.namelist()
            assert {"facts.json", "config.toml", "logs/runtime.log"} <= set(names)
            assert "abcdef0123456789" not in zf.read("config.toml").decode()
            assert "CUDA_OOM" in zf.read("facts.json").decode()
        assert doctor.calls[-1] == "en"  # the bundle's facts are in English, as `sysinfo` writes them


async def test_an_examination_that_fails_is_shown_and_check_again_recovers(
    tui_bundle: Bundle, doctor: FakeDoctor
) -> None:
    problem = ConfigProblem("config.toml", 2, "launch.port", "不是数字", "not a number")
    doctor.fail = ConfigInvalid([problem], "config.toml")
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        summary = text_of(app, "#trouble-summary")
        assert "The check did not finish" in summary and "[CONFIG_INVALID]" in summary
        assert app.query_one("#trouble-fixall", Button).disabled
        doctor.fail = None
        assert await pilot.click("#trouble-recheck")
        await settle(app, pilot)
        assert "Found 1 error, 2 warnings, 1 info" in text_of(app, "#trouble-summary")


async def test_f2_shows_the_findings_in_the_other_language(tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(app, pilot)
        assert "显卡驱动太旧" in screen_text(app)
        await pilot.press("f2")
        await settle(app, pilot)
        screen = screen_text(app)
        assert "The driver is too old" in screen and "显卡驱动太旧" not in screen
        assert "Check again" in screen and "Fix all" in screen and "Diagnostic bundle" in screen
        assert doctor.calls == ["zh", "en"]


# --- snapshots ---------------------------------------------------------------------------------------------------
def _snapshot(snap_compare: Any, bundle: Bundle, f2: bool) -> bool:
    shutil.copy(LOGS / "cuda-oom.log", bundle.logs_dir / "runtime.log")

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        if f2:
            await pilot.press("f2")
        app.show("trouble")
        await settle(app, pilot)

    return bool(snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before))


def test_snapshot_zh(snap_compare: Any, tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    assert _snapshot(snap_compare, tui_bundle, f2=False)


def test_snapshot_en(snap_compare: Any, tui_bundle: Bundle, doctor: FakeDoctor) -> None:
    assert _snapshot(snap_compare, tui_bundle, f2=True)
