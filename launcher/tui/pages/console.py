"""控制台: the generation UI's live log, with colours; stop, restart, open the browser."""

from __future__ import annotations

from rich.text import Text as RichText
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, RichLog, Static

from launcher.tui.pages.base import Page
from launcher.tui.strings import t


class ConsolePage(Page):
    DEFAULT_CSS = """
    ConsolePage #console-actions { height: 3; }
    ConsolePage #console-actions Button { margin-right: 2; width: 18; }
    ConsolePage #console-log { height: 1fr; min-height: 10; border: round $primary-background; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="console-actions"):
            yield Button("", id="console-stop", variant="error")
            yield Button("", id="console-restart")
            yield Button("", id="console-browser")
        yield Static("", id="console-state", markup=False)
        yield RichLog(id="console-log", markup=False, wrap=True, max_lines=5000, min_width=20)

    def relabel(self) -> None:
        self.query_one("#console-stop", Button).label = t("stop", self.lang)
        self.query_one("#console-restart", Button).label = t("restart", self.lang)
        self.query_one("#console-browser", Button).label = t("open_browser", self.lang)
        self._state()

    def on_mount(self) -> None:
        super().on_mount()
        log = self.query_one("#console-log", RichLog)
        for line in self.yijian.console_lines:
            log.write(RichText.from_ansi(line))

    def _state(self, extra: str = "") -> None:
        if self.yijian.running:
            word = f"{t('running', self.lang)}: {self.yijian.url or ''}"
        elif self.yijian.console_lines:
            word = t("stopped", self.lang)
        else:
            word = t("console_empty", self.lang)
        self.query_one("#console-state", Static).update(word + (f"  {extra}" if extra else ""))

    def add_line(self, line: str) -> None:
        self.query_one("#console-log", RichLog).write(RichText.from_ansi(line))
        if "Running on local URL" in line:
            self._state()

    def runtime_exited(self, code: int | None, output: str) -> None:
        self._state(self.tr(f"（退出码 {code}）", f"(exit code {code})"))

    @on(Button.Pressed, "#console-stop")
    def _stop(self) -> None:
        self.yijian.stop_in_background()

    @on(Button.Pressed, "#console-restart")
    def _restart(self) -> None:
        self.query_one("#console-log", RichLog).clear()
        self.yijian.stop_in_background(then_start=True)

    @on(Button.Pressed, "#console-browser")
    def _browser(self) -> None:
        self.yijian.open_browser()
