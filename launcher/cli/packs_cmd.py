"""``yijian packs list|show ID|explain``."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, table
from launcher.cli.parser import add_json_flag
from launcher.errors import UsageError

if TYPE_CHECKING:
    from launcher.hardware.nvidia import Hardware
    from launcher.packs.catalog import PackSet
    from launcher.packs.resolver import Choice

# The handlers import what they use, so that building the parser (on every start) stays cheap.


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("packs", help=t("环境包：列表、详情、选择理由", "environment packs: list, show, explain the choice"),
                       description=t("环境包是一组已知能一起工作的 Python、CUDA 版 torch、torchvision 和 xformers。一键按显卡和驱动自动选择。",
                                     "A pack is a Python, CUDA torch, torchvision and xformers known to work together. "
                                     "Yijian picks one for your GPU and driver."), lang=lang)  # fmt: skip
    verbs = p.add_subparsers(dest="verb", metavar=t("操作", "ACTION"), title=t("操作", "actions"), required=True)

    ls = verbs.add_parser("list", help=t("列出所有环境包", "list every pack"), lang=lang)
    add_json_flag(ls, lang)
    ls.set_defaults(handler=list_)

    sh = verbs.add_parser("show", help=t("显示一个环境包的全部内容", "show everything about one pack"), lang=lang)
    sh.add_argument("id", metavar="ID", help=t("环境包 id，如 cu128", "the pack id, e.g. cu128"))
    add_json_flag(sh, lang)
    sh.set_defaults(handler=show)

    ex = verbs.add_parser("explain", help=t("为这台电脑选择环境包，并说明理由", "choose the pack for this machine and say why"),
                          description=t("不带参数时读取本机的显卡和驱动；给出 --gpu、--cc 或 --driver 时，解释一台假设的电脑。",
                                        "Without options it reads this machine's GPUs and driver; with --gpu, --cc or "
                                        "--driver it explains a hypothetical machine."), lang=lang)  # fmt: skip
    ex.add_argument("--gpu", metavar=t("名称", "NAME"),
                    help=t("假设的显卡名称，如 \"RTX 3060\"；none 表示没有 NVIDIA 显卡", "a hypothetical GPU name, e.g. \"RTX 3060\"; none for no NVIDIA GPU"))  # fmt: skip
    ex.add_argument("--cc", metavar="X.Y", help=t("显卡的计算能力，如 8.6", "the GPU's compute capability, e.g. 8.6"))
    ex.add_argument("--vram", type=int, metavar="MiB", help=t("显存（MiB）", "its memory in MiB"))
    ex.add_argument("--driver", metavar=t("版本", "VERSION"), help=t("驱动版本，如 572.16", "the driver version, e.g. 572.16"))  # fmt: skip
    ex.add_argument("--cuda-driver", metavar="X.Y",
                    help=t("驱动支持的最高 CUDA 版本（nvidia-smi 表头），如 12.8", "the highest CUDA the driver supports (nvidia-smi's header), e.g. 12.8"))  # fmt: skip
    ex.add_argument("--os", choices=("linux", "windows"), help=t("按这个系统判断（默认本机）", "judge for this OS (default: this one)"))  # fmt: skip
    add_json_flag(ex, lang)
    ex.set_defaults(handler=explain)


def _packs(ctx: Context) -> PackSet:
    from launcher.packs.catalog import load_packs

    return load_packs(ctx.bundle.packs_dir)


def list_(ctx: Context, args: argparse.Namespace) -> int:
    packs = _packs(ctx).all()
    if args.json:
        emit_json({"packs": [p.to_dict(ctx.lang) for p in packs]})
        return 0
    rows = [(p.id, p.title(ctx.lang), p.torch, p.xformers or "-", f"Python {p.python}", ", ".join(p.os)) for p in packs]
    print(table(("id", ctx.t("名称", "title"), "torch", "xformers", "Python", ctx.t("系统", "OS")), rows))
    return 0


def show(ctx: Context, args: argparse.Namespace) -> int:
    packs = _packs(ctx)
    pack = packs.require(args.id)
    runtime = packs.runtime_requirements(pack)
    if args.json:
        emit_json(
            {**pack.to_dict(ctx.lang), "pins": {o: pack.pins(o) for o in pack.os},
             "optional_pins": {o: pack.optional_pins(o) for o in pack.os}, "runtime_requirements": runtime}
        )
        return 0
    none = ctx.t("无", "none")
    kept = ctx.t("（可选：能装上且通过自检才保留）", " (optional: kept where it installs and passes the self-check)")
    mark = lambda part, version: (version + kept if part in pack.optional else version) if version else none  # noqa: E731
    arch = lambda sass, ptx: " ".join([*sass, *(f"{a}+PTX" for a in ptx)]) or none  # noqa: E731
    rows = [
        ("Python", pack.python), ("CUDA", pack.cuda), ("torch", pack.torch),
        ("torchvision", mark("torchvision", pack.torchvision)), ("xformers", mark("xformers", pack.xformers)),
        ("xformers (Windows)", mark("xformers", pack.xformers_for("windows"))),
        (ctx.t("torch 架构", "torch arch"), arch(pack.torch_arch, pack.torch_ptx)),
        (ctx.t("xformers 架构", "xformers arch"), arch(pack.xformers_arch, pack.xformers_ptx)),
        (ctx.t("最低驱动 Linux", "min driver Linux"), pack.min_driver_linux or none),
        (ctx.t("最低驱动 Windows", "min driver Windows"), pack.min_driver_windows or none),
        (ctx.t("系统", "OS"), ", ".join(pack.os)), (ctx.t("优先级", "priority"), str(pack.priority)),
    ]  # fmt: skip
    print(f"{pack.id}: {pack.title(ctx.lang)}\n")
    print(table((ctx.t("项目", "item"), ctx.t("值", "value")), rows))
    print("\n" + ctx.t("运行时依赖（所有环境包相同）：", "Runtime requirements (shared by every pack):"))
    print("  " + "\n  ".join(runtime))
    print("\n" + pack.notes(ctx.lang))
    return 0


def _given(ctx: Context, args: argparse.Namespace) -> Hardware:
    """The hypothetical machine of ``--gpu/--cc/--driver``."""
    from launcher.hardware.nvidia import given_gpu, given_hardware, host_os

    os_name = args.os or host_os()
    if args.gpu is not None and args.gpu.strip().lower() == "none":
        return given_hardware(os_name)
    if not args.driver:
        raise UsageError(ctx.t("解释假设的电脑时需要 --driver（如 --driver 572.16）",
                               "a hypothetical machine needs --driver (e.g. --driver 572.16)"))  # fmt: skip
    cc = None
    if args.cc:
        m = re.fullmatch(r"(\d+)\.(\d+)", args.cc.strip())
        if m is None:
            raise UsageError(ctx.t(f"--cc 应写成 X.Y（如 8.6），而不是 {args.cc!r}",
                                   f"--cc must look like X.Y (e.g. 8.6), not {args.cc!r}"))  # fmt: skip
        cc = (int(m.group(1)), int(m.group(2)))
    gpu = given_gpu(args.gpu or ctx.t("NVIDIA 显卡", "NVIDIA GPU"), cc, args.vram)
    if gpu.capability is None:
        raise UsageError(ctx.t(f"不认识「{args.gpu}」的计算能力：请加 --cc（如 --cc 8.6）",
                               f"the compute capability of {args.gpu!r} is not known: add --cc (e.g. --cc 8.6)"))  # fmt: skip
    return given_hardware(os_name, args.driver.strip(), [gpu], args.cuda_driver)


def _print_choice(ctx: Context, choice: Choice) -> None:
    hw, p = choice.hardware, choice.chosen
    cuda = f" (CUDA {hw.cuda_driver})" if hw.cuda_driver else ""
    driver = ctx.t(f"驱动 {hw.driver_version}{cuda}", f"driver {hw.driver_version}{cuda}") if hw.driver_version else ""
    source = {"none": ctx.t("没有 nvidia-smi", "no nvidia-smi"), "given": ctx.t("假设的电脑", "hypothetical")}
    print(ctx.t("电脑：", "Machine: ") + " · ".join(x for x in (hw.os, driver, source.get(hw.source, hw.source)) if x))
    for g in hw.gpus:
        memory = f"{g.memory_total_mib} MiB" if g.memory_total_mib else ""
        print(f"  GPU {g.index}  {g.name}  {g.sm}  {memory}".rstrip())
    print("\n" + ctx.t("选择：", "Chosen: ") + f"{p.id}  {p.title(ctx.lang)}")
    optional = p.optional_pins(hw.os)
    print("  " + "  ".join(p.pins(hw.os) + [f"({o})" for o in optional]) + f"  Python {p.python}")
    for line in choice.reasons(ctx.lang):
        print(f"  - {line}")
    # What a driver update would bring is information, not a warning: its own section, each step on its line.
    warnings = [w for w in choice.warnings if w.code != "driver-update"]
    if choice.driver_gain:
        print("\n" + ctx.t("更新显卡驱动可以得到（不更新也能用）：", "A driver update would bring (not needed to run):"))
        for step in choice.driver_gain:
            print(f"  - {step.text(ctx.lang)}")
    if warnings:
        print("\n" + ctx.t("注意：", "Warnings:"))
        for w in warnings:
            print(f"  ! {w.text(ctx.lang)}")
    print("\n" + ctx.t("没有选择：", "Not chosen:"))
    for r in choice.rejected:
        print(f"  {r.id}: " + ctx.t("；", "; ").join(r.reasons(ctx.lang)))


def explain(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.hardware.nvidia import probe
    from launcher.packs.resolver import choose

    packs = _packs(ctx)
    hypothetical = any(x is not None for x in (args.gpu, args.cc, args.driver))
    hardware = _given(ctx, args) if hypothetical else probe(os_name=args.os)
    choice = choose(hardware, packs)
    if args.json:
        emit_json(choice.to_json(ctx.lang))
    else:
        _print_choice(ctx, choice)
    return 0
