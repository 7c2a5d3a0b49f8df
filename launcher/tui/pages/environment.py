"""环境: which pack fits and why, pinning another one, the environment's state, rebuild and repair with progress.

A thin layer over the core: ``packs.resolver.choose`` explains the choice, ``config.apply`` pins ``setup.pack``,
``bootstrap.builder.state`` reads the stamp and the installed versions (package metadata only: torch is never
imported here), and :class:`~launcher.environment.EnvironmentBuilder` builds or repairs in a thread worker whose
events feed the progress bar and the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text as RichText
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Label, ProgressBar, RichLog, Select, Static

from bootstrap.errors import YijianError
from launcher.environment import EnvironmentBuilder
from launcher.tui.confirm import ConfirmScreen
from launcher.tui.pages.base import Page

if TYPE_CHECKING:
    from launcher.hardware.nvidia import Hardware
    from launcher.packs.catalog import Pack
    from launcher.packs.resolver import Choice

COLUMNS = (("part", "组件", "Part", 13), ("installed", "已安装", "Installed", 22),
           ("wanted", "环境包要求", "Pack wants", 22), ("ok", "", "", 3))  # fmt: skip
WORK = {"rebuild": ("重建", "Rebuild"), "xformers": ("修复 xformers", "Repair xformers"),
        "torch": ("修复 torch", "Repair torch")}  # fmt: skip


@dataclass
class EnvFacts:
    """Everything the page shows, read in a worker."""

    hardware: Hardware | None = None
    packs: list[Pack] = field(default_factory=list)
    setting: str = "auto"  # setup.pack
    choice: Choice | None = None
    choice_error: Exception | None = None  # NoPackFits: no pack fits this machine
    target: Pack | None = None  # the pack a build uses: the setting's, or the automatic choice
    env: Path | None = None
    built: bool = False
    stamp: dict[str, Any] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)
    unmet: list[str] = field(default_factory=list)  # the target's pins the environment does not satisfy
    error: Exception | None = None  # the facts could not be read (config.toml invalid, pack files broken)


def gather(bundle: Any) -> EnvFacts:
    from bootstrap.builder import state
    from bootstrap.layout import env_python
    from launcher import config
    from launcher.hardware.nvidia import probe
    from launcher.packs.catalog import load_packs
    from launcher.packs.resolver import choose

    facts = EnvFacts(env=bundle.env_dir / "runtime")
    try:
        cfg = config.load(bundle)
        packs = load_packs(bundle.packs_dir)
    except YijianError as e:
        facts.error = e
        return facts
    facts.packs, facts.setting = list(packs.all()), cfg.get_str("setup.pack")
    facts.hardware = probe()
    try:
        facts.choice = choose(facts.hardware, packs)
    except YijianError as e:
        facts.choice_error = e
    facts.target = facts.choice.chosen if facts.setting == "auto" and facts.choice else packs.get(facts.setting)
    assert facts.env is not None
    facts.stamp = state.read_stamp(facts.env)
    facts.built = env_python(facts.env).exists()
    if facts.built:
        facts.installed = state.installed(facts.env)
        if facts.target is not None:
            facts.unmet = state.unmet(facts.env, facts.target.pins(facts.hardware.os))
    return facts


# --- what the workers post back ----------------------------------------------------------------------------------
class FactsRead(Message, bubble=False):
    def __init__(self, facts: EnvFacts, notice: str = "") -> None:
        super().__init__()
        self.facts, self.notice = facts, notice


class BuildEvent(Message, bubble=False):
    def __init__(self, event: Any) -> None:  # bootstrap.builder.build.Event
        super().__init__()
        self.event = event


class BuildLine(Message, bubble=False):
    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class BuildDone(Message, bubble=False):
    def __init__(self, what: str, changed: str | None, error: Exception | None) -> None:
        super().__init__()
        self.what, self.changed, self.error = what, changed, error


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop returns


class EnvironmentPage(Page):
    DEFAULT_CSS = """
    EnvironmentPage #env-pick { height: 3; margin: 1 0 0 0; }
    EnvironmentPage #env-pick-label { width: 10; padding: 1 0 0 0; }
    EnvironmentPage #env-pack { width: 1fr; }
    EnvironmentPage #env-actions { height: 3; }
    EnvironmentPage #env-actions Button { margin-right: 2; width: 16; }  /* fixed: wide enough in both languages */
    EnvironmentPage #env-actions #env-repair-xformers { width: 20; }
    EnvironmentPage #env-progress { height: 1; }
    EnvironmentPage #env-bytes { width: auto; margin: 0 0 0 2; }
    EnvironmentPage #env-log { height: 10; border: round $primary-background; }
    EnvironmentPage #env-result { height: auto; }
    EnvironmentPage #env-table { height: auto; max-height: 7; }
    EnvironmentPage #env-state, EnvironmentPage #env-choice { height: auto; }
    EnvironmentPage #env-choice .indent1 { padding: 0 0 0 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.facts: EnvFacts | None = None
        self.shown = False
        self.building = False
        self.work = ""  # rebuild | xformers | torch, while or after it runs
        self.changed: str | None = None
        self.error: Exception | None = None
        self.done = False
        self.notice = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="env-pick"):
            yield Label("", id="env-pick-label")
            yield Select([("auto", "auto")], id="env-pack", allow_blank=False, value="auto", disabled=True)
        with Horizontal(id="env-actions"):
            yield Button("", id="env-rebuild", variant="warning")
            yield Button("", id="env-repair-xformers")
            yield Button("", id="env-repair-torch")
        with Horizontal(id="env-progress"):
            yield ProgressBar(id="env-bar", show_eta=False)
            yield Static("", id="env-bytes")
        yield RichLog(id="env-log", markup=False, wrap=True, min_width=20, max_lines=5000)
        yield Static("", id="env-result")
        yield Static("", id="env-state-heading", classes="heading")
        yield Static("", id="env-state")
        yield DataTable(id="env-table", cursor_type="none", show_cursor=False, zebra_stripes=False)
        yield Static("", id="env-choice-heading", classes="heading")
        yield Vertical(id="env-choice")

    def on_mount(self) -> None:
        for wid in ("#env-progress", "#env-log", "#env-result"):
            self.query_one(wid).display = False
        self.query_one("#env-table", DataTable).can_focus = False
        super().on_mount()

    def on_show(self) -> None:
        if not self.shown:
            self.shown = True
            self.refresh_facts()

    def reread(self, what: str) -> None:
        """The state changed (app.StateChanged): read the environment again (a build in flight reads it at its end)."""
        if self.shown and not self.building:
            self.refresh_facts()

    # --- words ------------------------------------------------------------------------------------------------
    def relabel(self) -> None:
        self.query_one("#env-pick-label", Label).update(self.tr("环境包", "Pack"))
        self.query_one("#env-rebuild", Button).label = self.tr(*WORK["rebuild"])
        self.query_one("#env-repair-xformers", Button).label = self.tr(*WORK["xformers"])
        self.query_one("#env-repair-torch", Button).label = self.tr(*WORK["torch"])
        self.query_one("#env-state-heading", Static).update(
            self.tr("当前环境（env/runtime）", "The environment (env/runtime)")
        )
        self.query_one("#env-choice-heading", Static).update(self.tr("为什么是这个环境包", "Why this pack"))
        table = self.query_one("#env-table", DataTable)
        table.clear(columns=True)
        for key, zh, en, width in COLUMNS:
            table.add_column(self.tr(zh, en), key=key, width=width)
        self._draw()

    def _draw(self) -> None:
        self._draw_select()
        self._draw_state()
        self._draw_choice()
        self._draw_result()

    # --- facts ------------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="environment-facts", exit_on_error=False)
    def refresh_facts(self, notice: str = "") -> None:
        try:
            facts = gather(self.yijian.bundle)
        except Exception as e:  # shown on the page, which stays usable
            facts = EnvFacts(error=e)
        self.post_message(FactsRead(facts, notice))

    def on_facts_read(self, message: FactsRead) -> None:
        self.facts = message.facts
        if message.notice:
            self.notice, self.done = message.notice, False
        self._draw()

    def _draw_select(self) -> None:
        select: Select[str] = self.query_one("#env-pack", Select)
        f = self.facts
        if f is None or f.error is not None:
            return
        auto = f.choice.chosen.id if f.choice else "?"
        options = [
            (self.tr(f"自动（按显卡和驱动选择：{auto}）", f"auto (chosen from the GPU and driver: {auto})"), "auto")
        ]
        options += [(f"{p.id}  {p.title(self.lang)}", p.id) for p in f.packs]
        wanted = f.setting if f.setting in {v for _, v in options} else "auto"
        select.set_options(options)
        if select.value == wanted:  # unchanged values do not redraw: pass through another one to show the new words
            select.value = options[1][1] if wanted == options[0][1] else options[0][1]
        select.value = wanted
        select.disabled = self.building

    def _draw_state(self) -> None:
        state = self.query_one("#env-state", Static)
        table = self.query_one("#env-table", DataTable)
        table.clear()
        f = self.facts
        if f is None:
            state.update(self.tr("检测中……", "Checking…") if self.shown else "")
            table.display = False
            return
        if f.error is not None:
            state.update(RichText("✗ " + error_text(f.error, self.lang), style="red"))
            table.display = False
            return
        out = RichText()
        stamp, target = f.stamp, f.target
        if not f.built:
            out.append(self.tr("未构建：点 重建（或在“一键启动”页点 一键启动）来构建。",
                               "Not built: press Rebuild (or Start on the Start page) to build it."), style="yellow")  # fmt: skip
        else:
            out.append(self.tr("已构建", "Built"), style="green")
            if stamp.get("pack"):
                out.append(self.tr(f" · 环境包 {stamp['pack']}", f" · pack {stamp['pack']}"))
            if stamp.get("built"):
                out.append(self.tr(f" · 构建于 {stamp['built']}", f" · built {stamp['built']}"))
            if stamp.get("repaired"):
                out.append(self.tr(f" · 修复过 {stamp['repaired']}（{stamp.get('repaired_at', '')}）",
                                   f" · repaired {stamp['repaired']} ({stamp.get('repaired_at', '')})"))  # fmt: skip
            if target is not None and stamp.get("pack") not in (None, target.id):
                out.append("\n! " + self.tr(f"当前环境是 {stamp.get('pack')}，而要用的环境包是 {target.id}：点 重建 换过去。",
                                            f"The environment is {stamp.get('pack')}, the pack to use is {target.id}: "
                                            "press Rebuild to switch."), style="yellow")  # fmt: skip
            elif f.unmet:
                out.append("\n! " + self.tr(f"与环境包不符：{', '.join(f.unmet)}。点 修复 torch 或 重建。",
                                            f"Does not match the pack: {', '.join(f.unmet)}. Press Repair torch or "
                                            "Rebuild."), style="yellow")  # fmt: skip
        state.update(out)
        table.display = True
        os_name = f.hardware.os if f.hardware else "linux"
        python = str(stamp.get("python") or "") if f.built else ""
        have = {"python": python, **{k: f.installed.get(k, "") for k in ("torch", "torchvision", "xformers")}}
        want = {"python": target.python if target else "", "torch": target.torch if target else "",
                "torchvision": target.torchvision if target else "",
                "xformers": target.xformers_for(os_name) if target else ""}  # fmt: skip
        unmet = {u.split("==")[0].strip().lower() for u in f.unmet}
        for part in ("python", "torch", "torchvision", "xformers"):
            if not f.built or not want[part] and not have[part]:
                mark = ""
            elif part == "python":
                mark = "✓" if have[part].startswith(want[part]) else "✗"
            else:
                mark = "✗" if part in unmet or (want[part] and not have[part]) else "✓"
            table.add_row("Python" if part == "python" else part, have[part] or "–", want[part] or "–",
                          RichText(mark, style="green" if mark == "✓" else "red"))  # fmt: skip

    def _draw_choice(self) -> None:
        """The machine, the choice and its reasons, the packs not chosen: one Static a line, wrapped lines indented."""
        box = self.query_one("#env-choice", Vertical)
        lines: list[tuple[int, RichText]] = []  # (indent, text)

        def add(indent: int, text: str, style: str = "") -> None:
            lines.append((indent, RichText(text, style=style)))

        f = self.facts
        if f is not None and f.error is None:
            hw, c, colon = f.hardware, f.choice, self.tr("：", ": ")
            if hw is not None:
                driver = (
                    self.tr(f"驱动 {hw.driver_version}", f"driver {hw.driver_version}") if hw.driver_version else ""
                )
                cuda = f" (CUDA {hw.cuda_driver})" if hw.cuda_driver else ""
                gpus = self.tr("、", ", ").join(f"{g.short_name} {g.sm}" for g in hw.gpus) or self.tr(
                    "没有 NVIDIA 显卡", "no NVIDIA GPU")  # fmt: skip
                add(0, self.tr("电脑：", "Machine: ") + " · ".join(x for x in (hw.os, driver + cuda, gpus) if x))
            if f.choice_error is not None:
                add(0, "✗ " + error_text(f.choice_error, self.lang), "red")
            if f.setting != "auto":
                pinned = f.target
                add(0, self.tr("你固定了：", "You pinned: ") + f.setting + (f"  {pinned.title(self.lang)}" if pinned else ""),
                    "bold")  # fmt: skip
                if c is not None:
                    add(1, self.tr(f"自动选择会是 {c.chosen.id}。", f"The automatic choice would be {c.chosen.id}."))
                    for r in c.rejected:
                        if r.id == f.setting:
                            add(1, "! " + self.tr(f"{r.id} 不适合这台电脑：", f"{r.id} does not fit this machine: ")
                                + self.tr("；", "; ").join(r.reasons(self.lang)), "yellow")  # fmt: skip
            if c is not None:
                p = c.chosen
                add(0, self.tr("自动选择：", "Chosen automatically: ") + f"{p.id}  {p.title(self.lang)}", "bold")
                add(1, "  ".join(p.pins(hw.os if hw else "linux")) + f"  Python {p.python}", "dim")
                for line in c.reasons(self.lang):
                    add(1, f"- {line}")
                for w in c.warnings:
                    add(1, f"! {w.text(self.lang)}", "yellow")
                if c.rejected:
                    add(0, self.tr("没有选择：", "Not chosen:"), "bold")
                    for r in c.rejected:
                        add(1, f"{r.id}{colon}" + self.tr("；", "; ").join(r.reasons(self.lang)))
        box.remove_children()
        box.mount_all([Static(text, classes=f"line indent{indent}") for indent, text in lines])

    # --- pinning a pack ---------------------------------------------------------------------------------------
    @on(Select.Changed, "#env-pack")
    def _pack_changed(self) -> None:
        value = self.query_one("#env-pack", Select).value  # now, not the event's: set_options fires one too
        f = self.facts
        if f is None or f.error is not None or not isinstance(value, str) or value == f.setting or self.building:
            return
        f.setting = value  # until the worker reads it back
        self.pin(value)

    @work(thread=True, exclusive=True, group="environment-pin", exit_on_error=False)
    def pin(self, value: str) -> None:
        from launcher import config

        try:
            config.apply(self.yijian.bundle, [("setup.pack", None if value == "auto" else value)])
            notice = self.tr(f"已保存：setup.pack = {value}", f"Saved: setup.pack = {value}")
        except Exception as e:  # shown on the page, which stays usable
            notice = "✗ " + error_text(e, self.lang)
        try:
            facts = gather(self.yijian.bundle)
        except Exception as e:
            facts = EnvFacts(error=e)
        self.post_message(FactsRead(facts, notice))

    # --- building and repairing -------------------------------------------------------------------------------
    @on(Button.Pressed, "#env-rebuild")
    def _rebuild(self) -> None:
        if not self._may_build():
            return
        target = self.facts.target.id if self.facts and self.facts.target else "?"
        screen = ConfirmScreen(
            self.tr("重建生成环境？", "Rebuild the generation environment?"),
            self.tr(
                f"将为环境包 {target} 重新构建 env/runtime。\n\n"
                "新环境在旁边构建，通过自检后才替换；在此之前，旧环境保持不变、照常可用。"
                "模型（models/）、图片（outputs/）和设置（config.toml）都不会动。\n\n"
                "需要下载 torch 等大文件（CUDA 版超过 2 GB），可能要几分钟到几十分钟。",
                f"env/runtime will be built again for pack {target}.\n\n"
                "The new environment is built beside the old one, which stays as it is and keeps working until "
                "the new one passes its check. Models (models/), images (outputs/) and settings (config.toml) "
                "are not touched.\n\nIt downloads torch and other large files (over 2 GB for CUDA): this can take "
                "minutes to an hour.",
            ),  # fmt: skip
            self.tr("重建", "Rebuild"),
            self.tr("取消", "Cancel"),
        )
        self.app.push_screen(screen, lambda yes: self.start("rebuild") if yes else None)

    @on(Button.Pressed, "#env-repair-xformers")
    def _repair_xformers(self) -> None:
        if self._may_build():
            self.start("xformers")

    @on(Button.Pressed, "#env-repair-torch")
    def _repair_torch(self) -> None:
        if self._may_build():
            self.start("torch")

    def _may_build(self) -> bool:
        app = self.yijian
        trouble = any(getattr(p, "env_fixing", False) for p in app.query("#trouble"))
        if self.building:
            return False
        if app.busy or trouble:
            self.notice = self.tr(
                "生成界面正在运行、正在一键启动或正在修复环境：请先在“控制台”页停止它（或等它完成）。",
                "The generation UI is running, starting, or the environment is being fixed: stop it on the Console "
                "page (or wait for it) first.",
            )
            self.done, self.error = False, None
            self._draw_result()
            return False
        return True

    def start(self, what: str) -> None:
        if self.building:
            return
        self.building, self.work, self.changed, self.error, self.done, self.notice = True, what, None, None, False, ""
        log = self.query_one("#env-log", RichLog)
        log.clear()
        log.display = True
        self.query_one("#env-progress").display = False
        self._buttons()
        self._draw_result()
        self.run_build(what, self.lang)

    def _buttons(self) -> None:
        for wid in ("#env-rebuild", "#env-repair-xformers", "#env-repair-torch", "#env-pack"):
            self.query_one(wid).disabled = self.building or (wid == "#env-pack" and self.facts is None)

    @work(thread=True, exclusive=True, group="environment-build", exit_on_error=False)
    def run_build(self, what: str, lang: str) -> None:
        def on_event(e: Any) -> None:
            self.post_message(BuildEvent(e))

        def say(line: str) -> None:
            self.post_message(BuildLine(line))

        builder = EnvironmentBuilder(self.yijian.bundle, lang, say, on_event)
        try:
            changed, error = builder.build("setting", True) if what == "rebuild" else builder.repair(what), None
        except Exception as e:  # typed errors and surprises alike are shown; the page stays usable
            changed, error = None, e
        self.post_message(BuildDone(what, changed, error))

    def on_build_event(self, message: BuildEvent) -> None:
        e = message.event
        log = self.query_one("#env-log", RichLog)
        progress = self.query_one("#env-progress")
        if e.step == "prefetch" and e.total:
            first = not progress.display
            progress.display = True
            self.query_one("#env-bar", ProgressBar).update(total=e.total, progress=e.done or 0)
            self.query_one("#env-bytes", Static).update(f"{human_size(e.done or 0)} / {human_size(e.total)}")
            if not first and e.done not in (0, e.total):
                return  # the bar shows the bytes; the log gets the start and the end
        else:
            progress.display = False
        log.write(RichText(f"· {e.text(self.lang)}"))

    def on_build_line(self, message: BuildLine) -> None:
        self.query_one("#env-log", RichLog).write(RichText(message.line))

    def on_build_done(self, message: BuildDone) -> None:
        self.building, self.done = False, True
        self.changed, self.error = message.changed, message.error
        self.query_one("#env-progress").display = False
        self._buttons()
        self._draw_result()
        self.yijian.state_changed("environment")  # this page, the status cards and the rest read it again

    def _draw_result(self) -> None:
        box = self.query_one("#env-result", Static)
        name = self.tr(*WORK[self.work]) if self.work else ""
        if self.building:
            text = RichText(self.tr(f"{name}中……可以切换到别的页面，完成后这里会显示结果。",
                                    f"{name}: running… You can switch pages; the result shows here."))  # fmt: skip
        elif self.done and self.error is not None:
            text = RichText(self.tr(f"✗ {name}失败：", f"✗ {name} failed: ") + error_text(self.error, self.lang),
                            style="red")  # fmt: skip
        elif self.done:
            text = RichText(self.tr(f"✓ {name}完成：", f"✓ {name} done: ") + self.changed if self.changed else
                            self.tr(f"· {name}：无需改动，环境已符合环境包。",
                                    f"· {name}: nothing to change; the environment matches the pack."),
                            style="green")  # fmt: skip
        else:
            text = RichText(self.notice, style="red" if self.notice.startswith("✗") else "yellow")
        box.update(text)
        box.display = bool(text.plain)


def error_text(e: Exception, lang: str) -> str:
    if isinstance(e, YijianError):
        return f"[{e.code}] {e.message(lang)}\n{e.hint(lang)}"
    return repr(e) + ("\n详细信息在 logs/ 文件夹。" if lang == "zh" else "\nThe full detail is in the logs/ folder.")
