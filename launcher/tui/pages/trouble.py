"""疑难解答: the doctor's findings with 修复 buttons, a scan of the last console log, and the diagnostic bundle.

A thin layer over :mod:`launcher.doctor`: ``report.examine`` finds the problems, ``fixes.plan``/``fixes.run``
fix them (actions not marked safe are asked about in a modal first), ``scanner.scan`` reads the runtime's logs and
``sysinfo.write_bundle`` writes the zip.  All of it runs in thread workers that post their results back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text as RichText
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, RichLog, Static
from textual.worker import get_current_worker

from launcher.environment import EnvironmentBuilder
from launcher.tui.confirm import ConfirmScreen, ask_from_thread
from launcher.tui.pages.base import Page
from launcher.tui.pages.environment import error_text
from launcher.tui.strings import t

if TYPE_CHECKING:
    from launcher.doctor.fixes import Outcome, Step
    from launcher.doctor.report import Examination
    from launcher.doctor.scanner import Finding

LOGS = ("runtime.log", "runtime.previous.log")  # the runtime's console output, this run and the one before
LOG_TAIL = 200_000  # characters of each log that are scanned (the end is where a crash is)
SEVERITY = {"error": ("✗", "错误", "error", "bold red"), "warning": ("!", "警告", "warning", "bold yellow"),
            "info": ("i", "提示", "info", "bold cyan")}  # fmt: skip
OUTCOME = {"done": ("✓", "已完成", "done"), "unchanged": ("·", "无需改动", "nothing to change"),
           "failed": ("✗", "失败", "failed"), "declined": ("–", "未确认，跳过", "not confirmed, skipped"),
           "optional": ("○", "可选：点这一项的 修复 单独执行", "optional: press its Fix to run it"),
           "manual": ("→", "需要你自己处理", "up to you"), "planned": ("○", "将执行", "would run")}  # fmt: skip


# --- what the workers post back ----------------------------------------------------------------------------------
class Examined(Message, bubble=False):
    def __init__(self, generation: int, lang: str, exam: Examination | None, error: Exception | None,
                 actions: dict[str, str]) -> None:  # fmt: skip
        super().__init__()
        self.generation, self.lang, self.exam, self.error, self.actions = generation, lang, exam, error, actions


@dataclass
class LogScan:
    name: str  # logs/runtime.log
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # lang -> findings


class LogsScanned(Message, bubble=False):
    def __init__(self, scans: list[LogScan]) -> None:
        super().__init__()
        self.scans = scans


class FixLine(Message, bubble=False):
    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


@dataclass
class FixResult:
    lang: str
    targets: list[Finding]
    from_log: bool
    outcomes: list[Outcome] = field(default_factory=list)
    after: Examination | None = None
    error: Exception | None = None  # the fixes could not run at all (the outcomes carry per-step failures)


class Fixed(Message, bubble=False):
    def __init__(self, result: FixResult) -> None:
        super().__init__()
        self.result = result


class BundleWritten(Message, bubble=False):
    def __init__(self, path: Path | None, error: Exception | None) -> None:
        super().__init__()
        self.path, self.error = path, error


class FixButton(Button):
    """The 修复 button of one finding."""

    def __init__(self, finding: Finding, from_log: bool, label: str, disabled: bool) -> None:
        super().__init__(label, variant="primary", compact=True, disabled=disabled, classes="fix")
        self.finding, self.from_log = finding, from_log


class TroublePage(Page):
    DEFAULT_CSS = """
    TroublePage #trouble-actions { height: 3; margin: 1 0 0 0; }
    TroublePage #trouble-actions Button { margin-right: 2; width: 16; }
    TroublePage #trouble-actions #trouble-sysinfo { width: 22; }
    TroublePage #trouble-sysinfo-result { height: auto; }
    TroublePage #trouble-fixes { height: auto; margin: 1 0 0 0; }
    TroublePage #trouble-fix-log { height: auto; max-height: 10; border: round $primary-background; }
    TroublePage #trouble-findings, TroublePage #trouble-logscan { height: auto; }
    TroublePage .finding { height: auto; margin: 0 0 1 0; }
    TroublePage .finding-text { width: 1fr; height: auto; }
    TroublePage .finding-more { padding: 0 0 0 2; }
    TroublePage .fix { margin: 0 0 0 1; min-width: 8; }
    TroublePage .log-name { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.exam: Examination | None = None
        self.exam_lang = ""
        self.exam_error: Exception | None = None
        self.generation = 0  # of the examination in flight; older answers are dropped
        self.checking = False
        self.actions: dict[str, str] = {}  # action id -> kind, for the findings' Fix buttons
        self.scans: list[LogScan] = []
        self.fixing = False
        self.env_fixing = False  # a fix that builds or repairs the environment is running
        self.result: FixResult | None = None
        self.notice = ""  # one line about why a fix did not start
        self.bundle_path: Path | None = None
        self.bundle_error: Exception | None = None
        self.writing_bundle = False
        self.shown = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="trouble-actions"):
            yield Button("", id="trouble-recheck")
            yield Button("", id="trouble-fixall", variant="success", disabled=True)
            yield Button("", id="trouble-sysinfo")
        yield Static("", id="trouble-sysinfo-result")
        yield Static("", id="trouble-fixes")
        yield RichLog(id="trouble-fix-log", markup=False, wrap=True, min_width=20, max_lines=2000)
        yield Static("", id="trouble-doctor-heading", classes="heading")
        yield Static("", id="trouble-summary")
        yield Vertical(id="trouble-findings")
        yield Static("", id="trouble-log-heading", classes="heading")
        yield Vertical(id="trouble-logscan")

    def on_mount(self) -> None:
        for wid in ("#trouble-sysinfo-result", "#trouble-fixes", "#trouble-fix-log"):
            self.query_one(wid).display = False
        super().on_mount()

    def on_show(self) -> None:
        """The first visit examines; every visit reads the logs again (a run may have ended since)."""
        if not self.shown:
            self.shown = True
            self.recheck()
        else:
            self.scan_logs()

    # --- words ------------------------------------------------------------------------------------------------
    def relabel(self) -> None:
        self.query_one("#trouble-recheck", Button).label = self.tr("重新检查", "Check again")
        self.query_one("#trouble-fixall", Button).label = self.tr("全部修复", "Fix all")
        self.query_one("#trouble-sysinfo", Button).label = self.tr("生成诊断包", "Diagnostic bundle")
        self.query_one("#trouble-doctor-heading", Static).update(self.tr("检查结果", "What the doctor found"))
        self.query_one("#trouble-log-heading", Static).update(self.tr("上次运行的控制台日志", "The last console log"))
        if self.shown and self.exam_lang and self.exam_lang != self.lang and not self.fixing:
            self.recheck()  # the findings' words come from the core in one language: ask again in the other
        self._draw_doctor()
        self._draw_logs()
        self._draw_result()
        self._draw_bundle()

    # --- the examination --------------------------------------------------------------------------------------
    @on(Button.Pressed, "#trouble-recheck")
    def recheck(self) -> None:
        self.generation += 1
        self.checking = True
        self._draw_doctor()
        self.examine(self.generation, self.lang)
        self.scan_logs()

    @work(thread=True, group="trouble-exam", exit_on_error=False)
    def examine(self, generation: int, lang: str) -> None:
        from launcher.doctor import fixes, report

        try:
            exam, error = report.examine(self.yijian.bundle, lang), None
            actions = {a.id: a.kind for a in fixes.actions().values()}
        except Exception as e:  # shown on the page, which stays usable
            exam, error, actions = None, e, {}
        self.post_message(Examined(generation, lang, exam, error, actions))

    def on_examined(self, message: Examined) -> None:
        if message.generation != self.generation:
            return
        self.checking = False
        self.exam, self.exam_error, self.exam_lang = message.exam, message.error, message.lang
        self.actions = message.actions or self.actions
        if message.lang != self.lang:  # F2 was pressed while it ran
            self.recheck()
            return
        self._draw_doctor()
        self._draw_logs()  # the Fix buttons of the log's findings need the actions too

    def _counts(self, findings: list[Finding]) -> str:
        if not findings:
            return self.tr("一切正常。", "Everything looks fine.")
        n = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY}
        zh = "、".join(f"{n[s]} 个{SEVERITY[s][1]}" for s in SEVERITY if n[s])
        en = ", ".join(f"{n[s]} {SEVERITY[s][2]}{'s' if n[s] > 1 and s != 'info' else ''}" for s in SEVERITY if n[s])
        return self.tr(f"发现 {zh}（最可能的原因排在最前）：", f"Found {en} (the likeliest cause first):")

    def _draw_doctor(self) -> None:
        summary = self.query_one("#trouble-summary", Static)
        box = self.query_one("#trouble-findings", Vertical)
        findings: list[Finding] = []
        if self.checking or (not self.exam and not self.exam_error) or self.exam_lang != self.lang:
            summary.update(t("checking", self.lang) if self.shown else "")
        elif self.exam_error is not None:
            summary.update(RichText("✗ " + self.tr("检查没有完成：", "The check did not finish: ")
                                    + error_text(self.exam_error, self.lang), style="red"))  # fmt: skip
        elif self.exam is not None:
            findings = self.exam.findings
            summary.update(self._counts(findings))
        self._fill(box, findings, from_log=False)
        runnable = [f for f in findings if f.action in self.actions and f.severity != "info"]
        self.query_one("#trouble-fixall", Button).disabled = self.fixing or self.checking or not runnable

    def _fill(self, box: Vertical, findings: list[Finding], from_log: bool, head: list[Static] | None = None) -> None:
        rows: list[Static | Horizontal] = list(head or [])
        for f in findings:
            mark, zh, en, style = SEVERITY.get(f.severity, SEVERITY["info"])
            head_line = RichText()
            head_line.append(f"{mark} {self.tr(zh, en)}", style=style)
            head_line.append(f"  {f.title}", style="bold")
            head_line.append(f"  {f.code}", style="dim")
            fix_line = RichText(f"{t('fix', self.lang)}{self.tr('：', ': ')}{f.fix}")
            text = Vertical(Static(head_line), Static(RichText(f.detail), classes="finding-more"),
                            Static(fix_line, classes="finding-more"), classes="finding-text")  # fmt: skip
            parts: list[Vertical | Button] = [text]
            if f.action in self.actions:
                parts.append(FixButton(f, from_log, t("fix", self.lang), self.fixing or self.checking))
            rows.append(Horizontal(*parts, classes="finding"))
        box.remove_children()
        box.mount_all(rows)

    # --- the console log --------------------------------------------------------------------------------------
    @work(thread=True, group="trouble-logs", exit_on_error=False)
    def scan_logs(self) -> None:
        from launcher.doctor.scanner import scan

        scans = []
        for name in LOGS:
            path = self.yijian.bundle.logs_dir / name
            try:
                text = path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
            except OSError:
                continue
            scans.append(LogScan(f"logs/{name}", {lang: scan(text, lang) for lang in ("zh", "en")}))
        self.post_message(LogsScanned(scans))

    def on_logs_scanned(self, message: LogsScanned) -> None:
        self.scans = message.scans
        self._draw_logs()

    def _draw_logs(self) -> None:
        box = self.query_one("#trouble-logscan", Vertical)
        if not self.scans:
            word = self.tr("还没有控制台日志：生成界面运行后会写入 logs/runtime.log。",
                           "No console log yet: the generation UI writes logs/runtime.log when it runs.")  # fmt: skip
            self._fill(box, [], True, [Static(word if self.shown else "")])
            return
        head: list[Static] = []
        findings: list[Finding] = []
        for s in self.scans:  # one file's findings are enough: the newest log that has any
            found = s.findings.get(self.lang, [])
            if found:
                head.append(Static(f"{s.name}{self.tr('：', ': ')}{self._counts(found)}", classes="log-name"))
                findings = found
                break
            head.append(Static(f"{s.name}{self.tr('：没有发现已知问题。', ': no known problem.')}", classes="log-name"))
        self._fill(box, findings, True, head)

    # --- fixing -----------------------------------------------------------------------------------------------
    @on(FixButton.Pressed, ".fix")
    def _fix_one(self, event: Button.Pressed) -> None:
        button = event.button
        assert isinstance(button, FixButton)
        self.start_fixes([button.finding], from_log=button.from_log, only=True)

    @on(Button.Pressed, "#trouble-fixall")
    def _fix_all(self) -> None:
        if self.exam is not None:
            self.start_fixes(list(self.exam.findings), from_log=False, only=False)

    def start_fixes(self, findings: list[Finding], *, from_log: bool, only: bool) -> None:
        """``only``: the user pressed one finding's Fix, so its action runs even when it is optional (info)."""
        if self.fixing:
            return
        env = any(self.actions.get(f.action) == "environment" for f in findings
                  if only or f.severity != "info")  # fmt: skip
        if env and self._environment_busy():
            self.notice = self.tr(
                "生成界面正在运行或环境正在构建：请先在“控制台”页停止它（或等构建完成），再修复环境。",
                "The generation UI is running or the environment is being built: stop it on the Console page "
                "(or wait for the build), then fix the environment.",
            )
            self.result = None
            self._draw_result()
            return
        self.fixing, self.env_fixing, self.notice, self.result = True, env, "", None
        log = self.query_one("#trouble-fix-log", RichLog)
        log.clear()
        log.display = True
        self._draw_result()
        self._draw_doctor()
        self._draw_logs()
        self.run_fixes(findings, from_log, only, self.lang)

    def _environment_busy(self) -> bool:
        app = self.yijian
        building = any(getattr(p, "building", False) for p in app.query("#environment"))
        return app.busy or building

    @work(thread=True, exclusive=True, group="trouble-fix", exit_on_error=False)
    def run_fixes(self, findings: list[Finding], from_log: bool, only: bool, lang: str) -> None:
        from launcher.doctor import fixes, report

        worker = get_current_worker()
        result = FixResult(lang, findings, from_log)

        def say(line: str) -> None:
            self.post_message(FixLine(line))

        def confirm(step: Step) -> bool:
            return ask_from_thread(self.app, lambda: self._confirm_screen(step, lang), lambda: worker.is_cancelled)

        try:
            steps = fixes.plan(findings)
            if only:
                steps = [fixes.Step(s.action, s.findings, "run", s.force) if s.mode == "optional" else s
                         for s in steps]  # fmt: skip
            builder = EnvironmentBuilder(self.yijian.bundle, lang, say)
            result.outcomes = fixes.run(self.yijian.bundle, steps, lang=lang, builder=builder, confirm=confirm,
                                        say=say)  # fmt: skip
            if any(o.status in ("done", "failed") for o in result.outcomes):
                say(self._tr(lang, "复查……", "checking again…"))
                result.after = report.examine(self.yijian.bundle, lang)
        except Exception as e:  # shown on the page, which stays usable
            result.error = e
        self.post_message(Fixed(result))

    @staticmethod
    def _tr(lang: str, zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    def _confirm_screen(self, step: Step, lang: str) -> ConfirmScreen:
        codes = ", ".join(step.codes)
        return ConfirmScreen(
            self._tr(lang, "确认修复", "Confirm the fix"),
            self._tr(
                lang,
                f"将要：{step.what('zh')}\n针对：{codes}\n\n要继续吗？",
                f"This will {step.what('en')}.\nFor: {codes}\n\nGo ahead?",
            ),  # fmt: skip
            t("fix", lang),
            self._tr(lang, "取消", "Cancel"),
        )

    def on_fix_line(self, message: FixLine) -> None:
        self.query_one("#trouble-fix-log", RichLog).write(RichText(message.line))

    def on_fixed(self, message: Fixed) -> None:
        r = message.result
        self.fixing = self.env_fixing = False
        self.result = r
        if r.after is not None:
            self.generation += 1  # an examination still in flight is older than this one
            self.checking = False
            self.exam, self.exam_error, self.exam_lang = r.after, None, r.lang
        self._draw_result()
        self._draw_doctor()
        self._draw_logs()
        if r.after is not None and r.lang != self.lang:
            self.recheck()
        if any(o.step.action is not None and o.step.action.kind == "environment" and o.status == "done"
               for o in r.outcomes):  # fmt: skip
            self._environment_changed()

    def _environment_changed(self) -> None:
        """Other pages that show the environment read it again."""
        self.yijian.state_changed("environment")

    def _draw_result(self) -> None:
        box = self.query_one("#trouble-fixes", Static)
        r = self.result
        if r is None:
            box.update(RichText(self.notice, style="yellow"))
            box.display = bool(self.notice)
            return
        box.display = True
        out = RichText()
        out.append(self.tr("修复结果：", "What the fixes did:") + "\n", style="bold")
        if r.error is not None:
            out.append("✗ " + self.tr("修复没有完成：", "The fixes did not finish: ") + error_text(r.error, self.lang)
                       + "\n", style="red")  # fmt: skip
        if not r.outcomes and r.error is None:
            out.append(self.tr("没有需要修复的问题。", "Nothing to fix.") + "\n")
        for o in r.outcomes:
            self._outcome(out, o)
        if r.after is not None:
            before = {f.code: f.title for f in r.targets}
            now = {f.code for f in r.after.findings}
            same_lang = r.lang == self.lang  # the titles are in the language the fix ran in

            def name(code: str) -> str:
                return self.tr(f"{before[code]}（{code}）", f"{before[code]} ({code})") if same_lang else code

            fixed = [name(c) for c in before if c not in now]
            left = [name(c) for c in before if c in now]
            if fixed and not r.from_log:
                out.append(self.tr("已解决：", "Fixed: ") + self.tr("、", ", ").join(fixed) + "\n", style="green")
            if left and not r.from_log:
                out.append(self.tr("仍存在：", "Still there: ") + self.tr("、", ", ").join(left) + "\n", style="yellow")
        if r.from_log and any(o.status == "done" for o in r.outcomes):
            out.append(self.tr("日志里的旧记录不会消失；改动在下次启动生成界面时生效。",
                               "The old log still shows the problem; the change applies the next time the UI "
                               "starts.") + "\n")  # fmt: skip
        box.update(out)

    def _outcome(self, out: RichText, o: Outcome) -> None:
        mark, zh, en = OUTCOME.get(o.status, ("·", o.status, o.status))
        style = {"done": "green", "failed": "red", "declined": "yellow"}.get(o.status, "")
        out.append(f"{mark} [{self.tr(zh, en)}] ", style=style)
        out.append(o.step.what(self.lang) + "\n")
        for change in o.changes:
            out.append(f"    {change}\n", style="dim")
        if o.error is not None:
            out.append("    " + error_text(o.error, self.lang).replace("\n", "\n    ") + "\n", style="red")

    # --- the diagnostic bundle --------------------------------------------------------------------------------
    @on(Button.Pressed, "#trouble-sysinfo")
    def _sysinfo(self) -> None:
        if self.writing_bundle:
            return
        self.writing_bundle, self.bundle_path, self.bundle_error = True, None, None
        self.query_one("#trouble-sysinfo", Button).disabled = True
        self._draw_bundle()
        self.write_sysinfo()

    @work(thread=True, exclusive=True, group="trouble-sysinfo", exit_on_error=False)
    def write_sysinfo(self) -> None:
        from launcher.doctor import report
        from launcher.doctor.sysinfo import write_bundle

        bundle = self.yijian.bundle
        out = bundle.logs_dir / f"sysinfo-{time.strftime('%Y%m%d-%H%M%S')}.zip"
        try:
            path, error = write_bundle(bundle, out, report.examine(bundle, "en").to_json()), None
        except Exception as e:  # shown on the page, which stays usable
            path, error = None, e
        self.post_message(BundleWritten(path, error))

    def on_bundle_written(self, message: BundleWritten) -> None:
        self.writing_bundle = False
        self.bundle_path, self.bundle_error = message.path, message.error
        self.query_one("#trouble-sysinfo", Button).disabled = False
        self._draw_bundle()

    def _draw_bundle(self) -> None:
        box = self.query_one("#trouble-sysinfo-result", Static)
        if self.writing_bundle:
            box.update(self.tr("正在生成诊断包……", "Writing the diagnostic bundle…"))
        elif self.bundle_path is not None:
            box.update(RichText(self.tr(f"诊断包已生成（已去除令牌、密码和用户名），可直接附在问题报告里：\n{self.bundle_path}",
                                        "Diagnostic bundle written (secrets and user names removed), ready to attach "
                                        f"to a bug report:\n{self.bundle_path}"), style="green"))  # fmt: skip
        elif self.bundle_error is not None:
            box.update(RichText("✗ " + self.tr("诊断包没有生成：", "The diagnostic bundle was not written: ")
                                + error_text(self.bundle_error, self.lang), style="red"))  # fmt: skip
        box.display = self.writing_bundle or self.bundle_path is not None or self.bundle_error is not None
