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
    add_json_flag(p, lang)
    p.set_defaults(handler=doctor)


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    from bootstrap.builder.build import runtime_env
    from bootstrap.builder.install import uv_bin
    from bootstrap.builder.state import read_stamp
    from launcher import config
    from launcher.doctor.checks import Facts, evaluate
    from launcher.doctor.envprobe import EnvFacts, probe_environment
    from launcher.doctor.scanner import exit_code
    from launcher.hardware.system import probe_hardware
    from launcher.packs.catalog import load_packs

    cfg = config.load(ctx.bundle)
    hardware = probe_hardware(ctx.bundle.root)
    env_dir = runtime_env(ctx.bundle)
    env = EnvFacts("skipped", str(env_dir)) if args.no_env else probe_environment(env_dir, uv=uv_bin())
    packs = load_packs(ctx.bundle.packs_dir)
    pack = packs.get(str(read_stamp(env_dir).get("pack", "")))
    facts = Facts(ctx.bundle, hardware, env, pack, cfg.get_int("launch.port"))
    findings = evaluate(facts, ctx.lang)
    if args.json:
        emit_json({"hardware": hardware.to_dict(), "environment": env.to_dict(), "pack": pack.id if pack else None,
                   "findings": [f.to_dict() for f in findings]})  # fmt: skip
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
