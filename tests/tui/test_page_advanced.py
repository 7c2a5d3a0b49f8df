"""高级选项: launch options from the settings table, checked, saved to config.toml, restored; zh and en."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, Switch

from bootstrap.layout import Bundle
from launcher import config
from launcher.hardware.nvidia import given_gpu, given_hardware
from launcher.hardware.system import HardwareReport, SystemFacts
from launcher.tui.app import YijianApp
from launcher.tui.pages import advanced
from tests.support.fake_nvidia_smi import Recording
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text

pytestmark = pytest.mark.usefixtures("fixed_status")


@pytest.fixture
def bundle(tui_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bundle:
    """A bundle of this test's own: tui_bundle's fixed path is shared by every TUI test run on the machine, and
    these pages show no paths, so even the snapshots need no fixed one."""
    own = Bundle(tmp_path / "bundle")
    own.ensure_dirs()
    monkeypatch.setenv("YIJIAN_HOME", str(own.root))
    return own


def report(name: str | None, mib: int | None) -> HardwareReport:
    gpus = [given_gpu(name, None, mib)] if name else []
    system = SystemFacts("linux", "Ubuntu 24.04 LTS", "CPU", 16, 32768, 30000, "/", 100_000)
    return HardwareReport(given_hardware("linux", "552.22" if gpus else None, gpus, "12.4" if gpus else None), system)


@pytest.fixture
def hardware(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None, int | None], None]:
    """``hardware(name, mib)``: the probe finds this GPU (or none), the same on every machine."""

    def use(name: str | None, mib: int | None) -> None:
        monkeypatch.setattr("launcher.hardware.system.probe_hardware", lambda root, *a, **k: report(name, mib))

    use("NVIDIA GeForce RTX 4090", 24564)
    return use


async def open_page(app: YijianApp, pilot: Pilot[Any]) -> None:
    assert await pilot.click("#nav-advanced")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def save(app: YijianApp, pilot: Pilot[Any]) -> None:
    page = app.query_one(advanced.AdvancedPage)
    page.scroll_home(animate=False)
    await pilot.pause()
    assert await pilot.click("#adv-save")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def type_into(pilot: Pilot[Any], app: YijianApp, selector: str, text: str) -> None:
    box = app.query_one(selector, Input)
    box.value = ""
    box.focus()
    await pilot.press(*text)
    await pilot.pause()


def error_of(app: YijianApp, key: str) -> str:
    box = app.query_one(f"#error-{advanced.field_id(key)}", Static)
    return str(box.render()) if box.display else ""


def status(app: YijianApp) -> str:
    return str(app.query_one("#adv-status", Static).render())


def saved(bundle: Bundle) -> str:
    return bundle.config_file.read_text(encoding="utf-8") if bundle.config_file.exists() else ""


async def test_a_changed_port_is_saved_to_config_toml(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "端口" in screen_text(app) and "恢复默认" in screen_text(app)
        await type_into(pilot, app, "#w-launch-port", "7861")
        assert "1 项修改未保存" in status(app)
        await pilot.press("ctrl+s")  # the page's binding works while an Input has the focus
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "已保存到 config.toml，下次启动生成界面时生效" in status(app)
    assert "port = 7861" in saved(bundle)
    assert config.load(bundle).get_int("launch.port") == 7861


async def test_the_save_key_in_the_footer_follows_the_language(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await type_into(pilot, app, "#w-launch-port", "7870")
        footer = screen_text(app).splitlines()[-1]
        assert "保存" in footer and "Save" not in footer
        await pilot.press("f2")
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Save" in footer and "保存" not in footer
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Saved to config.toml" in status(app)
    assert "port = 7870" in saved(bundle)


async def test_bad_input_shows_an_error_beside_the_field_and_saves_nothing(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await type_into(pilot, app, "#w-launch-port", "abc")
        assert "应为整数" in error_of(app, "launch.port")
        await save(app, pilot)
        assert "1 处需要改正" in status(app)
        await type_into(pilot, app, "#w-launch-port", "80")
        assert "1024 到 65535" in error_of(app, "launch.port")
        await type_into(pilot, app, "#w-launch-auth", "nopassword")
        assert "用户名:密码" in error_of(app, "launch.auth")
        await save(app, pilot)
        assert "2 处需要改正" in status(app)
        await pilot.press("f2")
        await pilot.pause()
        assert "must be between 1024 and 65535" in error_of(app, "launch.port")  # errors follow the language
        assert "2 problem(s) to fix" in status(app)
    assert not bundle.config_file.exists()


async def test_a_save_that_cannot_be_written_says_why_and_keeps_the_file(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        bundle.config_file.write_text("[launch\nport = 1\n", encoding="utf-8")  # broken by hand meanwhile
        await type_into(pilot, app, "#w-launch-port", "7862")
        await save(app, pilot)
        assert status(app).startswith("✗ 无法读取配置文件")
        await pilot.press("f2")
        await pilot.pause()
        assert status(app).startswith("✗ Cannot read the config file")
    assert bundle.config_file.read_text(encoding="utf-8") == "[launch\nport = 1\n"  # never overwritten blindly


async def test_a_broken_config_still_opens_the_page(bundle: Bundle, hardware: Any) -> None:
    bundle.config_file.write_text('[launch]\nport = "high"\n', encoding="utf-8")
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "CONFIG" in status(app) or "config file" in status(app)
        assert app.query_one("#w-launch-port", Input).value == "7860"  # the defaults are shown


async def test_listen_needs_a_login_before_it_is_saved(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "必须同时设置登录" in screen_text(app)  # the rule is on the page before anyone trips on it
        assert await pilot.click("#w-launch-listen")
        await pilot.pause()
        assert app.query_one("#w-launch-listen", Switch).value is True
        assert "请先设置登录" in error_of(app, "launch.listen")
        await save(app, pilot)
        assert not bundle.config_file.exists()
        await type_into(pilot, app, "#w-launch-auth", "me:secret")
        assert error_of(app, "launch.listen") == ""
        await save(app, pilot)
    text = saved(bundle)
    assert "listen = true" in text and 'auth = "me:secret"' in text


async def test_restore_default_removes_the_setting_and_keeps_comments(bundle: Bundle, hardware: Any) -> None:
    bundle.config_file.write_text(
        '# my notes\n[launch]\nvram = "lowvram"\nattention = "xformers"  # fast on my card\n', encoding="utf-8"
    )
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert app.query_one("#w-launch-vram", Select).value == "lowvram"
        button = app.query_one("#reset-launch-vram")
        button.scroll_visible(animate=False)
        await pilot.pause()
        assert await pilot.click("#reset-launch-vram")
        await pilot.pause()
        assert app.query_one("#w-launch-vram", Select).value == "auto"
        await save(app, pilot)
    text = saved(bundle)
    assert "vram" not in text  # back at its default: only what the user changed is kept
    assert "# my notes" in text and 'attention = "xformers"  # fast on my card' in text


async def test_discard_puts_the_saved_values_back(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        app.query_one("#w-launch-precision", Select).value = "bf16"
        app.query_one("#w-launch-api", Switch).value = False
        await pilot.pause()
        assert "2 unsaved change(s)" in status(app)
        assert await pilot.click("#adv-revert")
        await pilot.pause()
        assert app.query_one("#w-launch-precision", Select).value == "auto"
        assert app.query_one("#w-launch-api", Switch).value is True
        assert "No unsaved changes" in status(app)


async def test_choices_switches_and_offline_are_saved(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        select = app.query_one("#w-launch-precision", Select)
        select.scroll_visible(animate=False)
        select.focus()
        await pilot.press("enter", "down", "down", "enter")  # the keyboard way: auto -> fp16 -> bf16
        await pilot.pause()
        assert select.value == "bf16"
        app.query_one("#w-launch-open_browser", Switch).value = False
        app.query_one("#w-network-offline", Switch).value = True
        await pilot.pause()
        assert "关" in str(app.query_one("#state-launch-open_browser", Static).render())
        await save(app, pilot)
        cfg = config.load(bundle)
        assert cfg.get_str("launch.precision") == "bf16"
        assert cfg.get_bool("launch.open_browser") is False and cfg.get_bool("network.offline") is True
        # the network page shows the same switch, read again when it is opened
        assert await pilot.click("#nav-network")
        await pilot.pause()
        assert app.query_one("#offline", Switch).value is True


async def test_the_automatic_vram_choice_of_this_machine(bundle: Bundle, hardware: Any) -> None:
    hardware("NVIDIA GeForce RTX 4060 Laptop GPU", 8188)
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        line = str(app.query_one("#vram-auto", Static).render())
        assert "RTX 4060 Laptop GPU，8 GB" in line
        assert "SD 1.5 → none" in line and "SDXL → medvram" in line
        await pilot.press("f2")
        await pilot.pause()
        assert "On this machine" in str(app.query_one("#vram-auto", Static).render())


async def test_no_gpu_says_the_preset_does_nothing(bundle: Bundle, hardware: Any) -> None:
    hardware(None, None)
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "No NVIDIA GPU found" in str(app.query_one("#vram-auto", Static).render())


async def test_the_real_probe_with_a_recorded_card(
    bundle: Bundle, fake_gpu: Callable[[str], Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("launcher.hardware.system.probe_nvml", lambda *a, **k: None)  # nvidia-smi only
    fake_gpu("gtx1060-472")
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        line = str(app.query_one("#vram-auto", Static).render())
        assert "GTX 1060" in line and "SDXL → medvram" in line


def test_the_form_is_drawn_from_the_settings_table() -> None:
    for key, _ in advanced.FIELDS:
        setting = config.BY_KEY[key]
        for choice in advanced.CHOICES.get(key, {}):
            assert choice in setting.choices, (key, choice)


async def test_language_switch_relabels_everything(bundle: Bundle, hardware: Any) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        zh = screen_text(app)
        assert "端口" in zh and "恢复默认" in zh and "默认：7860" in zh and "生成界面的端口" in zh
        await pilot.press("f2")
        await pilot.pause()
        en = screen_text(app)
        assert "Port" in en and "Default" in en and "default: 7860" in en and "Port of the generation UI" in en
        assert "恢复默认" not in en and "端口" not in en
        assert app.query_one("#w-launch-vram", Select).value == "auto"
        assert "auto (from the VRAM)" in en


# --- snapshots ------------------------------------------------------------------------------------------------


async def _to_page(pilot: Pilot[Any]) -> None:
    await pilot.pause()  # the sidebar's first highlight (home) is handled before we move on
    assert await pilot.click("#nav-advanced")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_snapshot_zh(snap_compare: Any, bundle: Bundle, hardware: Any) -> None:
    hardware("NVIDIA GeForce RTX 3060", 12288)
    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_to_page)


def test_snapshot_en(snap_compare: Any, bundle: Bundle, hardware: Any) -> None:
    hardware("NVIDIA GeForce RTX 3060", 12288)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _to_page(pilot)
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_zh_errors(snap_compare: Any, bundle: Bundle, hardware: Any) -> None:
    """The lower half, with the listen rule tripped: what a user sees when saving is refused."""
    bundle.config_file.write_text('[launch]\nlisten = true\nvram = "medvram"\n', encoding="utf-8")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _to_page(pilot)
        pilot.app.query_one("#field-launch-listen").scroll_visible(top=True, animate=False)
        await pilot.pause()

    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before)
