"""The Textual app: a sidebar of pages, the language switch, and the one running generation UI.

The app owns what pages share: the one-click flow and the runtime it
started (the home page starts it, the console page shows, stops and
restarts it).  Work runs in thread workers; they talk to the UI only by
posting messages, so the screen never freezes.
"""

from __future__ import annotations

import collections
import threading
import webbrowser
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import ContentSwitcher, Footer, Label, ListItem, ListView

from bootstrap.errors import YijianError
from bootstrap.layout import Bundle
from launcher.oneclick import OneClick, OneClickOptions, StepUpdate
from launcher.runtime_process import RuntimeProcess
from launcher.tui.model_choice import with_model_choice
from launcher.tui.pages.home import HomePage
from launcher.tui.strings import PAGES, t

CONSOLE_LINES = 5000
# The home page is built at start; the others (and what they import) on their first visit, so the
# first paint comes quickly.
LAZY_PAGES = {
    "advanced": ("launcher.tui.pages.advanced", "AdvancedPage"),
    "trouble": ("launcher.tui.pages.trouble", "TroublePage"),
    "models": ("launcher.tui.pages.models", "ModelsPage"),
    "network": ("launcher.tui.pages.network", "NetworkPage"),
    "environment": ("launcher.tui.pages.environment", "EnvironmentPage"),
    "console": ("launcher.tui.pages.console", "ConsolePage"),
}


class StepMsg(Message):
    def __init__(self, update: StepUpdate) -> None:
        super().__init__()
        self.update = update


class RuntimeLine(Message):
    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class RuntimeExited(Message):
    def __init__(self, code: int | None, output: str) -> None:
        super().__init__()
        self.code, self.output = code, output


class FlowFailed(Message):
    def __init__(self, error: YijianError) -> None:
        super().__init__()
        self.error = error


class YijianApp(App[int]):
    TITLE = "Yijian"
    CSS = """
    #nav { width: 18; border-right: solid $primary-background; }
    #nav > ListItem { padding: 0 1; }
    #pages { width: 1fr; }
    """
    # Each key is bound twice, once per language; check_action shows the one for the current language.
    BINDINGS = [
        Binding("ctrl+q", "quit", "退出", priority=True),
        Binding("ctrl+q", "quit_en", "Quit", priority=True),
        Binding("f2", "toggle_language", "English", priority=True),
        Binding("f2", "toggle_language_en", "中文", priority=True),
        Binding("f5", "start", "一键启动", priority=True),
        Binding("f5", "start_en", "Start", priority=True),
    ]
    EN_ACTIONS = {"quit_en": "quit", "toggle_language_en": "toggle_language", "start_en": "start"}

    lang: reactive[str] = reactive("zh", init=False)

    def __init__(self, bundle: Bundle, lang: str = "zh", *, options: OneClickOptions | None = None,
                 opener: Any = webbrowser.open) -> None:  # fmt: skip
        super().__init__()
        self.bundle = bundle
        self.set_reactive(YijianApp.lang, lang)
        self.options = options or OneClickOptions()
        self.opener = opener
        self.flow: OneClick | None = None
        self.runtime: RuntimeProcess | None = None
        self.url: str | None = None
        self.console_lines: collections.deque[str] = collections.deque(maxlen=CONSOLE_LINES)
        self.last_error: YijianError | None = None
        self._flow_lock = threading.Lock()

    # --- layout ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ListView(*[ListItem(Label(title.text(self.lang), id=f"nav-label-{pid}"), id=f"nav-{pid}")
                             for pid, title in PAGES], id="nav")  # fmt: skip
            with ContentSwitcher(initial="home", id="pages"):
                yield HomePage(id="home")
        yield Footer()

    def on_mount(self) -> None:
        self.title = t("title", self.lang)
        self.sub_title = t("subtitle", self.lang)
        nav = self.query_one("#nav", ListView)
        nav.index = 0
        nav.focus()  # arrow keys move between pages; Tab enters the page; F5 starts from anywhere

    @on(ListView.Highlighted, "#nav")
    def _switch(self, event: ListView.Highlighted) -> None:
        # A highlight that arrives after the index moved on (show() called meanwhile) is stale: ignore it.
        if event.item is not None and event.item.id and event.item is event.list_view.highlighted_child:
            self.show(event.item.id.removeprefix("nav-"))

    @on(ListView.Selected, "#nav")
    def _enter(self, event: ListView.Selected) -> None:
        """Enter (or a click) on a page: show it and move the keyboard into it; Up/Down stay in the sidebar."""
        if event.item is None or not event.item.id:
            return
        page = event.item.id.removeprefix("nav-")
        self.show(page)
        self.call_after_refresh(self._focus_page, page)

    def _focus_page(self, page: str) -> None:
        widget = self.page(page)
        if widget is None:
            return
        for child in widget.query("*"):
            if child.focusable and child.display and not getattr(child, "disabled", False):
                child.focus()
                return

    def show(self, page: str) -> None:
        switcher = self.query_one("#pages", ContentSwitcher)
        if page in LAZY_PAGES and not switcher.query(f"#{page}"):
            import importlib

            module, name = LAZY_PAGES[page]
            switcher.mount(getattr(importlib.import_module(module), name)(id=page))
        switcher.current = page
        nav = self.query_one("#nav", ListView)
        index = [pid for pid, _ in PAGES].index(page)
        if nav.index != index:
            nav.index = index

    def page(self, page: str) -> Any | None:
        """The page widget if it has been built (pages are built on their first visit)."""
        found = self.query(f"#pages > #{page}")
        return found.first() if found else None

    # --- language -------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.EN_ACTIONS:
            return self.lang == "en"
        if action in self.EN_ACTIONS.values():
            return self.lang == "zh"
        return True

    async def action_quit_en(self) -> None:
        await self.action_quit()

    def action_toggle_language_en(self) -> None:
        self.action_toggle_language()

    def action_start_en(self) -> None:
        self.action_start()

    def action_toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"

    def watch_lang(self, lang: str) -> None:
        self.refresh_bindings()
        self.title = t("title", lang)
        self.sub_title = t("subtitle", lang)
        for pid, title in PAGES:
            self.query_one(f"#nav-label-{pid}", Label).update(title.text(lang))
        for page in self.query("#pages > *"):
            relabel = getattr(page, "relabel", None)
            if relabel is not None:
                relabel()

    # --- the generation UI ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runtime is not None and self.runtime.proc.poll() is None

    def action_start(self) -> None:
        if self.running or self.flow is not None:
            return
        self.console_lines.clear()
        self.query_one(HomePage).reset_steps()
        self.run_flow()

    @work(thread=True, exclusive=True, group="flow", exit_on_error=False)
    def run_flow(self) -> None:
        def on_update(u: StepUpdate) -> None:
            self.post_message(StepMsg(u))

        def on_line(line: str) -> None:
            self.post_message(RuntimeLine(line))

        flow = OneClick(self.bundle, self.lang, on_update, with_model_choice(self, self.options), on_line=on_line,
                        opener=self.opener)  # fmt: skip
        self.flow = flow
        try:
            process = flow.run()
        except YijianError as e:
            self.post_message(FlowFailed(e))
            return
        except Exception as e:  # an unexpected failure is shown, logged, and leaves the launcher usable
            import logging

            logging.getLogger("yijian").exception("one-click start failed")
            self.post_message(FlowFailed(YijianError(f"{type(e).__name__}: {e}")))
            return
        finally:
            self.flow = None
        if process is None:
            return
        self.runtime, self.url = process, flow.url
        code = process.wait()
        self.post_message(RuntimeExited(code, process.output()))

    def stop_runtime(self) -> None:
        flow, runtime = self.flow, self.runtime
        if flow is not None:
            flow.stop()
        if runtime is not None:
            runtime.stop()

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def stop_in_background(self, then_start: bool = False) -> None:
        """Stop (and optionally start again) without blocking the screen."""
        import time

        self.stop_runtime()
        deadline = time.monotonic() + 30
        while self.flow is not None and time.monotonic() < deadline:  # the flow worker winds down
            time.sleep(0.05)
        if then_start:
            self.call_from_thread(self.action_start)

    def open_browser(self) -> None:
        if self.url:
            self.opener(self.url)

    def on_step_msg(self, message: StepMsg) -> None:
        self.query_one(HomePage).show_step(message.update)

    def on_runtime_line(self, message: RuntimeLine) -> None:
        self.console_lines.append(message.line)
        console = self.page("console")
        if console is not None:  # otherwise it shows console_lines when first built
            console.add_line(message.line)

    def on_flow_failed(self, message: FlowFailed) -> None:
        self.last_error = message.error
        self.query_one(HomePage).show_failure(message.error)

    def on_runtime_exited(self, message: RuntimeExited) -> None:
        self.runtime = None
        console = self.page("console")
        if console is not None:
            console.runtime_exited(message.code, message.output)
        self.query_one(HomePage).runtime_exited(message.code, message.output)

    async def on_unmount(self) -> None:
        # every exit path stops the generation UI this app started
        await self.run_in_thread_safe(self.stop_runtime)

    async def run_in_thread_safe(self, fn: Any) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, fn)
