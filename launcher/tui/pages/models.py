"""模型管理: the library, the catalog with downloads (progress, 暂停 and 继续), 校验, and 打开文件夹.

A thin layer over the core: :func:`launcher.models.library.scan` and
:func:`~launcher.models.library.verify_files` for what is on disk,
:func:`launcher.models.catalog.load_model_catalog` for what can be fetched,
:func:`launcher.models.fetch.fetch_model` for the download itself.  Every
call runs in a thread worker that reports back with messages, so the screen
never waits on the disk or the network.  Pausing sets the engine's ``stop``
event: the transfer ends keeping ``NAME.part`` and its journal, and 继续 is
the same call again, which resumes from them (also after a restart).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text as Cell
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, ProgressBar, Select, Static, TabbedContent, TabPane

from bootstrap import proc
from bootstrap.errors import YijianError
from launcher.downloads.progress import Progress
from launcher.models.catalog import FOLDER_BY_TYPE, CatalogEntry, ModelCatalog
from launcher.models.library import ModelFile
from launcher.tui.pages.base import Page

TYPES = ("checkpoint", "lora", "vae", "embedding", "upscaler")
TYPE_WORDS: dict[str, tuple[str, str]] = {
    "checkpoint": ("大模型", "Checkpoint"),
    "lora": ("LoRA", "LoRA"),
    "vae": ("VAE", "VAE"),
    "embedding": ("嵌入式", "Embedding"),
    "upscaler": ("放大算法", "Upscaler"),
}
FILTER_WORDS: dict[str, tuple[str, str]] = {
    "all": ("全部类型", "All types"),
    "checkpoint": ("大模型 Checkpoint", "Checkpoint"),
    "lora": ("LoRA", "LoRA"),
    "vae": ("外挂 VAE", "VAE"),
    "embedding": ("嵌入式 Embedding", "Embedding"),
    "upscaler": ("放大算法 Upscaler", "Upscaler"),
}
ARCH_WORDS = {"sd15": "SD 1.5", "sd2": "SD 2", "sd2-v": "SD 2-v", "sdxl": "SDXL"}
# A file's problems in a few words, for the table; the full sentence is under it.
PROBLEM_WORDS: dict[str, tuple[str, str]] = {
    "pickle": ("pickle 不安全", "unsafe pickle"),
    "corrupt": ("已损坏", "corrupt"),
    "wrong-folder": ("放错文件夹", "wrong folder"),
    "unreadable": ("无法读取", "unreadable"),
    "missing": ("找不到", "missing"),
    "hash-mismatch": ("校验和不符", "hash mismatch"),
}
# Columns: (key, zh, en, width).  Widths are cells and fit the longer of the two languages.
LIBRARY_COLUMNS = (
    ("name", "文件", "File", 28),
    ("type", "类型", "Type", 10),
    ("arch", "架构", "Arch", 7),
    ("size", "大小", "Size", 8),
    ("notes", "提示", "Notes", 14),
)
CATALOG_COLUMNS = (
    ("name", "名称", "Name", 30),
    ("type", "类型", "Type", 10),
    ("arch", "架构", "Arch", 7),
    ("size", "大小", "Size", 8),
    ("state", "状态", "State", 12),
)


def human_size(n: float | None) -> str:
    """``2.0 GB``, ``37.9 MB``: 1024-based, as the CLI's tables and file managers show them."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":  # 1000, not 1024: at most "999.9 KB", never "1020.7 KB"
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def open_folder(path: Path) -> bool:
    """Show ``path`` in the OS file manager; False when there is none (SSH, a server without a desktop).

    An argv list, never a shell string: the path may hold spaces or quotes.
    """
    if sys.platform == "win32":
        argv = ["explorer", str(path)]
    elif sys.platform == "darwin":
        argv = ["open", str(path)]
    else:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False  # xdg-open would try a text browser in this very terminal
        argv = ["xdg-open", str(path)]
    exe = shutil.which(argv[0])
    if exe is None:
        return False
    try:
        done = proc.run([exe, *argv[1:]], timeout=15, stdout=proc.DEVNULL, stderr=proc.DEVNULL)
    except proc.TimeoutExpired:
        return True  # the file manager runs in the foreground: it is open
    except OSError:
        return False
    return done.returncode == 0 or sys.platform == "win32"  # explorer answers 1 even when it opened the folder


@dataclass
class Download:
    """The one download this page runs (or ran last): what the status lines show."""

    entry: CatalogEntry
    stop: threading.Event = field(default_factory=threading.Event)
    phase: str = "starting"  # starting | running | pausing | verifying | paused | done | failed
    filename: str = ""
    progress: Progress | None = None
    notes: list[str] = field(default_factory=list)
    result: Any = None  # the engine's Result
    error: BaseException | None = None
    paused_at: str = ""

    @property
    def busy(self) -> bool:
        return self.phase in ("starting", "running", "pausing", "verifying")


class ModelsPage(Page):
    DEFAULT_CSS = """
    ModelsPage TabPane { padding: 0; }
    ModelsPage .models-actions { height: 3; }
    ModelsPage .models-actions Button { margin-right: 1; min-width: 10; }
    ModelsPage #models-filter { width: 26; margin-right: 1; }
    ModelsPage #models-open { width: 15; }
    ModelsPage #models-table { height: 12; }
    ModelsPage #models-catalog-table { height: 13; }
    ModelsPage #models-file-detail { height: 3; }
    ModelsPage #models-entry-detail { height: 4; }
    ModelsPage .models-detail { color: $text-muted; }
    ModelsPage #models-verify-result { height: auto; }
    ModelsPage #models-dl-bar { height: 1; }
    ModelsPage #models-dl-status { height: auto; }
    """

    # --- messages from the workers ----------------------------------------------------------------------------
    class Scanned(Message):
        bubble = False

        def __init__(self, files: list[ModelFile] | None, error: BaseException | None = None) -> None:
            super().__init__()
            self.files, self.error = files, error

    class CatalogLoaded(Message):
        bubble = False

        def __init__(self, catalog: ModelCatalog | None, states: dict[str, tuple[str, float | None]],
                     error: BaseException | None = None) -> None:  # fmt: skip
            super().__init__()
            self.catalog, self.states, self.error = catalog, states, error

    class DownloadEvent(Message):
        """``kind``: plan (filename), progress (a Progress), say (a line), ended (result or error)."""

        bubble = False

        def __init__(self, download: Download, kind: str, value: Any = None) -> None:
            super().__init__()
            self.download, self.kind, self.value = download, kind, value

    class Verified(Message):
        bubble = False

        def __init__(self, path: Path, result: dict[str, Any] | None, a1111: tuple[str, str] | None,
                     lang: str, error: BaseException | None = None) -> None:  # fmt: skip
            super().__init__()
            self.path, self.result, self.a1111, self.lang, self.error = path, result, a1111, lang, error

    class FolderOpened(Message):
        bubble = False

        def __init__(self, path: Path, opened: bool) -> None:
            super().__init__()
            self.path, self.opened = path, opened

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.files: list[ModelFile] | None = None
        self.scan_error: BaseException | None = None
        self.catalog: ModelCatalog | None = None
        self.catalog_states: dict[str, tuple[str, float | None]] = {}
        self.catalog_error: BaseException | None = None
        self.download: Download | None = None
        self.verifying: Path | None = None
        self.verified: ModelsPage.Verified | None = None
        self.folder_note: ModelsPage.FolderOpened | None = None

    # --- layout -----------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with TabbedContent(id="models-tabs"):
            with TabPane("", id="models-library"):
                with Horizontal(classes="models-actions"):
                    yield Select(self._filter_options(), id="models-filter", allow_blank=False, value="all")
                    yield Button("", id="models-refresh")
                    yield Button("", id="models-verify")
                    yield Button("", id="models-open")
                yield DataTable(id="models-table", cursor_type="row")
                yield Static("", id="models-file-detail", classes="models-detail", markup=False)
                yield Static("", id="models-verify-result", markup=False)
            with TabPane("", id="models-catalog"):
                with Horizontal(classes="models-actions"):
                    yield Button("", id="models-download", variant="primary")
                    yield Button("", id="models-pause")
                    yield Button("", id="models-resume")
                yield DataTable(id="models-catalog-table", cursor_type="row")
                yield Static("", id="models-entry-detail", classes="models-detail", markup=False)
                yield ProgressBar(id="models-dl-bar", show_eta=False)
                yield Static("", id="models-dl-status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#models-dl-bar", ProgressBar).display = False
        self.refresh_models()

    def on_unmount(self) -> None:
        if self.download is not None:
            self.download.stop.set()  # the partial file stays; the next start resumes it

    def reread(self, what: str) -> None:
        """The state changed (app.StateChanged): read the library again after what can change it."""
        if what in ("models", "model", "flow", "config"):
            self.refresh_models()

    def refresh_models(self) -> None:
        self.scan_library()
        self.load_catalog()

    # --- words ------------------------------------------------------------------------------------------------
    def _filter_options(self) -> list[tuple[str, str]]:
        return [(self.tr(*FILTER_WORDS[key]), key) for key in ("all", *TYPES)]

    def relabel(self) -> None:
        tabs = self.query_one("#models-tabs", TabbedContent)
        tabs.get_tab("models-library").label = self.tr("模型库", "Library")
        tabs.get_tab("models-catalog").label = self.tr("下载模型", "Download")
        select: Select[str] = self.query_one("#models-filter", Select)
        wanted = select.value
        wanted = wanted if isinstance(wanted, str) else "all"
        with select.prevent(Select.Changed):
            select.set_options(self._filter_options())
            # Setting the same value again does not redraw the shown label: pass through another one.
            select.value = "lora" if wanted != "lora" else "all"
            select.value = wanted
        labels = {"models-refresh": ("刷新", "Refresh"), "models-verify": ("校验", "Verify"),
                  "models-open": ("打开文件夹", "Open folder"), "models-download": ("下载", "Download"),
                  "models-pause": ("暂停", "Pause"), "models-resume": ("继续", "Resume")}  # fmt: skip
        for wid, (zh, en) in labels.items():
            self.query_one(f"#{wid}", Button).label = self.tr(zh, en)
        self._columns("#models-table", LIBRARY_COLUMNS)
        self._columns("#models-catalog-table", CATALOG_COLUMNS)
        self._fill_library()
        self._fill_catalog()
        self._draw_verify()
        self._draw_download()

    def _columns(self, selector: str, columns: tuple[tuple[str, str, str, int], ...]) -> None:
        table: DataTable[Cell] = self.query_one(selector, DataTable)
        table.clear(columns=True)
        for key, zh, en, width in columns:
            table.add_column(self.tr(zh, en), key=key, width=width)

    # --- the library ------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="models-scan")
    def scan_library(self) -> None:
        try:
            from launcher import config
            from launcher.models.library import scan

            cfg = config.load(self.yijian.bundle)
            files = scan(self.yijian.bundle, list(cfg["models.extra_dirs"]), with_hashes=False)
        except Exception as e:  # a broken config.toml or an unreadable folder: shown, never raised
            self.post_message(self.Scanned(None, e))
        else:
            self.post_message(self.Scanned(files))

    def on_models_page_scanned(self, message: Scanned) -> None:
        self.files, self.scan_error = message.files, message.error
        self._fill_library()

    def _shown_files(self) -> list[ModelFile]:
        wanted = self.query_one("#models-filter", Select).value
        return [m for m in self.files or [] if wanted in ("all", m.type)]

    def _fill_library(self) -> None:
        table: DataTable[Cell] = self.query_one("#models-table", DataTable)
        row = table.cursor_row
        table.clear()
        for m in self._shown_files():
            notes = [self.tr(*PROBLEM_WORDS.get(p.code, (p.code, p.code))) for p in m.problems]
            if m.shared:
                notes.append(self.tr("共享", "shared"))
            cells = (m.name, self.tr(*TYPE_WORDS.get(m.type, (m.type, m.type))), self._arch(m.architecture),
                     human_size(m.size), "，".join(notes) if self.lang == "zh" else ", ".join(notes))  # fmt: skip
            table.add_row(*(Cell(c) for c in cells), key=str(m.path))  # Text: a "[v2]" in a name is not markup
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))
        self._draw_file_detail()
        self._buttons()

    def _arch(self, arch: str | None) -> str:
        if not arch:
            return "-"
        if arch.startswith("unknown"):
            return self.tr("未知", "unknown")
        return ARCH_WORDS.get(arch, arch)

    def selected_file(self) -> ModelFile | None:
        table: DataTable[Cell] = self.query_one("#models-table", DataTable)
        if not table.row_count or self.files is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((m for m in self.files if str(m.path) == key), None)

    @on(DataTable.RowHighlighted, "#models-table")
    def _file_highlighted(self) -> None:
        self._draw_file_detail()

    def _draw_file_detail(self) -> None:
        detail = self.query_one("#models-file-detail", Static)
        if self.scan_error is not None:
            detail.update(self._error_text(self.scan_error))
            return
        if self.files is None:
            detail.update(self.tr("正在扫描模型文件夹……", "Scanning the model folders…"))
            return
        m = self.selected_file()
        if m is None:
            folder = self._shown(self.yijian.bundle.models_dir)
            detail.update(self.tr(f"{folder} 里还没有这类模型。到「下载模型」页下载，或把模型文件放进对应的文件夹。",
                                  f"No models of this kind in {folder} yet. Download one on the Download tab, "
                                  "or put model files in their folder."))  # fmt: skip
            return
        lines = [self._shown(m.path)]
        if m.architecture and m.architecture.startswith("unknown"):
            lines.append(self.tr(f"架构：未知（{m.architecture}）", f"Architecture: {m.architecture}"))
        lines += [p.message(self.lang) for p in m.problems]
        if m.shared and not m.problems:
            lines.append(
                self.tr("来自共享的模型文件夹（只读，不会被修改）", "From a shared model folder (read, never written)")
            )
        detail.update("\n".join(lines))

    @on(Select.Changed, "#models-filter")
    def _filter_changed(self) -> None:
        self._fill_library()

    @on(Button.Pressed, "#models-refresh")
    def _refresh(self) -> None:
        self.files = None
        self._draw_file_detail()
        self.refresh_models()

    # --- 校验 ----------------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#models-verify")
    def _verify_pressed(self) -> None:
        m = self.selected_file()
        if m is None or self.verifying is not None:
            return
        self.verifying, self.verified = m.path, None
        self._draw_verify()
        self._buttons()
        self.verify_file(m.path, self.lang)

    @work(thread=True, exclusive=True, group="models-verify")
    def verify_file(self, path: Path, lang: str) -> None:
        try:
            from launcher import config
            from launcher.models.hashes import legacy_model_hash, short_hash
            from launcher.models.library import verify_files

            cfg = config.load(self.yijian.bundle)
            result = verify_files(self.yijian.bundle, [path], extra_dirs=list(cfg["models.extra_dirs"]), lang=lang)[0]
            sha = result["sha256"]
            a1111 = (short_hash(sha), legacy_model_hash(path)) if sha and path.is_file() else None
        except Exception as e:
            self.post_message(self.Verified(path, None, None, lang, e))
        else:
            self.post_message(self.Verified(path, result, a1111, lang))

    def on_models_page_verified(self, message: Verified) -> None:
        self.verifying, self.verified = None, message
        self._draw_verify()
        self._buttons()
        self.scan_library()  # the hash cache learned the file; a problem may have shown up

    def _draw_verify(self) -> None:
        out = self.query_one("#models-verify-result", Static)
        if self.verifying is not None:
            out.update(self.tr(f"正在校验 {self.verifying.name}（计算 sha256，大文件需要一会儿）……",
                               f"Verifying {self.verifying.name} (computing its sha256; large files take a while)…"))  # fmt: skip
            return
        v = self.verified
        if v is not None:
            if v.error is not None or v.result is None:
                out.update(self._error_text(v.error))
                return
            r = v.result
            mark = self.tr("✓ 校验通过", "✓ OK") if r["ok"] else self.tr("✗ 有问题", "✗ PROBLEM")
            lines = [f"{mark}  {v.path.name}"]
            if r["sha256"]:
                lines.append(f"  sha256 {r['sha256']}")
            if v.a1111 is not None:
                lines.append(self.tr(f"  A1111 模型哈希 {v.a1111[0]} · 旧版哈希 {v.a1111[1]}",
                                     f"  A1111 model hash {v.a1111[0]} · old hash {v.a1111[1]}"))  # fmt: skip
            if r["catalog_id"] and r["expected_sha256"] and r["ok"]:
                lines.append(self.tr(f"  与模型目录中 {r['catalog_id']} 的 sha256 一致",
                                     f"  matches the catalog's sha256 for {r['catalog_id']}"))  # fmt: skip
            if v.lang == self.lang:
                lines += [f"  {p}" for p in r["problems"]]
            else:  # the core worded them in the other language: the short words, in this one
                lines += [f"  {self.tr(*PROBLEM_WORDS.get(c.split(':')[0], (c, c)))}" for c in r["problem_codes"]]
            out.update("\n".join(lines))
            return
        n = self.folder_note
        if n is not None:
            if n.opened:
                out.update(self.tr(f"已在文件管理器中打开：{n.path}", f"Opened in the file manager: {n.path}"))
            else:
                out.update(self.tr(f"这里没有可用的文件管理器（例如通过 SSH 连接）。文件夹位置：\n{n.path}",
                                   f"No file manager here (over SSH, for example). The folder is:\n{n.path}"))  # fmt: skip
            return
        out.update("")

    # --- 打开文件夹 ----------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#models-open")
    def _open_pressed(self) -> None:
        m = self.selected_file()
        if m is not None:
            folder = m.path.parent if m.path.is_file() else m.path
        else:
            wanted = self.query_one("#models-filter", Select).value
            kind = wanted if isinstance(wanted, str) and wanted in FOLDER_BY_TYPE else None
            folder = self.yijian.bundle.models_dir / FOLDER_BY_TYPE[kind] if kind else self.yijian.bundle.models_dir
        self.open_in_file_manager(folder)

    @work(thread=True, exclusive=True, group="models-open")
    def open_in_file_manager(self, folder: Path) -> None:
        self.post_message(self.FolderOpened(folder, open_folder(folder)))

    def on_models_page_folder_opened(self, message: FolderOpened) -> None:
        self.folder_note, self.verified = message, None
        self._draw_verify()

    # --- the catalog ------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="models-catalog")
    def load_catalog(self) -> None:
        try:
            from launcher.downloads.partfile import PartFile
            from launcher.models.catalog import catalog_path, load_model_catalog

            catalog = load_model_catalog(catalog_path(self.yijian.bundle))
            states: dict[str, tuple[str, float | None]] = {}
            for e in catalog.entries:
                dest = e.destination(self.yijian.bundle.models_dir)
                part = PartFile(dest)
                if dest.exists():
                    states[e.id] = ("installed", None)
                elif part.part.exists():
                    info = part.describe()
                    size = (info["meta"] or {}).get("size") or e.size
                    states[e.id] = ("partial", info["done"] / size if size else None)
        except Exception as e:
            self.post_message(self.CatalogLoaded(None, {}, e))
        else:
            self.post_message(self.CatalogLoaded(catalog, states))

    def on_models_page_catalog_loaded(self, message: CatalogLoaded) -> None:
        self.catalog, self.catalog_states, self.catalog_error = message.catalog, message.states, message.error
        self._fill_catalog()

    def _fill_catalog(self) -> None:
        table: DataTable[Cell] = self.query_one("#models-catalog-table", DataTable)
        row = table.cursor_row
        table.clear()
        for e in self.catalog.entries if self.catalog else ():
            arch = ARCH_WORDS.get(e.architecture, e.architecture or "-")
            cells = (e.name(self.lang), self.tr(*TYPE_WORDS[e.type]), arch, human_size(e.size), self._entry_state(e))
            table.add_row(*(Cell(c) for c in cells), key=e.id)
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))
        self._draw_entry_detail()
        self._buttons()

    def _entry_state(self, e: CatalogEntry) -> str:
        d = self.download
        if d is not None and d.entry.id == e.id and d.busy:
            p = d.progress
            pct = f" {p.fraction:.0%}" if p is not None and p.fraction is not None else ""
            return self.tr("下载中", "downloading") + pct
        state, fraction = self.catalog_states.get(e.id, ("", None))
        if state == "installed":
            return self.tr("已下载", "installed")
        if state == "partial":
            pct = f" {fraction:.0%}" if fraction is not None else ""
            return self.tr("已暂停", "paused") + pct
        return self.tr("默认", "default") if e.default else ""

    def selected_entry(self) -> CatalogEntry | None:
        table: DataTable[Cell] = self.query_one("#models-catalog-table", DataTable)
        if not table.row_count or self.catalog is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.catalog.get(key) if key is not None else None

    @on(DataTable.RowHighlighted, "#models-catalog-table")
    def _entry_highlighted(self) -> None:
        self._draw_entry_detail()
        self._buttons()

    def _draw_entry_detail(self) -> None:
        detail = self.query_one("#models-entry-detail", Static)
        if self.catalog_error is not None:
            detail.update(self._error_text(self.catalog_error))
            return
        e = self.selected_entry()
        if e is None:
            detail.update("")
            return
        where = f"models/{e.folder}/{e.filename}"
        detail.update(f"{e.description(self.lang)}\n"
                      + self.tr(f"许可：{e.license}\n保存到 {where}", f"License: {e.license}\nSaved as {where}"))  # fmt: skip

    # --- 下载, 暂停, 继续 ------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#models-download")
    def _download_pressed(self) -> None:
        e = self.selected_entry()
        if e is not None:
            self.start_download(e)

    @on(Button.Pressed, "#models-resume")
    def _resume_pressed(self) -> None:
        d = self.download
        e = d.entry if d is not None and d.phase == "paused" else self.selected_entry()
        if e is not None:
            self.start_download(e)

    @on(Button.Pressed, "#models-pause")
    def _pause_pressed(self) -> None:
        self.pause_download()

    def start_download(self, entry: CatalogEntry) -> None:
        if self.download is not None and self.download.busy:
            return
        self.download = Download(entry)
        bar = self.query_one("#models-dl-bar", ProgressBar)
        bar.update(total=100, progress=0)
        bar.display = True
        self._draw_download()
        self._fill_catalog()
        self.run_download(self.download, self.lang)

    def pause_download(self) -> None:
        d = self.download
        if d is not None and d.phase in ("starting", "running"):
            d.phase = "pausing"
            d.stop.set()
            self._draw_download()
            self._buttons()

    @work(thread=True, exclusive=True, group="models-download")
    def run_download(self, d: Download, lang: str) -> None:
        def event(kind: str, value: Any = None) -> None:
            self.post_message(self.DownloadEvent(d, kind, value))

        try:
            from launcher import config
            from launcher.models.fetch import ModelRequest, fetch_model

            cfg = config.load(self.yijian.bundle)
            result = fetch_model(self.yijian.bundle, cfg, ModelRequest(d.entry.id), lang=lang,
                                 say=lambda line: event("say", line), on_progress=lambda p: event("progress", p),
                                 on_plan=lambda plan: event("plan", plan.filename), stop=d.stop)  # fmt: skip
        except Exception as e:  # typed errors are shown with their hint; anything else too, never raised
            event("ended", e)
        else:
            event("ended", result)

    def on_models_page_download_event(self, message: DownloadEvent) -> None:
        d = message.download
        if message.kind == "plan":
            d.filename = message.value
        elif message.kind == "say":
            d.notes = [*d.notes, message.value][-2:]
        elif message.kind == "progress":
            p: Progress = message.value
            d.progress = p
            if d.phase in ("starting", "running"):
                d.phase = "verifying" if p.stage == "verify" else "running"
            bar = self.query_one("#models-dl-bar", ProgressBar)
            if p.total:
                bar.update(total=p.total, progress=p.done)
        elif message.kind == "ended":
            self._ended(d, message.value)
        if d is self.download:
            self._draw_download()
            self._buttons()
            if message.kind != "say":
                self._update_entry_state(d.entry)

    def _ended(self, d: Download, value: Any) -> None:
        from launcher.errors import DownloadInterrupted

        if isinstance(value, DownloadInterrupted) and d.stop.is_set():
            d.phase, d.paused_at = "paused", str(value.params.get("percent", ""))
        elif isinstance(value, BaseException):
            d.phase, d.error = "failed", value
        else:
            d.phase, d.result = "done", value
        if d is self.download:
            self.query_one("#models-dl-bar", ProgressBar).display = d.phase in ("done", "paused")
            if d.phase == "done":
                bar = self.query_one("#models-dl-bar", ProgressBar)
                bar.update(total=max(1, d.result.size), progress=max(1, d.result.size))
        self.yijian.state_changed("models")  # this page, the 模型 card and the mirrors read the new state

    def _update_entry_state(self, entry: CatalogEntry) -> None:
        table: DataTable[Cell] = self.query_one("#models-catalog-table", DataTable)
        try:
            table.update_cell(entry.id, "state", Cell(self._entry_state(entry)))
        except Exception:  # the table is being rebuilt (F2, a refresh): it is filled again anyway
            pass

    def _draw_download(self) -> None:
        out = self.query_one("#models-dl-status", Static)
        d = self.download
        if d is None:
            out.update(self.tr("选中一个模型，点「下载」。下载可以随时暂停，之后点「继续」从断点续传（重启后也可以）。",
                               "Pick a model and press Download. Pause at any time; Resume continues where it stopped "
                               "(also after a restart)."))  # fmt: skip
            return
        name = d.entry.name(self.lang)
        p = d.progress
        lines: list[str] = []
        if d.phase == "starting":
            lines.append(self.tr(f"准备下载 {name}（选择镜像、读取文件信息）……",
                                 f"Preparing {name} (choosing a mirror, reading the file's details)…"))  # fmt: skip
        elif d.phase in ("running", "pausing"):
            lines.append(self.tr(f"正在下载 {name}", f"Downloading {name}"))
            if p is not None:
                speed = f"{human_size(p.speed)}/s"
                total = human_size(p.total) if p.total else "?"
                lines.append(self.tr(f"{human_size(p.done)} / {total} · {speed} · {p.connections} 个连接",
                                     f"{human_size(p.done)} / {total} · {speed} · {p.connections} connections"))  # fmt: skip
            if d.phase == "pausing":
                lines.append(self.tr("正在暂停……", "Pausing…"))
        elif d.phase == "verifying":
            lines.append(self.tr(f"正在校验 {name} 的 sha256……", f"Verifying the sha256 of {name}…"))
        elif d.phase == "paused":
            lines.append(self.tr(f"已暂停：{name}（已完成 {d.paused_at}）\n已下载的部分已保留，点「继续」从断点续传。",
                                 f"Paused: {name} at {d.paused_at}.\n"
                                 "What was downloaded is kept; press Resume to continue where it stopped."))  # fmt: skip
        elif d.phase == "done":
            r = d.result
            if r.fetched == 0 and r.reused == r.size:
                lines.append(self.tr(f"✓ 已存在且校验通过：{r.path}", f"✓ Already present and verified: {r.path}"))
            else:
                lines.append(self.tr(f"✓ 已保存，sha256 已校验：{r.path}", f"✓ Saved, sha256 verified: {r.path}"))
            lines.append(f"  sha256 {r.sha256}")
        elif d.phase == "failed":
            lines.append(self._error_text(d.error))
        if d.busy:
            lines += d.notes
        out.update("\n".join(lines))

    # --- shared -----------------------------------------------------------------------------------------------
    def _shown(self, path: Path) -> str:
        """A path in the bundle as ``models/Lora/x.safetensors`` (the bundle is the folder users know); others whole."""
        try:
            return str(path.relative_to(self.yijian.bundle.root))
        except ValueError:
            return str(path)

    def _error_text(self, error: BaseException | None) -> str:
        if isinstance(error, YijianError):
            return f"✗ [{error.code}] {error.message(self.lang)}\n  {error.hint(self.lang)}"
        detail = f"{type(error).__name__}: {error}" if error is not None else ""
        return self.tr(f"✗ 意外错误：{detail}\n  请到「疑难解答」页生成诊断包并反馈。",
                       f"✗ Unexpected error: {detail}\n  Make a diagnostic bundle on the Troubleshoot page and report it.")  # fmt: skip

    def _buttons(self) -> None:
        has_file = self.selected_file() is not None
        self.query_one("#models-verify", Button).disabled = not has_file or self.verifying is not None
        d = self.download
        busy = d is not None and d.busy
        e = self.selected_entry()
        partial = e is not None and self.catalog_states.get(e.id, ("", None))[0] == "partial"
        paused = d is not None and d.phase == "paused"
        self.query_one("#models-download", Button).disabled = busy or e is None
        self.query_one("#models-pause", Button).disabled = not (d is not None and d.phase in ("starting", "running"))
        self.query_one("#models-resume", Button).disabled = busy or not (paused or partial)
