"""控制台: the generation UI's live log, with colours; stop, restart, open the browser."""

from __future__ import annotations

from rich.text import Text as RichText
from textual import on, work
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

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.run_state: tuple[str, str | None] = ("stopped", None)
        self.exit_note = ""

    def on_mount(self) -> None:
        super().on_mount()
        log = self.query_one("#console-log", RichLog)
        for line in self.yijian.console_lines:
            log.write(RichText.from_ansi(line))
        self.reread()

    @work(thread=True, exclusive=True, group="console-state", exit_on_error=False)
    def reread(self, what: str = "") -> None:
        """The runtime's state from its process and port (a connect to 127.0.0.1), read off the UI thread."""
        state = self.yijian.run_state()
        self.app.call_from_thread(self._show_run_state, state)

    def _show_run_state(self, state: tuple[str, str | None]) -> None:
        self.run_state = state
        if state[0] != "stopped":
            self.exit_note = ""
        self._state()

    def _state(self) -> None:
        kind, url = self.run_state
        if kind == "running":
            word = f"{t('running', self.lang)}: {url or ''}"
        elif kind == "starting":
            word = f"{t('starting', self.lang)}: {url}" if url else t("starting", self.lang)
        elif self.yijian.console_lines:
            word = t("stopped", self.lang)
        else:
            word = t("console_empty", self.lang)
        for button in ("#console-stop", "#console-browser"):
            self.query_one(button, Button).disabled = kind == "stopped"
        self.query_one("#console-state", Static).update(word + (f"  {self.exit_note}" if self.exit_note else ""))

    def add_line(self, line: str) -> None:
        self.query_one("#console-log", RichLog).write(RichText.from_ansi(line))
        if "Running on local URL" in line:
            self.reread()

    def runtime_exited(self, code: int | None, output: str) -> None:
        self.exit_note = self.tr(f"（退出码 {code}）", f"(exit code {code})")
        self.reread()

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
