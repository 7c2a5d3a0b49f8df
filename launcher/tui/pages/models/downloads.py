"""模型管理, second tab: the catalog and "paste a link", the download with its progress, 暂停 and 继续.

Both start the same call, :func:`launcher.models.fetch.fetch_model`, in a thread worker: a catalog id, or
whatever link was pasted (Civitai, ModelScope, Hugging Face, a plain URL: :mod:`launcher.models.links`).
Pausing sets the engine's ``stop`` event; 继续 is the same call again, which resumes from ``NAME.part``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text as Cell
from textual import on, work
from textual.message import Message
from textual.widgets import Button, DataTable, Input, ProgressBar, Select, Static

from launcher.downloads.progress import Progress
from launcher.models.catalog import CatalogEntry, ModelCatalog
from launcher.tui.pages.models.base import ModelsBase
from launcher.tui.pages.models.words import ARCH_WORDS, LINK_TYPES, TYPE_WORDS, human_size


@dataclass
class Download:
    """The one download this page runs (or ran last): what the status lines show.

    A catalog entry, or a pasted link (``entry`` None, ``target`` the link, ``kind`` the type the user chose).
    """

    target: str
    entry: CatalogEntry | None = None
    kind: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    phase: str = "starting"  # starting | running | pausing | verifying | paused | done | failed
    filename: str = ""
    progress: Progress | None = None
    notes: list[str] = field(default_factory=list)
    result: Any = None  # the engine's Result
    error: BaseException | None = None
    paused_at: str = ""

    def title(self, lang: str) -> str:
        if self.entry is not None:
            return self.entry.name(lang)
        return self.filename or self.target

    @property
    def busy(self) -> bool:
        return self.phase in ("starting", "running", "pausing", "verifying")


class DownloadsTab(ModelsBase):
    catalog: ModelCatalog | None = None
    catalog_states: dict[str, tuple[str, float | None]]
    catalog_error: BaseException | None = None
    download: Download | None = None

    class CatalogLoaded(Message, namespace="models_page"):
        bubble = False

        def __init__(self, catalog: ModelCatalog | None, states: dict[str, tuple[str, float | None]],
                     error: BaseException | None = None) -> None:  # fmt: skip
            super().__init__()
            self.catalog, self.states, self.error = catalog, states, error

    class DownloadEvent(Message, namespace="models_page"):
        """``kind``: plan (filename), progress (a Progress), say (a line), ended (result or error)."""

        bubble = False

        def __init__(self, download: Download, kind: str, value: Any = None) -> None:
            super().__init__()
            self.download, self.kind, self.value = download, kind, value

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
        if d is not None and d.entry is not None and d.entry.id == e.id and d.busy:
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
        if d is not None and d.phase == "paused":
            self.start(Download(d.target, d.entry, d.kind))
            return
        e = self.selected_entry()
        if e is not None:
            self.start_download(e)

    @on(Button.Pressed, "#models-pause")
    def _pause_pressed(self) -> None:
        self.pause_download()

    def start_download(self, entry: CatalogEntry) -> None:
        self.start(Download(entry.id, entry))

    def start(self, download: Download) -> None:
        if self.download is not None and self.download.busy:
            return
        self.download = download
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
            result = fetch_model(self.yijian.bundle, cfg, ModelRequest(d.target, kind=d.kind), lang=lang,
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
            if message.kind != "say" and d.entry is not None:
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
        name = d.title(self.lang)
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

    # --- 从链接下载 ---------------------------------------------------------------------------------------------
    def _link_type_options(self) -> list[tuple[str, str]]:
        kinds = [(self.tr(*TYPE_WORDS[k]), k) for k in LINK_TYPES]
        return [(self.tr("类型：自动", "Type: auto"), "auto"), *kinds]

    @on(Input.Submitted, "#models-link")
    @on(Button.Pressed, "#models-link-go")
    def _link_pressed(self) -> None:
        field_ = self.query_one("#models-link", Input)
        text = field_.value.strip()
        if not text:
            field_.focus()
            return
        chosen = self.query_one("#models-link-type", Select).value
        kind = chosen if isinstance(chosen, str) and chosen != "auto" else None
        self.start(Download(text, None, kind))
