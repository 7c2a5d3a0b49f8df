"""The way on when one-click start has no model and cannot get one: a choice, never a dead end.

:class:`ModelChoiceScreen` offers three answers (``launcher.oneclick.NO_MODEL_CHOICES``):

* ``none`` - start the UI without a model (it says how to add one);
* ``demo`` - start with the labelled demo model (random weights: it only draws noise);
* ``file`` - use a file I have: the models folder is shown (and opened in the file manager where there is
  one); the user copies the file in and presses "done", and one-click looks again.

Escape answers ``none``.  :func:`model_chooser` makes the ``OneClickOptions.no_model`` callback the TUI
passes: one-click runs in a thread worker, so the screen is shown on the app's loop and the worker waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from bootstrap.errors import YijianError
from bootstrap.i18n import pick
from launcher.oneclick import OneClickOptions


class ModelChoiceScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    ModelChoiceScreen { align: center middle; }
    ModelChoiceScreen #model-choice-box { width: 76; height: auto; max-height: 90%; padding: 1 2;
                                          border: thick $warning; background: $surface; }
    ModelChoiceScreen #model-choice-title { text-style: bold; }
    ModelChoiceScreen #model-choice-body { margin: 1 0; }
    ModelChoiceScreen #model-choice-buttons, ModelChoiceScreen #model-choice-file-buttons { height: 3; }
    ModelChoiceScreen Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "choose('none')", show=False)]
    AUTO_FOCUS = "#model-choice-none"

    def __init__(self, lang: str, folder: Path, reason: str,
                 opener: Callable[[Path], bool] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.lang, self.folder, self.reason = lang, folder, reason
        self.opener = opener

    def t(self, zh: str, en: str) -> str:
        return pick(self.lang, zh, en)

    def compose(self) -> ComposeResult:
        with Vertical(id="model-choice-box"):
            yield Static(self.t("没有可用的模型", "No model to draw with"), id="model-choice-title", markup=False)
            yield Static(self.t(f"{self.reason}。\n可以先启动界面，稍后再添加模型；也可以用演示模型试一试，或者用你已有的模型文件。",
                                f"{self.reason}.\nYou can start the UI now and add a model later, try the demo "
                                "model, or use a model file you already have."),
                         id="model-choice-body", markup=False)  # fmt: skip
            with Horizontal(id="model-choice-buttons"):
                yield Button(self.t("先启动（无模型）", "Start without a model"), id="model-choice-none",
                             variant="primary")  # fmt: skip
                yield Button(self.t("演示模型（只出噪点）", "Demo model (noise only)"), id="model-choice-demo")
                yield Button(self.t("用我已有的文件", "Use a file I have"), id="model-choice-file")
            with Horizontal(id="model-choice-file-buttons"):
                yield Button(self.t("放好了，用它", "Done, use it"), id="model-choice-file-done", variant="success")
                yield Button(self.t("返回", "Back"), id="model-choice-back")

    def on_mount(self) -> None:
        self.query_one("#model-choice-file-buttons").display = False

    @on(Button.Pressed, "#model-choice-none")
    def _none(self) -> None:
        self.dismiss("none")

    @on(Button.Pressed, "#model-choice-demo")
    def _demo(self) -> None:
        self.dismiss("demo")

    @on(Button.Pressed, "#model-choice-file")
    def _file(self) -> None:
        opened = self.opener(self.folder) if self.opener is not None else False
        where = (self.t("已在文件管理器中打开：", "Opened in the file manager: ") if opened
                 else self.t("请打开这个文件夹：", "Open this folder: "))  # fmt: skip
        self.query_one("#model-choice-body", Static).update(
            self.t(f"{where}{self.folder}\n把 .safetensors 模型文件复制进去，然后按“放好了，用它”。",
                   f"{where}{self.folder}\nCopy the .safetensors model file into it, then press \"Done, use it\".")
        )  # fmt: skip
        self.query_one("#model-choice-buttons").display = False
        self.query_one("#model-choice-file-buttons").display = True
        self.query_one("#model-choice-file-done", Button).focus()

    @on(Button.Pressed, "#model-choice-file-done")
    def _file_done(self) -> None:
        self.dismiss("file")

    @on(Button.Pressed, "#model-choice-back")
    def _back(self) -> None:
        self.query_one("#model-choice-body", Static).update(self.t(f"{self.reason}。", f"{self.reason}."))
        self.query_one("#model-choice-file-buttons").display = False
        self.query_one("#model-choice-buttons").display = True
        self.query_one("#model-choice-none", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


def reason_text(lang: str, failure: YijianError | None) -> str:
    if failure is None:
        return pick(lang, "离线模式下模型库是空的", "Offline, and the model library is empty")
    return pick(lang, f"默认模型下载失败：{failure.message('zh')}", f"The default model could not be downloaded: "
                f"{failure.message('en')}")  # fmt: skip


def model_chooser(app: App[Any], lang: Callable[[], str], folder: Path, *,
                  opener: Callable[[Path], bool] | None = None,
                  cancelled: Callable[[], bool] = lambda: False) -> Callable[[YijianError | None], str]:  # fmt: skip
    """The ``no_model`` callback for one-click in a thread worker: shows the screen, waits, answers.

    ``none`` when the worker is cancelled (the app is closing) before the user answers.
    """

    def ask(failure: YijianError | None) -> str:
        answer: list[str] = []
        done = threading.Event()

        def answered(result: str | None) -> None:
            answer.append(result or "none")
            done.set()

        def show() -> None:
            app.push_screen(ModelChoiceScreen(lang(), folder, reason_text(lang(), failure), opener), answered)

        app.call_from_thread(show)
        while not done.wait(0.1):
            if cancelled():
                return "none"
        return answer[0]

    return ask


def with_model_choice(app: App[Any], options: OneClickOptions) -> OneClickOptions:
    """``options`` with the TUI's choice as ``no_model`` (unless one is set): what the app passes to one-click."""
    import dataclasses

    from launcher.tui.pages.models import open_folder

    if options.no_model is not None:
        return options
    bundle = getattr(app, "bundle")  # noqa: B009 - the YijianApp's; typed App here to keep this module apart
    chooser = model_chooser(app, lambda: str(getattr(app, "lang", "zh")), bundle.models_dir / "Stable-diffusion",
                            opener=open_folder, cancelled=lambda: not app.is_running)  # fmt: skip
    return dataclasses.replace(options, no_model=chooser)
