"""``yijian doctor``: hardware, the environment and the bundle, checked in one report."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json
from launcher.cli.parser import add_json_flag


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("doctor", help=t("检查显卡、驱动与环境，给出修复", "check the GPU, driver and environment, and offer fixes"),
                       description=t("检查显卡、驱动、生成环境和整合包，用大白话说出问题与修复。退出码：0 正常，1 有警告，2 有错误。",
                                     "Checks the GPU, driver, generation environment and bundle, and names problems and fixes "
                                     "in plain words. Exit code: 0 ok, 1 warnings, 2 errors."), lang=lang)  # fmt: skip
    p.add_argument(
        "--no-env", action="store_true", help=t("不检查生成环境（更快）", "skip the environment probe (faster)")
    )
    p.add_argument("--network", action="store_true",
                   help=t("现在探测正在使用的 PyPI、torch 和模型下载源（约一个测速超时）；默认只读上次测速的结果",
                          "probe the PyPI, torch and model endpoints in use now (about one probe timeout); "
                          "by default only the last measurement is read"))  # fmt: skip
    p.add_argument("--fix", action="store_true",
                   help=t("应用安全的修复（修改设置、重新测速镜像、修复或重建环境；从不动模型和图片），然后复查",
                          "apply the safe fixes (settings, mirror measurements, repairing or rebuilding the "
                          "environment; models and images are never touched), then check again"))  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help=t("与 --fix 一起用：只列出会做的修复", "with --fix: only list the fixes it would apply"))  # fmt: skip
    add_json_flag(p, lang)
    p.set_defaults(handler=doctor)


def _print_findings(ctx: Context, findings: list[Any]) -> None:
    marks = {"error": ctx.t("错误", "error"), "warning": ctx.t("警告", "warning"), "info": ctx.t("提示", "info")}
    for f in findings:
        print(f"[{marks[f.severity]}] {f.code}: {f.title}")
        print("    " + f.detail)
        print("    " + ctx.t("修复：", "Fix: ") + f.fix)
    if not findings:
        print(ctx.t("一切正常。", "Everything looks fine."))


def _print_report(ctx: Context, result: Any) -> None:
    hardware, env, pack, findings = result.hardware, result.env, result.pack, result.findings
    nv = hardware.nvidia
    gpus = ", ".join(f"{g.name} ({g.sm}, {g.memory_total_mib or '?'} MiB)" for g in nv.gpus) or ctx.t("无", "none")
    print(ctx.t(f"显卡：{gpus}", f"GPU: {gpus}"))
    if nv.driver_version:
        print(
            ctx.t(
                f"驱动：{nv.driver_version}（CUDA {nv.cuda_driver}）",
                f"Driver: {nv.driver_version} (CUDA {nv.cuda_driver})",
            )
        )
    t = env.facts.get("torch") or {}
    state = {
        "ok": ctx.t("正常", "ok"),
        "missing": ctx.t("未安装", "not built"),
        "skipped": ctx.t("未检查", "not checked"),
    }
    print(ctx.t("环境：", "Environment: ") + state.get(env.state, env.state)
          + (f" · torch {t.get('version')} (CUDA {t.get('cuda')})" if t else "")
          + (f" · {ctx.t('环境包', 'pack')} {pack.id}" if pack else ""))  # fmt: skip
    net = result.network
    if net is not None:
        how = {"live": ctx.t("刚刚探测", "probed now"), "cache": ctx.t("上次测速的结果", "from the last measurement"),
               "none": ctx.t("未测速（加 --network 现在探测）", "not measured (add --network to probe now)"),
               "offline": ctx.t("离线模式", "offline mode")}  # fmt: skip
        used = ", ".join(f"{e.channel} {e.id}" for e in net.endpoints if e.chosen)
        print(ctx.t("网络：", "Network: ") + how.get(net.source, net.source) + (f" · {used}" if used else ""))
    print()
    _print_findings(ctx, findings)


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.doctor.report import examine
    from launcher.doctor.scanner import exit_code
    from launcher.errors import UsageError

    if args.dry_run and not args.fix:
        raise UsageError(ctx.t("--dry-run 只能与 --fix 一起使用", "--dry-run goes with --fix"))
    if args.fix:
        return _fix(ctx, args)
    result = examine(ctx.bundle, ctx.lang, probe_env=not args.no_env, network=args.network)
    if args.json:
        emit_json(result.to_json())
    else:
        _print_report(ctx, result)
    return exit_code(result.findings)


def _confirm(ctx: Context) -> Any:
    """Ask on a terminal before an action not marked safe; elsewhere the answer is no."""
    import sys

    def ask(step: Any) -> bool:
        if not sys.stdin.isatty():
            return False
        answer = input(ctx.t(f"要{step.what('zh')}吗？[y/N] ", f"{step.what('en')}? [y/N] "))
        return answer.strip().lower() in ("y", "yes", "是")

    return ask


def _fix(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.cli.output import say
    from launcher.doctor.fixes import fix
    from launcher.doctor.scanner import exit_code

    report = fix(ctx.bundle, lang=ctx.lang, dry_run=args.dry_run, probe_env=not args.no_env, network=args.network,
                 confirm=_confirm(ctx), say=say)  # fmt: skip
    if args.json:
        emit_json(report.to_json(ctx.lang))
    else:
        _print_fixes(ctx, report)
    if report.failed:
        error = report.failed[0].error
        return int(error.exit_code) if error is not None else 1
    return exit_code((report.after or report.before).findings)


def _print_fixes(ctx: Context, report: Any) -> None:
    label = {"planned": ctx.t("将执行", "would run"), "done": ctx.t("已完成", "done"),
             "unchanged": ctx.t("无需改动", "nothing to change"), "failed": ctx.t("失败", "failed"),
             "declined": ctx.t("未确认，跳过", "not confirmed, skipped"), "optional": ctx.t("可选", "optional"),
             "manual": ctx.t("需手动", "manual")}  # fmt: skip
    if report.after is None:
        _print_report(ctx, report.before)
        print()
    print(ctx.t("修复：", "Fixes:") if report.outcomes else ctx.t("没有需要修复的问题。", "Nothing to fix."))
    for o in report.outcomes:
        codes = ", ".join(o.step.codes)
        head = f"{o.step.action.id} ({codes})" if o.step.action else codes
        print(f"  [{label[o.status]}] {head}: {o.step.what(ctx.lang)}")
        for change in o.changes:
            print(f"      {change}")
        if o.error is not None:
            print(textwrap.indent(f"[{o.error.code}] {o.error.message(ctx.lang)}\n{o.error.hint(ctx.lang)}", " " * 6))
    if report.after is None:
        return
    fixed, _, new = report.codes()
    print()
    if fixed:
        print(ctx.t(f"已解决：{', '.join(fixed)}", f"Fixed: {', '.join(fixed)}"))
    if new:
        print(ctx.t(f"新出现：{', '.join(new)}", f"New: {', '.join(new)}"))
    print(ctx.t("复查结果：", "Checked again:"))
    _print_findings(ctx, report.after.findings)


def register_sysinfo(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("sysinfo", help=t("生成诊断包（已去除隐私）", "write a redacted diagnostic bundle"),
                       description=t("把硬件与环境信息、检查结果、设置和最近的日志打包成 zip，令牌、密码、代理账号和用户名都已去除，可直接附在问题报告里。",
                                     "Zips hardware and environment facts, the doctor's findings, the settings and recent logs, "
                                     "with tokens, passwords, proxy credentials and user names removed, ready for a bug report."),
                       lang=lang)  # fmt: skip
    p.add_argument("--out", help=t("zip 文件的位置（默认 logs/ 下）", "where to write the zip (default: under logs/)"))
    add_json_flag(p, lang)
    p.set_defaults(handler=sysinfo)


def sysinfo(ctx: Context, args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from launcher.doctor.report import examine
    from launcher.doctor.sysinfo import write_bundle

    out = Path(args.out) if args.out else ctx.bundle.logs_dir / f"sysinfo-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    path = write_bundle(ctx.bundle, out, examine(ctx.bundle, "en").to_json())
    if args.json:
        emit_json({"path": str(path)})
    else:
        print(
            ctx.t(
                f"诊断包已生成（已去除令牌、密码和用户名）：{path}",
                f"Diagnostic bundle written (secrets and user names removed): {path}",
            )
        )
    return 0
