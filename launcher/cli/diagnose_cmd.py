"""``yijian diagnose FILE|-``: name the known errors in a console log.

The findings are held against what the doctor's probe sees in this bundle's
environment (a log that says "CPU torch" while the environment's torch has
CUDA is old or from elsewhere); when nothing known matches, the answer says
what the log does show and what to include when asking for help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json
from launcher.cli.parser import add_json_flag


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("diagnose", help=t("分析报错日志，说出原因与修复", "read an error log and name the cause and fix"),
                       description=t("读取控制台日志或报错信息（文件，或 - 表示标准输入），找出已知问题，先说根本原因。"
                                     "退出码：0 没有问题，1 只有警告，2 有错误。",
                                     "Reads a console log or traceback (a file, or - for standard input), finds known "
                                     "problems and leads with the root cause. Exit code: 0 none, 1 warnings, 2 errors."),
                       lang=lang)  # fmt: skip
    p.add_argument("file", metavar=t("文件", "FILE"), help=t("日志文件，或 -", "the log file, or -"))
    add_json_flag(p, lang)
    p.set_defaults(handler=diagnose)


def read_log(name: str) -> str:
    """A log as text: UTF-8, else the GBK that Chinese Windows consoles write."""
    from pathlib import Path

    from launcher.errors import UsageError

    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gbk", errors="replace")


def probe_machine(bundle: Any) -> Any:
    """The facts of this bundle's environment, from the doctor's own probe; None without an environment."""
    from bootstrap.builder.build import runtime_env
    from launcher.diagnosis.machine import from_probe
    from launcher.doctor.envprobe import probe_environment

    env = probe_environment(runtime_env(bundle))
    return from_probe(env.facts) if env.state == "ok" else None


def diagnose(ctx: Context, args: argparse.Namespace, probe: Callable[[Any], Any] = probe_machine) -> int:
    from launcher.doctor.scanner import exit_code, scan

    findings = scan(read_log(args.file), ctx.lang, machine=probe(ctx.bundle), summary=True)
    if args.json:
        emit_json({"findings": [f.to_dict() for f in findings]})
        return exit_code(findings)
    if not findings:
        print(ctx.t("日志里没有出错的迹象，也没有发现已知问题。", "The log shows no failure and no known problem."))
    marks = {"error": ctx.t("错误", "error"), "warning": ctx.t("警告", "warning"), "info": ctx.t("提示", "info")}
    sure = {
        "high": ctx.t("把握大", "likely"),
        "medium": ctx.t("把握中等", "probable"),
        "low": ctx.t("把握小", "possible"),
    }
    for f in findings:
        print(
            f"[{marks[f.severity]}] {f.code}: {f.title}"
            + ("" if f.code == "LOG_SUMMARY" else f" ({sure[f.confidence]})")
        )
        print("    " + f.detail)
        print("    " + ctx.t("修复：", "Fix: ") + f.fix)
    return exit_code(findings)
