"""模型管理: the library, the catalog and "paste a link" with downloads (progress, 暂停 and 继续), 校验, 打开文件夹.

A thin layer over the core: :func:`launcher.models.library.scan` and
:func:`~launcher.models.library.verify_files` for what is on disk,
:func:`launcher.models.catalog.load_model_catalog` for what can be fetched,
:func:`launcher.models.fetch.fetch_model` for the download itself (a catalog
id or any link).  Every call runs in a thread worker that reports back with
messages, so the screen never waits on the disk or the network.  The tabs
live in :mod:`.library` and :mod:`.downloads`; this module lays them out.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text as Cell
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, ProgressBar, Select, Static, TabbedContent, TabPane

from launcher.models.catalog import ModelCatalog
from launcher.models.library import ModelFile
from launcher.tui.pages.models.downloads import Download, DownloadsTab
from launcher.tui.pages.models.library import LibraryTab
from launcher.tui.pages.models.words import CATALOG_COLUMNS, FILTER_WORDS, LIBRARY_COLUMNS, TYPES


class ModelsPage(LibraryTab, DownloadsTab):
    DEFAULT_CSS = """
    ModelsPage TabPane { padding: 0; }
    ModelsPage .models-actions { height: 3; }
    ModelsPage .models-actions Button { margin-right: 1; min-width: 10; }
    ModelsPage #models-filter { width: 26; margin-right: 1; }
    ModelsPage #models-open { width: 15; }
    ModelsPage #models-table { height: 12; }
    ModelsPage #models-catalog-table { height: 12; }
    ModelsPage #models-link { width: 1fr; margin-right: 1; }
    ModelsPage #models-link-type { width: 20; margin-right: 1; }
    ModelsPage #models-link-go { width: 16; }
    ModelsPage #models-file-detail { height: 3; }
    ModelsPage #models-entry-detail { height: 4; }
    ModelsPage .models-detail { color: $text-muted; }
    ModelsPage #models-verify-result { height: auto; }
    ModelsPage #models-dl-bar { height: 1; }
    ModelsPage #models-dl-status { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.files: list[ModelFile] | None = None
        self.scan_error: BaseException | None = None
        self.catalog: ModelCatalog | None = None
        self.catalog_states: dict[str, tuple[str, float | None]] = {}
        self.catalog_error: BaseException | None = None
        self.download: Download | None = None
        self.verifying: Path | None = None
        self.verified: LibraryTab.Verified | None = None
        self.folder_note: LibraryTab.FolderOpened | None = None

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
                    yield Input(id="models-link")
                    yield Select(self._link_type_options(), id="models-link-type", allow_blank=False, value="auto")
                    yield Button("", id="models-link-go")
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
                  "models-pause": ("暂停", "Pause"), "models-resume": ("继续", "Resume"),
                  "models-link-go": ("从链接下载", "Download link")}  # fmt: skip
        for wid, (zh, en) in labels.items():
            self.query_one(f"#{wid}", Button).label = self.tr(zh, en)
        self.query_one("#models-link", Input).placeholder = self.tr(
            "粘贴 Civitai/魔搭/HF 链接或文件地址", "Civitai/ModelScope/HF/file link")
        kinds: Select[str] = self.query_one("#models-link-type", Select)
        chosen = kinds.value
        with kinds.prevent(Select.Changed):
            kinds.set_options(self._link_type_options())
            chosen = chosen if isinstance(chosen, str) else "auto"
            kinds.value = "lora" if chosen != "lora" else "auto"  # the same value again would not redraw the label
            kinds.value = chosen
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
        self.query_one("#models-link-go", Button).disabled = busy
