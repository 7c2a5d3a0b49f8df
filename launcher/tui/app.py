"""The Textual app: a sidebar of pages, the language switch, and the one running generation UI.

The app owns what pages share: the one-click flow and the runtime it
started (the home page starts it, the console page shows, stops and
restarts it).  Work runs in thread workers; they talk to the UI only by
posting messages, so the screen never freezes.
"""

from __future__ import annotations

import collections
import threading
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


def port_answers(url: str, timeout: float = 0.3) -> bool:
    """Whether something accepts connections at the URL's host and port (0.0.0.0 is asked on 127.0.0.1)."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


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


class StateChanged(Message):
    """Something on disk or in the runtime changed (a step, a build, a download, a mirror test, a start or stop).

    Posted by whatever did it, from any thread (:meth:`YijianApp.state_changed`); the app hands it to every
    built page's ``reread``, which reads the real state again (from disk, the launcher core, the runtime
    process): one mechanism, so no card or page keeps showing what was true before.
    """

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what


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
                 opener: Any = None) -> None:  # fmt: skip
        super().__init__()
        self.bundle = bundle
        self.set_reactive(YijianApp.lang, lang)
        self.options = options or OneClickOptions()
        self.opener = opener  # None: the system's browser where one can be shown (bootstrap.browser)
        self.flow: OneClick | None = None
        self.runtime: RuntimeProcess | None = None
        self.url: str | None = None
        self.console_lines: collections.deque[str] = collections.deque(maxlen=CONSOLE_LINES)
        self.last_error: YijianError | None = None
        self._flow_lock = threading.Lock()  # held from the key press until the flow has handed over its runtime

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
    def process(self) -> RuntimeProcess | None:
        """The runtime this app started: handed over by the flow, or still inside it (launched, not ready yet)."""
        flow = self.flow
        return self.runtime or (flow.process if flow is not None else None)

    @property
    def running(self) -> bool:
        """The runtime's process is alive (whether or not its port answers yet)."""
        process = self.process
        return process is not None and process.proc.poll() is None

    @property
    def busy(self) -> bool:
        """A one-click flow is under way or a runtime is alive: F5 and 一键启动 do nothing then."""
        return self._flow_lock.locked() or self.running

    def run_state(self) -> tuple[str, str | None]:
        """("running", url) when the process is alive and its port answers; ("starting", url) while it is
        alive but not answering yet; ("stopped", None) otherwise.  Connects to 127.0.0.1: fast."""
        process = self.process
        if process is None or process.proc.poll() is not None:
            return "stopped", None
        url = self.url or process.url
        return ("running" if url and port_answers(url) else "starting"), url

    def action_start(self) -> None:
        # Decided here, on the UI thread, before any worker exists: a second F5 or click finds the lock taken.
        if self.running or not self._flow_lock.acquire(blocking=False):
            return
        try:
            self.console_lines.clear()
            self.last_error = None
            self.query_one(HomePage).reset_steps()
            self.run_flow()
        except BaseException:
            self._flow_lock.release()
            raise

    @work(thread=True, exclusive=True, group="flow", exit_on_error=False)
    def run_flow(self) -> None:
        try:
            process = self._run_flow()
        finally:
            self._flow_lock.release()
            self.state_changed("flow")  # read after the release: the buttons see the flow has ended
        if process is None:
            return
        code = process.wait()
        self.post_message(RuntimeExited(code, process.output()))

    def _run_flow(self) -> RuntimeProcess | None:
        flow: OneClick | None = None

        def on_update(u: StepUpdate) -> None:
            if u.step == "ready" and u.state == "done" and flow is not None:
                self.runtime, self.url = flow.process, flow.url  # running from here on, before the browser step
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
            return None
        except Exception as e:  # an unexpected failure is shown, logged, and leaves the launcher usable
            import logging

            logging.getLogger("yijian").exception("one-click start failed")
            self.post_message(FlowFailed(YijianError(f"{type(e).__name__}: {e}")))
            return None
        finally:
            if flow.process is not None and flow.process.proc.poll() is None:
                self.runtime = flow.process  # handed over before the flow lets go of it
            self.flow = None
        if process is None:
            return None
        self.runtime, self.url = process, flow.url
        return process

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
        while self._flow_lock.locked() and time.monotonic() < deadline:  # the flow worker winds down
            time.sleep(0.05)
        self.state_changed("stopped")
        if then_start:
            self.call_from_thread(self.action_start)

    def open_browser(self) -> None:
        """The 打开浏览器 buttons: open the UI, or say why not and where to go."""
        if not self.url:
            return
        from bootstrap import browser

        why = browser.open_url(self.url) if self.opener is None else browser.result(self.opener(self.url))
        said = browser.opened_text(self.url, why)
        self.notify(said.text(self.lang), severity="information" if why is None else "warning")

    # --- the real state, read again after every operation ---------------------------------------------------
    def state_changed(self, what: str) -> None:
        """Tell every page that the state changed (safe from any thread)."""
        self.post_message(StateChanged(what))

    def on_state_changed(self, message: StateChanged) -> None:
        for page in self.query("#pages > *"):
            reread = getattr(page, "reread", None)
            if reread is not None:
                reread(message.what)

    def on_step_msg(self, message: StepMsg) -> None:
        u = message.update
        if u.step == "ready" and u.state == "done":
            self.last_error = None  # a good start clears the last error
        self.query_one(HomePage).show_step(u)
        if u.state in ("done", "skipped", "failed"):
            self.state_changed(u.step)  # a step may have built, downloaded, measured or started something

    def on_runtime_line(self, message: RuntimeLine) -> None:
        self.console_lines.append(message.line)
        console = self.page("console")
        if console is not None:  # otherwise it shows console_lines when first built
            console.add_line(message.line)

    def on_flow_failed(self, message: FlowFailed) -> None:
        self.last_error = message.error
        self.query_one(HomePage).show_failure(message.error)
        self.state_changed("failed")

    def on_runtime_exited(self, message: RuntimeExited) -> None:
        self.runtime = None
        console = self.page("console")
        if console is not None:
            console.runtime_exited(message.code, message.output)
        self.query_one(HomePage).runtime_exited(message.code, message.output)
        self.state_changed("exited")

    async def on_unmount(self) -> None:
        # every exit path stops the generation UI this app started
        await self.run_in_thread_safe(self.stop_runtime)

    async def run_in_thread_safe(self, fn: Any) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, fn)
