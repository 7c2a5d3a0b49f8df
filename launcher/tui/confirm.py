"""A yes/no question in a modal window, asked before anything that replaces or rebuilds.

``ConfirmScreen`` answers ``True`` (the yes button) or ``False`` (the no button, Escape).  From the UI thread push
it with a callback; from a thread worker (``doctor.fixes.run``'s ``confirm`` callback runs there) use
:func:`ask_from_thread`, which shows it on the app's loop and waits for the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen #confirm-box { width: 64; height: auto; max-height: 90%; padding: 1 2;
                                 border: thick $warning; background: $surface; }
    ConfirmScreen #confirm-title { text-style: bold; }
    ConfirmScreen #confirm-body { margin: 1 0; }
    ConfirmScreen #confirm-buttons { height: 3; align-horizontal: right; }
    ConfirmScreen #confirm-buttons Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "answer(False)", show=False)]
    AUTO_FOCUS = "#confirm-no"  # the safe answer is the default

    def __init__(self, title: str, body: str, yes: str, no: str) -> None:
        super().__init__()
        self.title_text, self.body, self.yes, self.no = title, body, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.title_text, id="confirm-title", markup=False)
            yield Static(self.body, id="confirm-body", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.no, id="confirm-no")
                yield Button(self.yes, id="confirm-yes", variant="warning")

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


def ask_from_thread(app: App[object], make: Callable[[], ConfirmScreen],
                    cancelled: Callable[[], bool] = lambda: False) -> bool:  # fmt: skip
    """Show the screen ``make`` builds (on the app's loop) from a worker thread; wait for the answer.

    The answer is no when the worker is cancelled (the app is closing) before the user answers.
    """
    answer: list[bool] = []
    done = threading.Event()

    def answered(result: bool | None) -> None:
        answer.append(bool(result))
        done.set()

    def show() -> None:
        app.push_screen(make(), answered)

    app.call_from_thread(show)
    while not done.wait(0.1):
        if cancelled():
            return False
    return answer[0]
