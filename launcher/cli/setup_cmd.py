"""``yijian setup``: build or check the generation environment for a pack."""

from __future__ import annotations

import argparse
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say
from launcher.cli.parser import add_json_flag


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("setup", help=t("按显卡与驱动构建生成环境", "build the generation environment for this GPU and driver"),
                       description=t("选好环境包（或用 --pack 指定），通过镜像安装 Python、torch 组件与运行依赖；已符合时什么都不做。",
                                     "Picks the pack (or takes --pack), installs Python, the torch trio and the runtime "
                                     "through the mirrors; does nothing when everything already holds."), lang=lang)  # fmt: skip
    p.add_argument(
        "--pack", help=t("环境包 id，或 auto（默认取 setup.pack）", "a pack id, or auto (default: setup.pack)")
    )
    p.add_argument(
        "--installer",
        choices=("uv", "pip"),
        help=t("安装器（默认取 setup.installer）", "installer (default: setup.installer)"),
    )
    p.add_argument("--dry-run", action="store_true", help=t("只显示计划，不做改动", "show the plan, change nothing"))
    p.add_argument(
        "--rebuild",
        action="store_true",
        help=t("即使环境已符合也重新构建", "rebuild even when the environment already holds"),
    )
    p.add_argument("--repair", choices=("xformers", "torch"),
                   help=t("修复：重装匹配的 xformers，或重装整组 torch", "repair: reinstall the matching xformers, or the whole torch trio"))  # fmt: skip
    add_json_flag(p, lang)
    p.set_defaults(handler=setup)


def setup(ctx: Context, args: argparse.Namespace) -> int:
    from bootstrap.builder.build import Event, build
    from launcher.environment import EnvironmentBuilder

    builder = EnvironmentBuilder(ctx.bundle, ctx.lang, say)
    cfg, plan, env = builder.prepare(args.pack or "setting", measure=not args.dry_run, installer=args.installer)
    if builder.choice is not None and not args.json:
        for line in builder.choice.reasons_zh if ctx.lang == "zh" else builder.choice.reasons_en:
            say(line)
    if args.dry_run:
        if args.json:
            emit_json(plan.to_json())
        else:
            _print_plan(ctx, plan)
        return 0
    if not plan.noop or args.rebuild or args.repair:
        builder.require_sources(cfg, plan)
    bar: Any = None

    def on_event(e: Event) -> None:
        nonlocal bar
        if args.json:
            return
        if e.step == "prefetch" and e.total:
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(
                    total=e.total, unit="B", unit_scale=True, unit_divisor=1024, desc="torch", dynamic_ncols=True
                )
            bar.n = e.done or 0
            bar.refresh()
            return
        if bar is not None:
            bar.close()
            bar = None
        say(e.text(ctx.lang))

    try:
        if args.repair:
            from bootstrap.builder.build import repair

            stamp = repair(ctx.bundle, plan, args.repair, base_env=env, on_event=on_event, lang=ctx.lang)
        else:
            stamp = build(ctx.bundle, plan, base_env=env, on_event=on_event, lang=ctx.lang, force=args.rebuild)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        emit_json({"env": str(plan.env), "noop": plan.noop and not (args.rebuild or args.repair), "stamp": stamp})
    return 0


def _print_plan(ctx: Context, plan: Any) -> None:
    d = plan.to_json()
    p = d["pack"]
    print(
        ctx.t(
            f"环境包：{p['id']}（torch {p['torch']}，{p['cuda']}）",
            f"pack: {p['id']} (torch {p['torch']}, {p['cuda']})",
        )
    )
    print(ctx.t(f"环境：{d['env']}", f"environment: {d['env']}"))
    py = d["python"]
    print(f"Python: {py.get('version', d['pack']['python'])} ({py.get('source')}) {py.get('path', '')}".rstrip())
    if plan.python_plan is not None:
        say(plan.python_plan.note(ctx.lang))
    print(ctx.t(f"PyPI 源：{d['indexes']['pypi']['url']}", f"PyPI index: {d['indexes']['pypi']['url']}"))
    print(ctx.t(f"torch 源：{d['indexes']['torch']['url']}", f"torch index: {d['indexes']['torch']['url']}"))
    for w in d["big_wheels"]:
        print(ctx.t(f"预先下载：{w['filename']}", f"prefetch: {w['filename']}"))
    for n in d["notes"]:
        say(n)
    if d["noop"]:
        print(ctx.t("已全部符合，无需改动。", "Everything already holds; nothing to do."))
    else:
        print(ctx.t(f"需要安装：{', '.join(d['unmet'])}", f"to install: {', '.join(d['unmet'])}"))
