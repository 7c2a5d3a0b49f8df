"""What the settings pages (高级选项, 网络/镜像) share: footer keys in the current language, Select relabelling,
error texts, and saving every changed field at once."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Select

from bootstrap.errors import YijianError
from bootstrap.i18n import Text
from launcher.tui.pages.base import Page


def relabel_select(select: Select[str], options: list[tuple[str, str]]) -> None:
    """New option labels, the same value, and the shown label redrawn (it would stay in the old language)."""
    value = select.value
    select.set_options(options)
    select.value = value
    select.mutate_reactive(Select.value)  # type: ignore[misc]  # Textual's own idiom for a var


class KeyedPage(Page):
    """A page whose keys show in the footer in the app's language: each is bound twice and
    ``check_action`` enables the one of the current language.  ``KEYS``: (key, action, zh, en);
    the English twin of ``action`` is ``<action>_en``.
    """

    KEYS: ClassVar[tuple[tuple[str, str, str, str], ...]] = ()

    @staticmethod
    def bindings(keys: tuple[tuple[str, str, str, str], ...]) -> list[BindingType]:
        out: list[BindingType] = []
        for key, action, zh, en in keys:
            out += [Binding(key, action, zh), Binding(key, f"{action}_en", en)]
        return out

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        names = {a for _, a, _, _ in self.KEYS}
        if action.endswith("_en") and action[:-3] in names:
            return self.lang == "en"
        if action in names:
            return self.lang == "zh"
        return True


def failure(e: BaseException) -> Text:
    """An error for the screen: Yijian's own in its words; anything else named, and logged with its traceback."""
    if isinstance(e, YijianError):
        return Text(e.message("zh"), e.message("en"))
    logging.getLogger("yijian").error("TUI worker failed", exc_info=e)
    return Text(
        f"出错了：{type(e).__name__}: {e}（详情见 logs/）", f"Something went wrong: {type(e).__name__}: {e} (see logs/)"
    )


SAVING = Text("正在保存……", "Saving…")


class FormPage(KeyedPage):
    """A page of fields saved together: check them all, write the changes in one worker, say what happened."""

    saving: bool = False
    note: Text | None = None
    save_error: Text | None = None  # why the last save wrote nothing
    load_error: Text | None = None  # why config.toml could not be read

    @abstractmethod
    def values(self) -> tuple[dict[str, Any], dict[str, Text]]:
        """The fields' values, and the error of each field that does not hold."""

    @abstractmethod
    def changes(self, values: dict[str, Any]) -> list[tuple[str, Any | None]]:
        """(setting, new value or None to remove) for what differs from config.toml."""

    @abstractmethod
    def save(self, changes: list[tuple[str, Any | None]], values: dict[str, Any]) -> Any:
        """Write ``changes``; subclasses make it a thread worker."""

    @abstractmethod
    def _check(self) -> None: ...

    @abstractmethod
    def _show_state(self) -> None: ...

    def status_line(self, errors: int, pending: int, *, saving: Text = SAVING, failed: Text | None = None) -> str:
        """The one line under the form: saving, fields to fix, a failed check, a failed save or load, unsaved
        changes, the last note, or all saved, in that order."""
        if self.saving:
            return self.text(saving)
        if errors:
            return self.tr(
                f"有 {errors} 处需要改正，改正前不会保存。", f"{errors} problem(s) to fix; nothing is saved until then."
            )
        if failed is not None:
            return self.text(failed)
        if self.save_error is not None and pending:
            return "✗ " + self.text(self.save_error)
        if self.load_error is not None:
            return "✗ " + self.text(self.load_error)
        if pending:
            return self.tr(f"有 {pending} 项修改未保存。", f"{pending} unsaved change(s).")
        if self.note is not None:
            return self.text(self.note)
        return self.tr("没有未保存的修改。", "No unsaved changes.")

    def action_save(self) -> None:
        if self.saving:
            return
        values, errors = self.values()
        self._check()
        if errors:
            self.note = None
            self._show_state()
            return
        changes = self.changes(values)
        if not changes:
            self.note = Text("没有需要保存的修改。", "Nothing to save.")
            self._show_state()
            return
        self.saving = True
        self._show_state()
        self.save(changes, values)
