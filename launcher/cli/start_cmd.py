"""``yijian start``: one-click start without the TUI (for SSH and servers).

Each step prints one line as it starts and ends, long work draws a tqdm bar,
and the last line is the URL.  The runtime's own output goes to
``logs/runtime.log`` (``--verbose`` also prints it here).  Ctrl-C stops the
runtime and exits cleanly; a runtime that dies is diagnosed from its log.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import say


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("start", help=t("无界面一键启动（适合 SSH/服务器）", "one-click start without the TUI (for SSH and servers)"),
                       description=t("预检、硬件、环境包、生成环境、模型、启动、等待就绪、打开浏览器，一步接一步；每一步失败都会给出原因与修复。-- 之后的参数交给生成界面（A1111 的 --xformers、--medvram 等照用）。",
                                     "Preflight, hardware, pack, environment, model, launch, ready, browser, one after the "
                                     "other; a failing step shows its cause and fix. Arguments after -- go to the "
                                     "generation UI (A1111's --xformers, --medvram … work)."), lang=lang)  # fmt: skip
    p.add_argument(
        "--pack", help=t("环境包 id 或 auto（默认取 setup.pack）", "a pack id or auto (default: setup.pack)")
    )
    p.add_argument("--port", type=int, help=t("端口（默认取 launch.port）", "port (default: launch.port)"))
    p.add_argument("--demo", action="store_true", help=t("用随机权重的演示模型", "use the random-weight demo model"))
    p.add_argument("--no-browser", action="store_true", help=t("不打开浏览器", "do not open the browser"))
    p.add_argument(
        "--verbose", action="store_true", help=t("同时显示生成界面的输出", "also print the runtime's output")
    )
    p.add_argument("--webui-user", metavar="FILE",
                   help=t("A1111 的 webui-user.bat/.sh：用其中的 COMMANDLINE_ARGS", "an A1111 webui-user.bat/.sh: its COMMANDLINE_ARGS apply"))  # fmt: skip
    p.add_argument("--timeout", type=float, default=600.0, help=argparse.SUPPRESS)
    p.add_argument("runtime_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(handler=start)


class _Printer:
    """Step lines and tqdm bars for the update stream."""

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.bar_step = ctx, ""
        self.bar: Any = None

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, u: Any) -> None:
        from launcher.oneclick import STEP_IDS

        n, total = u.index + 1, len(STEP_IDS)
        title = u.title.text(self.ctx.lang)
        if u.state == "progress" and u.total:
            if self.bar is None or self.bar_step != u.step:
                from tqdm import tqdm

                self.close_bar()
                self.bar = tqdm(total=u.total, unit="B", unit_scale=True, unit_divisor=1024, desc=title,
                                dynamic_ncols=True, file=sys.stderr)  # fmt: skip
                self.bar_step = u.step
            self.bar.n = u.done or 0
            self.bar.refresh()
            return
        self.close_bar()
        text = u.message.text(self.ctx.lang) if u.message else ""
        mark = {"running": "…", "done": "✓", "skipped": "–", "failed": "✗", "progress": " "}[u.state]
        if u.state == "running":
            say(f"[{n}/{total}] {title} …")
        elif text:
            say(f"[{n}/{total}] {mark} {text}" if u.state != "progress" else f"        {text}")
        for f in u.findings:
            say(f"    [{f.code}] {f.title}: {f.detail}\n    {self.ctx.t('修复：', 'Fix: ')}{f.fix}")


def start(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.runtime_process import stop_on_signals

    with stop_on_signals():  # a SIGTERM/SIGHUP to the launcher stops the runtime too
        return _start(ctx, args)


def _start(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.cli.launch_cmd import report_exit
    from launcher.oneclick import OneClick, OneClickOptions

    printer = _Printer(ctx)
    options = OneClickOptions(pack=args.pack or "setting", demo=args.demo, port=args.port,
                              open_browser=False if args.no_browser else None, ready_timeout=args.timeout,
                              passthrough=tuple(a for a in (args.runtime_args or []) if a != "--"),
                              webui_user=args.webui_user)  # fmt: skip
    flow = OneClick(ctx.bundle, ctx.lang, printer, options, on_line=print if args.verbose else None)
    try:
        process = flow.run()
        say(ctx.t(f"生成界面：{flow.url}（按 Ctrl+C 停止）", f"Generation UI: {flow.url} (Ctrl+C stops it)"))
        rc = process.wait()
    except KeyboardInterrupt:
        flow.stop()
        say(ctx.t("已停止生成界面。", "The generation UI has stopped."))
        return 0
    finally:
        printer.close_bar()
    return report_exit(ctx, process, rc)
