"""一键启动: the Start button, status cards, and the eight steps of one-click start."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Label, ProgressBar, Static

from bootstrap.errors import YijianError
from launcher.oneclick import STEPS, StepUpdate
from launcher.tui.pages.base import Page
from launcher.tui.status import Status, gather
from launcher.tui.strings import NO_WORKING_MIRROR_MARK, T, t

ICONS = {"waiting": "○", "running": "◐", "progress": "◐", "done": "●", "skipped": "–", "failed": "✗"}
CARDS = ("gpu", "driver", "vram", "python", "torch", "xformers", "model_count", "pack", "env_state", "mirrors",
         "last_error")  # fmt: skip
WIDE = {"gpu", "model_count", "pack", "env_state", "mirrors", "last_error"}  # long values: the whole row


class HomePage(Page):
    DEFAULT_CSS = """
    HomePage #actions { height: 3; margin: 1 0 0 0; }
    HomePage #actions Button { margin-right: 2; width: 18; }
    HomePage #cards { grid-size: 2; grid-gutter: 0 2; height: auto; margin: 1 0 0 0; }
    HomePage .card { height: 1; }
    HomePage .card.wide { column-span: 2; }
    HomePage .card-key { color: $text-muted; width: 12; }
    HomePage #steps { height: auto; margin: 1 0 0 0; }
    HomePage .step { height: 1; }
    HomePage #step-bar { margin: 0 0 0 4; }
    HomePage #failure { color: $error; margin: 1 0 0 0; height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.status: Status | None = None
        self.states: dict[str, tuple[str, StepUpdate | None]] = {s: ("waiting", None) for s, _ in STEPS}

    def compose(self) -> ComposeResult:
        with Horizontal(id="actions"):
            yield Button("", id="start", variant="success")
            yield Button("", id="stop", variant="error", disabled=True)
            yield Button("", id="browser", disabled=True)
        with Grid(id="cards"):
            for key in CARDS:
                with Horizontal(classes="card wide" if key in WIDE else "card", id=f"cardrow-{key}"):
                    yield Label("", id=f"key-{key}", classes="card-key")
                    yield Label("", id=f"card-{key}")
        with Vertical(id="steps"):
            for step, _ in STEPS:
                yield Static("", id=f"step-{step}", classes="step", markup=False)
            yield ProgressBar(id="step-bar", show_eta=False)
        yield Static("", id="failure", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#step-bar", ProgressBar).display = False
        self.call_after_refresh(self.refresh_status)  # probe after the first paint, not before it

    @work(thread=True, exclusive=True, group="status", exit_on_error=False)
    def refresh_status(self) -> None:
        status = gather(self.yijian.bundle)
        self.app.call_from_thread(self._show_status, status)

    def _show_status(self, status: Status) -> None:
        self.status = status
        self._fill_cards()

    def reread(self, what: str) -> None:
        """The state changed (app.StateChanged): probe again, and set the buttons from the runtime's real state."""
        self.refresh_status()
        self._buttons()

    def _buttons(self) -> None:
        app = self.yijian
        self.query_one("#start", Button).disabled = app.busy
        self.query_one("#stop", Button).disabled = not app.busy
        self.query_one("#browser", Button).disabled = not (app.running and app.url)

    # --- words ------------------------------------------------------------------------------------------------
    def relabel(self) -> None:
        self.query_one("#start", Button).label = t("start", self.lang)
        self.query_one("#stop", Button).label = t("stop", self.lang)
        self.query_one("#browser", Button).label = t("open_browser", self.lang)
        for key in CARDS:
            self.query_one(f"#key-{key}", Label).update(t(key, self.lang))
        self._fill_cards()
        for step, _ in STEPS:
            self._draw_step(step)

    def _fill_cards(self) -> None:
        s = self.status
        checking = t("checking", self.lang)
        none = t("none", self.lang)
        values = {key: checking for key in CARDS}
        if s is not None:
            values.update(
                gpu=self.text(s.gpu), driver=s.driver or none, vram=s.vram or none, python=s.python or none,
                torch=s.torch or none, xformers=s.xformers or none, pack=self.text(s.pack),
                env_state=self.text(s.env_state), model_count=str(s.models),
                mirrors=(s.mirrors or none) + (f"  {self.text(NO_WORKING_MIRROR_MARK)}" if s.dead_channels else ""),
                last_error=self.text(s.last_error) if s.last_error else none,
            )  # fmt: skip
        if self.yijian.last_error is not None:
            values["last_error"] = f"{self.yijian.last_error.code}: {self.yijian.last_error.message(self.lang)}"
        for key, value in values.items():
            self.query_one(f"#card-{key}", Label).update(value)

    # --- the flow ---------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def _start(self) -> None:
        self.yijian.action_start()

    @on(Button.Pressed, "#stop")
    def _stop(self) -> None:
        self.yijian.stop_in_background()

    @on(Button.Pressed, "#browser")
    def _browser(self) -> None:
        self.yijian.open_browser()

    def reset_steps(self) -> None:
        self.states = {s: ("waiting", None) for s, _ in STEPS}
        self.query_one("#failure", Static).update("")
        self.query_one("#start", Button).disabled = True
        self.query_one("#stop", Button).disabled = False
        for step, _ in STEPS:
            self._draw_step(step)

    def show_step(self, u: StepUpdate) -> None:
        bar = self.query_one("#step-bar", ProgressBar)
        if u.state == "progress":
            if u.total:
                bar.display = True
                bar.update(total=u.total, progress=u.done or 0)
            _, last = self.states[u.step]
            if u.message is not None or last is None:
                self.states[u.step] = ("running", u)
        else:
            bar.display = False
            self.states[u.step] = (u.state, u)
        if u.state == "done" and u.step == "ready":
            self.query_one("#browser", Button).disabled = False
        self._draw_step(u.step)

    def _draw_step(self, step: str) -> None:
        state, update = self.states[step]
        n = [s for s, _ in STEPS].index(step) + 1
        title = STEPS[n - 1][1].text(self.lang)
        message = update.message.text(self.lang) if update is not None and update.message else ""
        word = t(f"state_{'running' if state == 'progress' else state}", self.lang)
        line = f"{ICONS[state]} {n}. {title}  [{word}]" + (f"  {message}" if message else "")
        self.query_one(f"#step-{step}", Static).update(line)

    def show_failure(self, error: YijianError) -> None:
        findings = []
        for _, (state, update) in self.states.items():
            if state == "failed" and update is not None:
                findings = update.findings
        lines = [f"✗ [{error.code}] {error.message(self.lang)}", f"  {error.hint(self.lang)}"]
        for f in findings:
            lines += [f"  {T['diagnosis'].text(self.lang)}: [{f.code}] {f.title} — {f.detail}",
                      f"  {T['fix'].text(self.lang)}: {f.fix}"]  # fmt: skip
        self.query_one("#failure", Static).update("\n".join(lines))
        self._idle()
        self._fill_cards()

    def runtime_exited(self, code: int | None, output: str) -> None:
        self._idle()
        self.query_one("#browser", Button).disabled = True
        if code not in (0, None, -15, 143):
            from launcher.doctor.scanner import scan

            findings = scan(output, self.lang)
            lines = [self.tr(f"生成界面已退出（退出码 {code}）", f"The generation UI exited (code {code})")]
            for f in findings:
                lines += [f"  [{f.code}] {f.title} — {f.detail}", f"  {T['fix'].text(self.lang)}: {f.fix}"]
            self.query_one("#failure", Static).update("\n".join(lines))

    def _idle(self) -> None:
        self.query_one("#start", Button).disabled = False
        self.query_one("#stop", Button).disabled = True
