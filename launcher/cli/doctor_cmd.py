"""``yijian doctor``: hardware, the environment and the bundle, checked in one report."""

from __future__ import annotations

import argparse
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
    p.add_argument(
        "--fix", action="store_true", help=t("自动应用安全的修复（尚未完成）", "apply the safe fixes (not built yet)")
    )
    add_json_flag(p, lang)
    p.set_defaults(handler=doctor)


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.doctor.report import examine
    from launcher.doctor.scanner import exit_code
    from launcher.errors import NotBuiltYet

    if args.fix:
        plan = ctx.t(
            "每条发现已给出修复命令，现在请手动运行", "each finding names its fix command; run it by hand for now"
        )
        raise NotBuiltYet(feature="doctor --fix", plan=plan)
    result = examine(ctx.bundle, ctx.lang, probe_env=not args.no_env)
    hardware, env, pack, findings = result.hardware, result.env, result.pack, result.findings
    if args.json:
        emit_json(result.to_json())
        return exit_code(findings)
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
    print()
    marks = {"error": ctx.t("错误", "error"), "warning": ctx.t("警告", "warning"), "info": ctx.t("提示", "info")}
    for f in findings:
        print(f"[{marks[f.severity]}] {f.code}: {f.title}")
        print("    " + f.detail)
        print("    " + ctx.t("修复：", "Fix: ") + f.fix)
    if not findings:
        print(ctx.t("一切正常。", "Everything looks fine."))
    return exit_code(findings)


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
