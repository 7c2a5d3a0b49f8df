"""``yijian diagnose FILE|-``: name the known errors in a console log."""

from __future__ import annotations

import argparse
import sys
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


def diagnose(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.doctor.scanner import exit_code, scan

    findings = scan(read_log(args.file), ctx.lang)
    if args.json:
        emit_json({"findings": [f.to_dict() for f in findings]})
        return exit_code(findings)
    if not findings:
        print(ctx.t("没有发现已知问题。", "No known problem found."))
    marks = {"error": ctx.t("错误", "error"), "warning": ctx.t("警告", "warning"), "info": ctx.t("提示", "info")}
    for f in findings:
        print(f"[{marks[f.severity]}] {f.code}: {f.title}")
        print("    " + f.detail)
        print("    " + ctx.t("修复：", "Fix: ") + f.fix)
    return exit_code(findings)
