"""What every page has: the app's language, and a hook to relabel itself when it changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.containers import VerticalScroll

from bootstrap.i18n import Text

if TYPE_CHECKING:
    from launcher.tui.app import YijianApp


class Page(VerticalScroll):
    """A sidebar page.  Subclasses build widgets in ``compose`` and set their words in ``relabel``."""

    DEFAULT_CSS = """
    Page { padding: 0 1; }
    Page .heading { text-style: bold; margin: 1 0 0 0; }
    Page .help { color: $text-muted; }
    """

    @property
    def yijian(self) -> YijianApp:
        return cast("YijianApp", self.app)

    @property
    def lang(self) -> str:
        return self.yijian.lang

    def tr(self, zh: str, en: str) -> str:
        return zh if self.lang == "zh" else en

    def text(self, t: Text) -> str:
        return t.text(self.lang)

    def relabel(self) -> None:
        """Set every label in the current language (called on mount and on F2)."""

    def on_mount(self) -> None:
        self.relabel()
