"""Opening the browser: said "opened" only when a browser really was opened (bootstrap/browser.py, oneclick's step)."""

from __future__ import annotations

import webbrowser
from typing import Any

import pytest

from bootstrap import browser
from bootstrap.i18n import Text


@pytest.mark.parametrize(
    ("environ", "platform", "blocked"),
    [
        ({}, "linux", "DISPLAY"),  # an SSH session or a server: no display
        ({"DISPLAY": ":0"}, "linux", None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
        ({"DISPLAY": ":0", "CI": "true"}, "linux", "CI"),
        ({"DISPLAY": ":0", "CI": "false"}, "linux", None),
        ({"GITHUB_ACTIONS": "true"}, "win32", "GITHUB_ACTIONS"),
        ({}, "win32", None),  # Windows and macOS have a desktop without DISPLAY
        ({}, "darwin", None),
        ({}, "freebsd14", "DISPLAY"),
    ],
)
def test_why_no_browser(environ: dict[str, str], platform: str, blocked: str | None) -> None:
    why = browser.why_no_browser(environ, platform)
    if blocked is None:
        assert why is None
    else:
        assert why is not None and blocked in why.zh and blocked in why.en


class Controller(webbrowser.BaseBrowser):
    def __init__(self, name: str, answer: bool) -> None:
        super().__init__(name)
        self.answer, self.opened = answer, []  # type: list[str]

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        return self.answer


def test_open_url_opens_and_says_why_not() -> None:
    url, display = "http://127.0.0.1:7860", {"DISPLAY": ":0"}
    ok = Controller("firefox", True)
    assert browser.open_url(url, display, "linux", get=lambda: ok) is None and ok.opened == [url]

    refused = Controller("firefox", False)  # webbrowser's open answered False
    why = browser.open_url(url, display, "linux", get=lambda: refused)
    assert why is not None and "did not start" in why.en

    def none_registered() -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    why = browser.open_url(url, display, "linux", get=none_registered)
    assert why is not None and "no browser" in why.en

    lynx = Controller("lynx", True)  # would take over the terminal the TUI runs in
    why = browser.open_url(url, display, "linux", get=lambda: lynx)
    assert why is not None and "lynx" in why.en and lynx.opened == []

    headless = Controller("firefox", True)
    why = browser.open_url(url, {}, "linux", get=lambda: headless)
    assert why is not None and "DISPLAY" in why.en and headless.opened == []


def test_the_line_the_user_reads() -> None:
    url = "http://127.0.0.1:7860"
    assert browser.opened_text(url, None) == Text(f"已打开 {url}", f"opened {url}")
    said = browser.opened_text(url, Text("没有图形界面", "no graphical display"))
    assert said.en == f"no browser was opened (no graphical display): open {url} in your browser"
    assert "请在浏览器里打开 " + url in said.zh and "已打开" not in said.zh
    assert browser.result(None) is None and browser.result(True) is None  # list.append; webbrowser.open
    assert browser.result(False) is not None


def test_one_click_browser_step_without_a_display(tmp_path: Any) -> None:
    """A headless `start` (no opener given: the system's browser) never says it opened one."""
    from bootstrap.layout import Bundle
    from launcher.oneclick import OneClick, OneClickOptions, StepUpdate

    updates: list[StepUpdate] = []
    flow = OneClick(Bundle(tmp_path), "en", updates.append, OneClickOptions(open_browser=True),
                    environ={"PATH": "/usr/bin"})  # fmt: skip
    flow.url = "http://127.0.0.1:7861"
    flow._browser()
    (u,) = updates
    assert u.step == "browser" and u.state == "skipped" and u.message is not None
    assert "open http://127.0.0.1:7861 in your browser" in u.message.en and "opened http" not in u.message.en
    assert "DISPLAY" in u.message.en

    updates.clear()
    opened: list[str] = []
    flow = OneClick(Bundle(tmp_path), "en", updates.append, OneClickOptions(open_browser=True), opener=opened.append)
    flow.url = "http://127.0.0.1:7861"
    flow._browser()
    assert opened == [flow.url] and updates[0].state == "done" and updates[0].message.en == f"opened {flow.url}"  # type: ignore[union-attr]

    updates.clear()
    flow = OneClick(
        Bundle(tmp_path), "en", updates.append, OneClickOptions(open_browser=True), opener=lambda url: False
    )
    flow.url = "http://127.0.0.1:7861"
    flow._browser()
    assert updates[0].state == "skipped" and "open http://127.0.0.1:7861 in your browser" in updates[0].message.en  # type: ignore[union-attr]
