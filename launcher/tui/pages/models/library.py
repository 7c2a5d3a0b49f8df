"""模型管理, first tab: the library (filter, refresh), 校验 and 打开文件夹."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text as Cell
from textual import on, work
from textual.message import Message
from textual.widgets import Button, DataTable, Select, Static

from launcher.models.catalog import FOLDER_BY_TYPE
from launcher.models.library import ModelFile
from launcher.tui.pages.models.base import ModelsBase
from launcher.tui.pages.models.words import ARCH_WORDS, PROBLEM_WORDS, TYPE_WORDS, human_size, open_folder


class LibraryTab(ModelsBase):
    files: list[ModelFile] | None = None
    scan_error: BaseException | None = None
    verifying: Path | None = None
    verified: LibraryTab.Verified | None = None
    folder_note: LibraryTab.FolderOpened | None = None

    class Scanned(Message, namespace="models_page"):
        bubble = False

        def __init__(self, files: list[ModelFile] | None, error: BaseException | None = None) -> None:
            super().__init__()
            self.files, self.error = files, error

    class Verified(Message, namespace="models_page"):
        bubble = False

        def __init__(self, path: Path, result: dict[str, Any] | None, a1111: tuple[str, str] | None,
                     lang: str, error: BaseException | None = None) -> None:  # fmt: skip
            super().__init__()
            self.path, self.result, self.a1111, self.lang, self.error = path, result, a1111, lang, error

    class FolderOpened(Message, namespace="models_page"):
        bubble = False

        def __init__(self, path: Path, opened: bool) -> None:
            super().__init__()
            self.path, self.opened = path, opened

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
