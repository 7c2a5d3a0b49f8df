"""The no-model choice dialog: start without a model, the demo model, or a file I have (pilot tests)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from bootstrap.layout import Bundle
from launcher.errors import DownloadFailed
from launcher.oneclick import NO_MODEL_CHOICES, OneClickOptions
from launcher.tui.app import YijianApp
from launcher.tui.model_choice import ModelChoiceScreen, with_model_choice
from tests.tui.conftest import SNAPSHOT_SIZE, screen_text


class Host(App[None]):
    def __init__(self, screen: ModelChoiceScreen) -> None:
        super().__init__()
        self.choice_screen = screen
        self.answers: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.choice_screen, self.answers.append)


@pytest.mark.parametrize(("button", "answer"), [("#model-choice-none", "none"), ("#model-choice-demo", "demo")])
async def test_each_button_answers_its_choice(tmp_path: Path, button: str, answer: str) -> None:
    host = Host(ModelChoiceScreen("en", tmp_path, "The default model could not be downloaded: x"))
    async with host.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        text = screen_text(host)
        assert "Start without a model" in text and "Demo model" in text and "Use a file I have" in text
        assert await pilot.click(button)
        await pilot.pause()
    assert host.answers == [answer] and answer in NO_MODEL_CHOICES


async def test_escape_starts_without_a_model_and_chinese_labels(tmp_path: Path) -> None:
    host = Host(ModelChoiceScreen("zh", tmp_path, "离线模式下模型库是空的"))
    async with host.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        text = screen_text(host)
        assert "先启动" in text and "演示模型" in text and "用我已有的文件" in text
        await pilot.press("escape")
        await pilot.pause()
    assert host.answers == ["none"]


@pytest.mark.parametrize("opens", [True, False])
async def test_a_file_i_have_shows_the_folder_then_uses_it(tmp_path: Path, opens: bool) -> None:
    opened: list[Path] = []

    def opener(path: Path) -> bool:
        opened.append(path)
        return opens

    folder = tmp_path / "models" / "Stable-diffusion"
    host = Host(ModelChoiceScreen("en", folder, "Offline, and the model library is empty", opener))
    async with host.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert await pilot.click("#model-choice-file")
        await pilot.pause()
        text = screen_text(host)
        body = str(host.screen.query_one("#model-choice-body", Static).render())
        assert str(folder) in body and "Done, use it" in text  # the path may wrap on screen
        assert ("Opened in the file manager" in body) is opens
        assert opened == [folder] and host.answers == []  # still asking: the user copies the file first
        assert await pilot.click("#model-choice-file-done")
        await pilot.pause()
    assert host.answers == ["file"]


async def test_the_app_asks_from_the_one_click_thread(tui_bundle: Bundle, fixed_status: None) -> None:
    app = YijianApp(tui_bundle, "en")
    got: list[str] = []
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        options = with_model_choice(app, OneClickOptions())
        assert options.no_model is not None and app.options.no_model is None  # the app's own options untouched
        ask = options.no_model
        err = DownloadFailed(url="sd15", reason="hf-mirror: DNS lookup failed")
        worker = threading.Thread(target=lambda: got.append(ask(err)))
        worker.start()
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(app.screen, ModelChoiceScreen):
                break
        assert isinstance(app.screen, ModelChoiceScreen)
        await pilot.pause()
        assert "DNS lookup failed" in str(app.screen.query_one("#model-choice-body", Static).render())
        assert await pilot.click("#model-choice-demo")
        for _ in range(100):
            await pilot.pause(0.02)
            if got:
                break
        await asyncio.to_thread(worker.join, 5)
    assert got == ["demo"]


def test_options_that_already_choose_are_kept() -> None:
    def mine(e: Any) -> str:
        return "none"

    options = OneClickOptions(no_model=mine)
    assert with_model_choice(App(), options) is options
