"""网络/镜像: each channel's mirror, your own URL or folder (checked), 测速 against local stand-ins, proxy, offline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, Switch

from bootstrap.layout import Bundle
from launcher import config
from launcher.tui.app import YijianApp
from launcher.tui.pages.network import CUSTOM, NetworkPage
from tests.support.bundle_copy import isolate_mirrors, set_mirror_urls
from tests.support.hermetic import REPO
from tests.support.plugin_mirrors import MirrorFarm
from tests.support.pypi_index import PackageIndex
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text, settle

pytestmark = pytest.mark.usefixtures("fixed_status")


@pytest.fixture
def bundle(tui_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bundle:
    """A bundle of this test's own: tui_bundle's fixed path is shared by every TUI test run on the machine, and
    these pages show no paths, so even the snapshots need no fixed one."""
    own = Bundle(tmp_path / "bundle")
    own.ensure_dirs()
    monkeypatch.setenv("YIJIAN_HOME", str(own.root))
    return own


def local_code(tmp_path: Path) -> Path:
    """A code root whose mirrors.toml we may edit (the repository's own is never touched); the rest is shared."""
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy2(REPO / "mirrors.toml", code / "mirrors.toml")
    for name in ("packs", "requirements", "models"):
        (code / name).symlink_to(REPO / name)
    return code


@pytest.fixture
def isolated(bundle: Bundle, tmp_path: Path) -> Bundle:
    """The same bundle, every catalog mirror pointed at a local port nobody listens on."""
    code = local_code(tmp_path)
    isolate_mirrors(code)
    return Bundle(bundle.root, code=code)


@pytest.fixture
def farm_bundle(isolated: Bundle, mirror_farm: MirrorFarm) -> Bundle:
    """PyPI: official healthy, bfsu 403, ustc an HTML page, aliyun slow, the rest refuse; other channels refuse."""
    set_mirror_urls(isolated.mirrors_file, "pypi", {
        "pypi": mirror_farm.fast.simple_url(), "bfsu": mirror_farm.forbidden.simple_url(),
        "ustc": mirror_farm.html.simple_url(), "aliyun": mirror_farm.slow.simple_url(),
    })  # fmt: skip
    isolated.config_file.write_text("[network]\nprobe_timeout = 0.5\n", encoding="utf-8")
    return isolated


FIXED_RANKING = {
    "pypi": [
        {"id": "tuna", "ok": True, "ttfb_ms": 38.4, "bytes_per_s": 2_400_000, "error": ""},
        {"id": "aliyun", "ok": True, "ttfb_ms": 52.0, "bytes_per_s": 1_800_000, "error": ""},
        {"id": "pypi", "ok": True, "ttfb_ms": 410.7, "bytes_per_s": 310_000, "error": ""},
        {"id": "bfsu", "ok": False, "ttfb_ms": None, "bytes_per_s": None, "error": "HTTP 403"},
        {"id": "ustc", "ok": False, "ttfb_ms": None, "bytes_per_s": None, "error": "not a package index (wrong content)"},
    ],
    "torch": [
        {"id": "nju", "ok": True, "ttfb_ms": 61.2, "bytes_per_s": 5_200_000, "error": ""},
        {"id": "sjtu", "ok": True, "ttfb_ms": 70.0, "bytes_per_s": 900_000, "error": "", "automatic": False},
        {"id": "official", "ok": False, "ttfb_ms": None, "bytes_per_s": None, "error": "timed out"},
    ],
    "huggingface": [
        {"id": "hf-mirror", "ok": True, "ttfb_ms": 88.9, "bytes_per_s": 3_100_000, "error": ""},
        {"id": "huggingface", "ok": False, "ttfb_ms": None, "bytes_per_s": None, "error": "connection reset"},
    ],
}  # fmt: skip


def save_ranking(bundle: Bundle, age_s: float = 60) -> None:
    at = time.time() - age_s
    data = {"channels": {ch: {"measured_at": at, "results": [{"channel": ch, **r} for r in rs]}
                         for ch, rs in FIXED_RANKING.items()}}  # fmt: skip
    (bundle.cache_dir / "mirrors.json").write_text(json.dumps(data), encoding="utf-8")


async def open_page(app: YijianApp, pilot: Pilot[Any]) -> None:
    await pilot.pause()
    assert await pilot.click("#nav-network")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def press(app: YijianApp, pilot: Pilot[Any], button: str) -> None:
    app.query_one(NetworkPage).scroll_home(animate=False)
    await pilot.pause()
    assert await pilot.click(button)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def type_into(app: YijianApp, pilot: Pilot[Any], selector: str, text: str) -> None:
    box = app.query_one(selector, Input)
    box.value = ""
    box.focus()
    await pilot.press(*text)
    await pilot.pause()


async def custom(app: YijianApp, pilot: Pilot[Any], channel: str, text: str) -> None:
    app.query_one(f"#sel-{channel}", Select).value = CUSTOM
    await pilot.pause()
    assert app.query_one(f"#custom-{channel}", Input).display
    await type_into(app, pilot, f"#custom-{channel}", text)


def text_of(app: YijianApp, selector: str) -> str:
    widget = app.query_one(selector, Static)
    return str(widget.render()) if widget.display else ""


def rows(app: YijianApp) -> list[list[str]]:
    table = app.query_one("#mirror-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def saved(bundle: Bundle) -> str:
    return bundle.config_file.read_text(encoding="utf-8") if bundle.config_file.exists() else ""


async def test_choosing_a_mirror_saves_it_and_shows_what_is_used(bundle: Bundle) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "auto：未测速，按列表顺序" in text_of(app, "#now-pypi")
        select = app.query_one("#sel-huggingface", Select)
        select.focus()
        await pilot.press("enter", "down", "down", "enter")  # auto -> hf-mirror -> huggingface, by keyboard
        await pilot.pause()
        assert select.value == "huggingface"
        app.query_one("#sel-pypi", Select).value = "bfsu"
        await pilot.pause()
        assert "2 项修改未保存" in text_of(app, "#net-status")
        await press(app, pilot, "#net-save")
        assert "已保存到 config.toml" in text_of(app, "#net-status")
        assert "北京外国语大学" in text_of(app, "#now-pypi")
    text = saved(bundle)
    assert 'pypi = "bfsu"' in text and 'huggingface = "huggingface"' in text


async def test_a_name_users_know_is_saved_as_the_mirror_id(bundle: Bundle) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await custom(app, pilot, "pypi", "清华")
        await press(app, pilot, "#net-save")
        assert app.query_one("#sel-pypi", Select).value == "tuna"  # shown as the catalog entry from now on
    assert 'pypi = "tuna"' in saved(bundle)


async def test_bad_choices_show_errors_and_save_nothing(bundle: Bundle, mirror_farm: MirrorFarm) -> None:
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await custom(app, pilot, "pypi", "tsinghau")
        assert "你是不是想写「tuna」" in text_of(app, "#err-pypi")
        await custom(app, pilot, "torch", "/no/such/folder")
        assert "文件夹不存在" in text_of(app, "#err-torch")
        await type_into(app, pilot, "#proxy", "127.0.0.1:7890")
        assert "http://主机:端口" in text_of(app, "#err-proxy")
        await press(app, pilot, "#net-save")
        assert "3 处需要改正" in text_of(app, "#net-status")
        await pilot.press("f2")
        await pilot.pause()
        assert "Did you mean 'tuna'" in text_of(app, "#err-pypi")
        assert "no such folder" in text_of(app, "#err-torch")
        # a URL that answers with a web page is refused after the check, like `mirrors use` does
        await type_into(app, pilot, "#custom-pypi", mirror_farm.html.simple_url())
        app.query_one("#sel-torch", Select).value = "auto"
        await type_into(app, pilot, "#proxy", "")
        await press(app, pilot, "#net-save")
        assert "wrong content" in text_of(app, "#err-pypi")
        assert "nothing was saved" in text_of(app, "#net-status")
        await pilot.press("f2")
        await pilot.pause()
        assert "现在不能用作 pypi" in text_of(app, "#err-pypi")
        assert "什么都没有保存" in text_of(app, "#net-status")  # the failed check stays until the field is edited
        await type_into(app, pilot, "#custom-pypi", "tuna")
        assert text_of(app, "#err-pypi") == ""
    assert not bundle.config_file.exists()


async def test_your_own_url_and_folder_are_checked_then_saved(
    bundle: Bundle, mirror_farm: MirrorFarm, flat_index: PackageIndex, tmp_path: Path
) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "pip-24.0-py3-none-any.whl").write_bytes(b"")
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await custom(app, pilot, "pypi", folder.as_uri())
        await custom(app, pilot, "torch", flat_index.flat_url("cu128"))
        await press(app, pilot, "#net-save")
        status = text_of(app, "#net-status")
        assert "Saved" in status and "flat file listing" in status
        assert app.query_one("#custom-torch", Input).value == "flat+" + flat_index.flat_url("cu128")
        assert flat_index.flat_url("cu128") in text_of(app, "#now-torch")
        await custom(app, pilot, "huggingface", mirror_farm.dead_url)  # nobody answers there, but offline:
        app.query_one("#offline", Switch).value = True
        await pilot.pause()
        await press(app, pilot, "#net-save")
        assert "was not checked" in text_of(app, "#net-status")
    cfg = config.load(bundle)
    assert cfg.get_str("mirrors.pypi") == folder.as_uri()
    assert cfg.get_str("mirrors.torch") == "flat+" + flat_index.flat_url("cu128")
    assert cfg.get_str("mirrors.huggingface") == mirror_farm.dead_url and cfg.get_bool("network.offline")


async def test_proxy_and_offline_are_saved_and_auto_goes_back_to_the_default(bundle: Bundle) -> None:
    bundle.config_file.write_text('# mine\n[mirrors]\npypi = "tuna"  # fast here\n', encoding="utf-8")
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert app.query_one("#sel-pypi", Select).value == "tuna"
        app.query_one("#sel-pypi", Select).value = "auto"
        await type_into(app, pilot, "#proxy", "http://127.0.0.1:7890")
        app.query_one("#offline", Switch).value = True
        await pilot.pause()
        assert "开" in str(app.query_one("#offline-state", Static).render())
        await press(app, pilot, "#net-save")
    text = saved(bundle)
    assert "pypi" not in text and "# mine" in text  # back to auto: removed, comments kept
    cfg = config.load(bundle)
    assert cfg.get_str("network.proxy") == "http://127.0.0.1:7890" and cfg.get_bool("network.offline")


async def test_discard_puts_the_saved_choices_back(bundle: Bundle) -> None:
    app = YijianApp(bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        await custom(app, pilot, "github", "https://ghproxy.example/")
        assert "1 unsaved change(s)" in text_of(app, "#net-status")
        await press(app, pilot, "#net-revert")
        assert app.query_one("#sel-github", Select).value == "off"
        assert not app.query_one("#custom-github", Input).display
        assert "No unsaved changes" in text_of(app, "#net-status")


async def test_speed_test_fills_the_table_from_the_local_stand_ins(farm_bundle: Bundle) -> None:
    app = YijianApp(farm_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "还没有测速结果" in text_of(app, "#test-note")
        app.query_one("#sel-pypi", Select).focus()
        await pilot.press("ctrl+t")  # the page's key, while a widget of the page has the focus
        await pilot.pause()
        assert "正在同时测速所有镜像（每个最多 0.5 秒）" in text_of(app, "#test-note")
        assert app.query_one("#net-test").disabled
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "测速完成" in text_of(app, "#test-note")
        table = rows(app)
        pypi = {r[1].strip("* "): r for r in table if r[0] == "pypi"}
        first = next(r for r in table if r[0] == "pypi")
        assert first[1] == "* pypi" and first[4] == "可用" and first[2].endswith(" ms")  # the only healthy one, in use
        assert pypi["tuna"][4] == "连接被拒绝" and pypi["bfsu"][4] == "HTTP 403"
        assert pypi["ustc"][4] == "内容不对" and pypi["aliyun"][4] == "超时"
        assert {r[0] for r in table} == {"pypi", "torch", "huggingface", "python", "github", "civitai", "modelscope"}
        assert "PyPI 官方（auto：测速最快）" in text_of(app, "#now-pypi")
        await pilot.press("f2")
        await pilot.pause()
        en = rows(app)
        assert next(r for r in en if r[1].strip("* ") == "tuna")[4] == "refused"
        assert "PyPI (official) (auto: fastest)" in text_of(app, "#now-pypi") or "auto: fastest" in text_of(
            app, "#now-pypi"
        )
    saved_ranking = json.loads((farm_bundle.cache_dir / "mirrors.json").read_text(encoding="utf-8"))
    assert saved_ranking["channels"]["pypi"]["results"][0]["id"] == "pypi"


async def test_a_fresh_saved_ranking_is_shown_and_a_stale_one_is_not(bundle: Bundle) -> None:
    save_ranking(bundle)
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert "上次测速的结果" in text_of(app, "#test-note")
        table = rows(app)
        assert table[0] == ["pypi", "* tuna", "38 ms", "2.4 MB/s", "可用"]
        assert ["torch", "  sjtu", "70 ms", "900 kB/s", "可用（未验证）"] in table
        assert "auto：测速最快" in text_of(app, "#now-pypi")
    save_ranking(bundle, age_s=7 * 3600)
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert rows(app) == [] and "还没有测速结果" in text_of(app, "#test-note")


async def test_offline_mode_refuses_the_speed_test(isolated: Bundle) -> None:
    bundle = isolated  # were offline mode ignored, nothing outside this machine would be probed
    bundle.config_file.write_text("[network]\noffline = true\n", encoding="utf-8")
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        assert app.query_one("#offline", Switch).value is True
        await press(app, pilot, "#net-test")
        assert "离线模式已开启，不能测速镜像" in text_of(app, "#test-note")
        await pilot.press("f2")
        await pilot.pause()
        assert "Offline mode is on" in text_of(app, "#test-note")
    assert not (bundle.cache_dir / "mirrors.json").exists()


async def test_language_switch_relabels_the_page_and_the_table(bundle: Bundle) -> None:
    save_ranking(bundle)
    app = YijianApp(bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_page(app, pilot)
        zh = screen_text(app)
        assert "Python 包" in zh and "auto（测速选最快）" in zh and "测速 Ctrl+T" in zh
        await pilot.press("f2")
        await pilot.pause()
        en = screen_text(app)
        assert "PyPI" in en and "auto (the fastest)" in en and "Test Ctrl+T" in en and "Python 包" not in en
        table = app.query_one("#mirror-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["Channel", "Mirror", "Latency", "Speed", "Status"]
        assert rows(app)[0][4] == "ok"


# --- snapshots ------------------------------------------------------------------------------------------------


async def _to_page(pilot: Pilot[Any]) -> None:
    await settle(pilot.app, pilot)
    assert await pilot.click("#nav-network")
    await settle(pilot.app, pilot)
    # Where focus lands after the click depends on timing; the picture should not (and the page's keys show in the
    # footer only while the focus is on the page): the first channel's choice.
    pilot.app.query_one(NetworkPage).query(Select).first().focus()
    await settle(pilot.app, pilot)


def test_snapshot_zh(snap_compare: Any, bundle: Bundle) -> None:
    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_to_page)


def test_snapshot_en(snap_compare: Any, bundle: Bundle) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _to_page(pilot)
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_zh_speed_table(snap_compare: Any, bundle: Bundle) -> None:
    """The 测速 table, from a saved ranking with fixed numbers."""
    save_ranking(bundle)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _to_page(pilot)
        pilot.app.query_one("#mirror-table", DataTable).focus()  # a known focus: it colours the cursor row
        pilot.app.query_one(NetworkPage).scroll_end(animate=False)
        await settle(pilot.app, pilot)

    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_en_speed_table(snap_compare: Any, bundle: Bundle) -> None:
    save_ranking(bundle)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _to_page(pilot)
        await pilot.press("f2")
        await settle(pilot.app, pilot)
        pilot.app.query_one("#mirror-table", DataTable).focus()  # a known focus: it colours the cursor row
        pilot.app.query_one(NetworkPage).scroll_end(animate=False)
        await settle(pilot.app, pilot)

    assert snap_compare(YijianApp(bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=run_before)
