"""模型管理: the library, filters and problems, downloads with pause and resume, verify, open folder; zh and en."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, ContentSwitcher, DataTable, ProgressBar, Select, Static, TabbedContent

from bootstrap.layout import Bundle
from launcher import config
from launcher.downloads.partfile import PartFile
from launcher.tui.app import YijianApp
from launcher.tui.pages import models as page
from launcher.tui.pages.models import ModelsPage
from tests.support.fake_models import ESRGAN, HTML_PAGE, SD15_CKPT, SD15_LORA, SDXL_CKPT, VAE, write_safetensors
from tests.support.hf_endpoint import HfEndpoint
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text, settle

pytestmark = pytest.mark.usefixtures("fixed_status")

MiB = 1024 * 1024
REPO, FILE = "OedoSoldier/detail-tweaker-lora", "add_detail.safetensors"  # the catalog's add-detail entry


def seed(bundle: Bundle) -> None:
    """Fixed model files (fixed sizes): two checkpoints, a pickle, a LoRA, a broken LoRA, a VAE, an upscaler."""
    m = bundle.models_dir
    write_safetensors(m / "Stable-diffusion" / "anything-v5.safetensors", SD15_CKPT)
    write_safetensors(m / "Stable-diffusion" / "sdxl-base-1.0.safetensors", SDXL_CKPT)
    (m / "Stable-diffusion" / "old-model.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 2000)
    write_safetensors(m / "Lora" / "detail-slider [v2].safetensors", SD15_LORA)
    (m / "Lora" / "broken.safetensors").write_bytes(HTML_PAGE)
    write_safetensors(m / "VAE" / "vae-ft-mse.safetensors", VAE)
    write_safetensors(m / "ESRGAN" / "4x-UltraSharp.safetensors", ESRGAN)


def lora_bytes(tmp_path: Path) -> bytes:
    """A LoRA-shaped safetensors file of about 6 MiB (zeros: sizes and hashes are the same every run)."""
    path = write_safetensors(tmp_path / "src.safetensors", {**SD15_LORA, "pad": (3 * MiB,)})
    return path.read_bytes()


async def download_ended(app: YijianApp, pilot: Pilot[Any]) -> None:
    models = app.query_one(ModelsPage)
    await until(pilot, lambda: models.download is not None and not models.download.busy)
    await settle(app, pilot)


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def rows(app: YijianApp, selector: str) -> list[list[str]]:
    table: DataTable[str] = app.query_one(selector, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def static(app: YijianApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def state_of(app: YijianApp, name: str) -> str:
    return next(r[4] for r in rows(app, "#models-catalog-table") if r[0] == name)


def select_row(app: YijianApp, selector: str, first_cell: str) -> None:
    table: DataTable[str] = app.query_one(selector, DataTable)
    index = next(i for i, r in enumerate(rows(app, selector)) if r[0] == first_cell)
    table.move_cursor(row=index)


async def open_models(app: YijianApp, pilot: Pilot[Any], tab: str = "models-library") -> None:
    """Go to 模型管理 as a user does (the sidebar), on one of its tabs, once its workers are done."""
    await pilot.pause()
    assert await pilot.click("#nav-models")
    app.query_one("#models-tabs", TabbedContent).active = tab
    await settle(app, pilot)
    assert app.query_one("#pages", ContentSwitcher).current == "models"
    page = app.query_one(ModelsPage)  # a loaded machine can keep the first scan and the catalog past the settle
    await until(pilot, lambda: (page.files is not None or bool(page.scan_error))
                and (page.catalog is not None or bool(page.catalog_error)))  # fmt: skip
    await settle(app, pilot)


async def open_catalog(app: YijianApp, pilot: Pilot[Any]) -> None:
    await open_models(app, pilot, "models-catalog")


# --- the library ------------------------------------------------------------------------------------------------


async def test_library_lists_types_architectures_and_problems_in_plain_words(tui_bundle: Bundle) -> None:
    seed(tui_bundle)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        table = rows(app, "#models-table")
        assert [r[0] for r in table] == [
            "anything-v5.safetensors", "old-model.ckpt", "sdxl-base-1.0.safetensors", "broken.safetensors",
            "detail-slider [v2].safetensors", "vae-ft-mse.safetensors", "4x-UltraSharp.safetensors",
        ]  # fmt: skip
        by_name = {r[0]: r[1:] for r in table}
        assert by_name["anything-v5.safetensors"][:2] == ["大模型", "SD 1.5"]
        assert by_name["sdxl-base-1.0.safetensors"][:2] == ["大模型", "SDXL"]
        assert by_name["old-model.ckpt"][3] == "pickle 不安全"
        assert by_name["broken.safetensors"][3] == "已损坏"
        assert by_name["4x-UltraSharp.safetensors"][0] == "放大算法"
        text = screen_text(app)
        assert "pickle 不安全" in text and "已损坏" in text

        select_row(app, "#models-table", "broken.safetensors")
        await pilot.pause()
        detail = static(app, "#models-file-detail")
        assert "文件已损坏：这是一个网页（HTML），不是模型" in detail
        assert detail.startswith(str(Path("models") / "Lora" / "broken.safetensors"))
        select_row(app, "#models-table", "old-model.ckpt")
        await pilot.pause()
        assert "加载时可能运行其中的代码" in static(app, "#models-file-detail")

        app.query_one("#models-filter", Select).value = "lora"
        await pilot.pause()
        assert [r[0] for r in rows(app, "#models-table")] == ["broken.safetensors", "detail-slider [v2].safetensors"]
        app.query_one("#models-filter", Select).value = "embedding"
        await pilot.pause()
        assert rows(app, "#models-table") == []
        assert "还没有这类模型" in static(app, "#models-file-detail")
        assert app.query_one("#models-verify").disabled


async def test_f2_relabels_headers_rows_and_the_filter(tui_bundle: Bundle) -> None:
    seed(tui_bundle)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        app.query_one("#models-filter", Select).value = "checkpoint"
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        table: DataTable[str] = app.query_one("#models-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["File", "Type", "Arch", "Size", "Notes"]
        assert [r[1] for r in rows(app, "#models-table")] == ["Checkpoint"] * 3
        assert "unsafe pickle" in [r[4] for r in rows(app, "#models-table")]
        assert app.query_one("#models-filter", Select).value == "checkpoint"
        text = screen_text(app)
        assert "Library" in text and "Download" in text and "Open folder" in text and "Checkpoint" in text
        assert "模型库" not in text and "大模型" not in text
        # every line is exactly as wide as the screen: no CJK cell miscounted
        from rich.cells import cell_len

        assert all(cell_len(line) == SNAPSHOT_SIZE[0] for line in text.splitlines())


async def test_a_shared_folder_and_refresh(tui_bundle: Bundle, tmp_path: Path) -> None:
    shared = tmp_path / "sd-webui-aki" / "models"
    write_safetensors(shared / "Lora" / "shared-style.safetensors", SD15_LORA)
    config.apply(tui_bundle, [("models.extra_dirs", [str(shared.parent)])])
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        assert rows(app, "#models-table") == [["shared-style.safetensors", "LoRA", "SD 1.5", "41.9 KB", "共享"]]
        write_safetensors(tui_bundle.models_dir / "VAE" / "new.safetensors", VAE)
        assert await pilot.click("#models-refresh")
        await until(pilot, lambda: len(rows(app, "#models-table")) == 2)
        assert [r[0] for r in rows(app, "#models-table")] == ["shared-style.safetensors", "new.safetensors"]


# --- 校验 ----------------------------------------------------------------------------------------------------------


async def test_verify_shows_sha256_and_the_a1111_hashes(tui_bundle: Bundle) -> None:
    seed(tui_bundle)
    path = tui_bundle.models_dir / "Stable-diffusion" / "anything-v5.safetensors"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        select_row(app, "#models-table", "anything-v5.safetensors")
        assert await pilot.click("#models-verify")
        await until(pilot, lambda: "✓" in static(app, "#models-verify-result"))
        await settle(app, pilot)
        out = static(app, "#models-verify-result")
        assert "✓ 校验通过  anything-v5.safetensors" in out
        assert f"sha256 {sha}" in out and f"A1111 模型哈希 {sha[:10]}" in out

        select_row(app, "#models-table", "broken.safetensors")
        await pilot.pause()
        assert await pilot.click("#models-verify")
        await until(pilot, lambda: "✗" in static(app, "#models-verify-result"))
        await settle(app, pilot)
        out = static(app, "#models-verify-result")
        assert "✗ 有问题  broken.safetensors" in out and "这是一个网页（HTML）" in out
        await pilot.press("f2")
        await pilot.pause()
        out = static(app, "#models-verify-result")
        assert "✗ PROBLEM  broken.safetensors" in out and "corrupt" in out


# --- 打开文件夹 ------------------------------------------------------------------------------------------------------


async def test_open_folder_without_a_file_manager_shows_the_path(
    tui_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(tui_bundle)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(page.sys, "platform", "linux")
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        select_row(app, "#models-table", "vae-ft-mse.safetensors")
        assert await pilot.click("#models-open")
        await until(pilot, lambda: "文件管理器" in static(app, "#models-verify-result"))
        out = static(app, "#models-verify-result")
        assert "没有可用的文件管理器" in out and str(tui_bundle.models_dir / "VAE") in out


async def test_open_folder_runs_the_file_manager_with_an_argv_list(
    tui_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(tui_bundle)
    calls: list[Any] = []

    class Done:
        returncode = 0

    def fake_run(argv: Any, **kw: Any) -> Done:
        calls.append((argv, kw))
        return Done()

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(page.sys, "platform", "linux")
    monkeypatch.setattr(page.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(page.proc, "run", fake_run)
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot)
        select_row(app, "#models-table", "broken.safetensors")
        assert await pilot.click("#models-open")
        await until(pilot, lambda: "文件管理器" in static(app, "#models-verify-result"))
        assert calls == [(["/usr/bin/xdg-open", str(tui_bundle.models_dir / "Lora")], calls[0][1])]
        assert "shell" not in calls[0][1]
        assert "已在文件管理器中打开" in static(app, "#models-verify-result")


# --- downloads ------------------------------------------------------------------------------------------------------


@pytest.fixture
def served(tui_bundle: Bundle, hf_endpoint: HfEndpoint, tmp_path: Path) -> bytes:
    """The catalog's add-detail LoRA on the Hugging Face stand-in, which the bundle uses as its mirror."""
    data = lora_bytes(tmp_path)
    hf_endpoint.add_repo(REPO, {FILE: data}, lfs=(FILE,))
    config.apply(tui_bundle, [("mirrors.huggingface", hf_endpoint.url), ("downloads.connections", 2)])
    return data


async def test_download_shows_progress_pause_keeps_the_part_and_resume_finishes(
    tui_bundle: Bundle, hf_endpoint: HfEndpoint, served: bytes
) -> None:
    hf_endpoint.faults(REPO, FILE).throttle = MiB  # per connection: about 3 s in all
    dest = tui_bundle.models_dir / "Lora" / FILE
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_catalog(app, pilot)
        models = app.query_one(ModelsPage)
        select_row(app, "#models-catalog-table", "细节调整 LoRA（add_detail）")
        await pilot.pause()
        assert app.query_one("#models-pause").disabled and app.query_one("#models-resume").disabled
        assert await pilot.click("#models-download")
        bar = app.query_one("#models-dl-bar", ProgressBar)
        await until(pilot, lambda: (bar.progress or 0) >= MiB)
        assert bar.total == len(served)
        status = static(app, "#models-dl-status")
        assert "正在下载 细节调整 LoRA（add_detail）" in status and "个连接" in status and "/s" in status
        assert "下载中" in state_of(app, "细节调整 LoRA（add_detail）")
        assert app.query_one("#models-download").disabled and not app.query_one("#models-pause").disabled

        assert await pilot.click("#models-pause")
        await download_ended(app, pilot)
        assert models.download is not None and models.download.phase == "paused"
        status = static(app, "#models-dl-status")
        assert "已暂停" in status and "已下载的部分已保留" in status
        part = PartFile(dest)
        assert not dest.exists() and part.part.exists() and part.journal.exists()
        _, done = part.load()
        kept = sum(e - s for s, e in done)
        assert 0 < kept < len(served)
        assert state_of(app, "细节调整 LoRA（add_detail）").startswith("已暂停")
        assert not app.query_one("#models-resume").disabled and app.query_one("#models-pause").disabled

        hf_endpoint.faults(REPO, FILE).throttle = None
        hf_endpoint.wait_idle()
        hf_endpoint.reset_counts()
        assert await pilot.click("#models-resume")
        await download_ended(app, pilot)
        sha = hashlib.sha256(served).hexdigest()
        assert models.download.phase == "done", static(app, "#models-dl-status")
        assert dest.read_bytes() == served and models.download.result.reused == kept
        assert hf_endpoint.bytes_served(f"/cdn/repos/{REPO}") <= len(served) - kept + 1 + 2 * 64 * 1024
        status = static(app, "#models-dl-status")
        assert f"✓ 已保存，sha256 已校验：{dest}" in status and f"  sha256 {sha}" in status
        assert not part.part.exists()
        assert state_of(app, "细节调整 LoRA（add_detail）") == "已下载"
        assert FILE in [r[0] for r in rows(app, "#models-table")]  # the library knows it now


async def test_quitting_during_a_download_keeps_the_partial_file(
    tui_bundle: Bundle, hf_endpoint: HfEndpoint, served: bytes
) -> None:
    hf_endpoint.faults(REPO, FILE).throttle = MiB // 2
    dest = tui_bundle.models_dir / "Lora" / FILE
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_catalog(app, pilot)
        select_row(app, "#models-catalog-table", "细节调整 LoRA（add_detail）")
        assert await pilot.click("#models-download")
        bar = app.query_one("#models-dl-bar", ProgressBar)
        await until(pilot, lambda: (bar.progress or 0) > 0)
        started = time.monotonic()
        await pilot.press("ctrl+q")
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 10
    while PartFile(dest).lock_path.exists() and time.monotonic() < deadline:  # the worker thread winds down
        time.sleep(0.05)
    part = PartFile(dest)
    assert not dest.exists() and part.part.exists() and not part.lock_path.exists()
    _, done = part.load()
    assert 0 < sum(e - s for s, e in done) < len(served)


async def test_the_verify_step_is_shown(tui_bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    import launcher.models.fetch as fetch
    from launcher.downloads import Result
    from launcher.downloads.progress import Progress

    gate = threading.Event()
    dest = tui_bundle.models_dir / "Lora" / FILE

    def fake_fetch(bundle: Bundle, cfg: Any, request: Any, **kw: Any) -> Result:
        kw["on_plan"](SimpleNamespace(filename=FILE, size=10))
        kw["on_progress"](Progress(5, 10, 100.0, None, 2, "download"))
        kw["on_progress"](Progress(10, 10, 0.0, None, 2, "verify"))  # what the engine reports before hashing
        gate.wait(20)
        return Result(dest, "ab" * 32, 10, 0, 10, 2, "http://mirror/x")

    monkeypatch.setattr(fetch, "fetch_model", fake_fetch)
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_catalog(app, pilot)
        select_row(app, "#models-catalog-table", "Detail Tweaker LoRA (add_detail)")
        assert await pilot.click("#models-download")
        await until(pilot, lambda: "Verifying the sha256 of Detail Tweaker" in static(app, "#models-dl-status"))
        assert app.query_one("#models-pause").disabled  # nothing to pause while hashing
        assert app.query_one("#models-dl-bar", ProgressBar).progress == 10
        gate.set()
        await settle(app, pilot)
        status = static(app, "#models-dl-status")
        assert f"✓ Saved, sha256 verified: {dest}" in status and f"sha256 {'ab' * 32}" in status


async def test_errors_are_shown_in_plain_words_and_the_page_keeps_working(tui_bundle: Bundle) -> None:
    config.apply(tui_bundle, [("network.offline", True)])
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_catalog(app, pilot)
        # the error text is tested, not the click (a click on a loaded machine can land before the tab is laid out)
        await until(pilot, lambda: not app.query_one("#models-download", Button).disabled)
        app.query_one("#models-download", Button).press()
        await download_ended(app, pilot)
        status = static(app, "#models-dl-status")
        assert "✗ [OFFLINE_MODE]" in status and "离线" in status
        await pilot.press("f2")
        await pilot.pause()
        assert "✗ [OFFLINE_MODE]" in static(app, "#models-dl-status") and "offline" in static(app, "#models-dl-status")
        assert not app.query_one("#models-download").disabled  # usable again
        app.query_one("#models-tabs", TabbedContent).active = "models-library"
        await settle(app, pilot)
        assert not app.query_one("#models-refresh", Button).disabled  # the page keeps working


async def test_an_unexpected_error_is_shown_not_raised(tui_bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    import launcher.models.fetch as fetch

    def boom(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fetch, "fetch_model", boom)
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_catalog(app, pilot)
        # what is tested is the error text, not the click: press the button itself (a click on a loaded machine can
        # land before the tab is laid out; the click path is covered by the download tests above)
        await until(pilot, lambda: not app.query_one("#models-download", Button).disabled)
        app.query_one("#models-download", Button).press()
        await download_ended(app, pilot)
        assert "✗ Unexpected error: RuntimeError: disk on fire" in static(app, "#models-dl-status")
        assert app.is_running


# --- snapshots ------------------------------------------------------------------------------------------------------


def _run_before(lang_switch: bool, tab: str = "models-library") -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, YijianApp)
        await open_models(app, pilot, tab)
        if lang_switch:
            await pilot.press("f2")
        await pilot.pause()
        app.set_focus(None)  # where focus lands after the click depends on timing; the picture should not
        await pilot.pause()

    return run_before


def test_snapshot_library_zh(tui_bundle: Bundle, snap_compare: Any) -> None:
    seed(tui_bundle)
    assert snap_compare(YijianApp(tui_bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_run_before(False))


def test_snapshot_library_en(tui_bundle: Bundle, snap_compare: Any) -> None:
    seed(tui_bundle)
    assert snap_compare(YijianApp(tui_bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_run_before(True))


def test_snapshot_catalog_zh(tui_bundle: Bundle, snap_compare: Any) -> None:
    assert snap_compare(
        YijianApp(tui_bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_run_before(False, "models-catalog")
    )


def test_snapshot_catalog_en(tui_bundle: Bundle, snap_compare: Any) -> None:
    assert snap_compare(
        YijianApp(tui_bundle, "zh"), terminal_size=SNAPSHOT_SIZE, run_before=_run_before(True, "models-catalog")
    )
