"""``yijian models list|catalog|download|verify|scan``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say, table
from launcher.cli.parser import add_json_flag
from launcher.errors import ExitCode

KINDS = ("checkpoint", "lora", "vae", "embedding", "upscaler", "controlnet", "hypernetwork")


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("models", help=t("模型管理：列表、目录、下载、校验、扫描", "models: list, catalog, download, verify, scan"),
                       description=t("模型放在 models/ 下与 A1111 相同的文件夹中（Stable-diffusion、Lora、VAE、embeddings、ESRGAN）。",
                                     "Models live in A1111's folders under models/ (Stable-diffusion, Lora, VAE, embeddings, ESRGAN)."),
                       lang=lang)  # fmt: skip
    verbs = p.add_subparsers(dest="verb", metavar=t("操作", "ACTION"), title=t("操作", "actions"), required=True)

    ls = verbs.add_parser("list", help=t("列出已有的模型", "list the models you have"), lang=lang)
    add_json_flag(ls, lang)
    ls.set_defaults(handler=list_)

    sc = verbs.add_parser("scan", help=t("扫描模型：格式、架构、大小、哈希（有缓存）", "scan models: format, architecture, size, hash (cached)"), lang=lang)  # fmt: skip
    add_json_flag(sc, lang)
    sc.set_defaults(handler=scan)

    ca = verbs.add_parser(
        "catalog", help=t("可一键下载的常用模型", "well-known models you can download by name"), lang=lang
    )
    add_json_flag(ca, lang)
    ca.set_defaults(handler=catalog)

    dl = verbs.add_parser("download", help=t("下载模型（多线程、断点续传、校验）", "download a model (several connections, resumable, verified)"), lang=lang)  # fmt: skip
    dl.add_argument("target", metavar=t("名称或链接", "NAME_OR_LINK"),
                    help=t("模型目录中的名称；Civitai 模型页、civitai:ID@版本ID 或 AIR；魔搭模型仓库或文件链接；Hugging Face/hf-mirror 仓库或文件链接，或 组织/仓库/文件；直接的 https:// 文件地址",
                           "a catalog name; a Civitai model page, civitai:ID@VERSION or an AIR; a ModelScope repository or file link; a Hugging Face/hf-mirror repository or file link, or org/repo/file; a direct https:// file URL"))  # fmt: skip
    dl.add_argument("--file", default="", help=t("仓库或 Civitai 版本里有多个文件时，要下载的那个（文件名）", "which file, when a repository or Civitai version holds several (its name)"))  # fmt: skip
    dl.add_argument("--variant", default="", choices=("fp16", "fp32", "pruned", "full"),
                    help=t("Civitai：选择 fp16/fp32/pruned/full 版本的文件（默认取主文件）", "Civitai: the fp16/fp32/pruned/full file (default: the primary one)"))  # fmt: skip
    dl.add_argument(
        "--sha256", help=t("期望的 sha256（校验不符则不保存）", "the expected sha256 (a mismatch is never saved)")
    )
    dl.add_argument(
        "--connections",
        type=int,
        help=t("连接数（默认取 downloads.connections）", "connections (default: downloads.connections)"),
    )
    dl.add_argument("--to", type=Path, help=t("保存到这个文件夹", "save into this folder"))
    dl.add_argument("--name", help=t("保存的文件名", "the file name to save as"))
    dl.add_argument("--type", choices=KINDS, help=t("模型类型（决定保存的文件夹）", "model type (decides the folder)"))
    add_json_flag(dl, lang)
    dl.set_defaults(handler=download)

    ve = verbs.add_parser("verify", help=t("校验模型文件是否完整", "check that model files are whole"), lang=lang)
    ve.add_argument("paths", nargs="*", type=Path, help=t("要校验的文件（默认全部）", "files to check (default: all)"))
    add_json_flag(ve, lang)
    ve.set_defaults(handler=verify)


def _human(n: int | float | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# -- download -------------------------------------------------------------------------------------------------------


def _progress_bar(name: str, total: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name[:40], leave=True, dynamic_ncols=True
    )


def download(ctx: Context, args: argparse.Namespace) -> int:
    import threading

    from launcher import config

    # Importing requests takes a noticeable part of a second: let it overlap reading the settings.
    warm = threading.Thread(target=__import__, args=("launcher.downloads.engine",), daemon=True)
    warm.start()
    from launcher.models.fetch import ModelRequest, fetch_model

    cfg = config.load(ctx.bundle)
    warm.join()
    from launcher.downloads.progress import Progress

    bar: Any = None

    def on_plan(plan: Any) -> None:
        nonlocal bar
        bar = _progress_bar(args.name or plan.filename, plan.size, not args.json)

    def on_progress(p: Progress) -> None:
        if bar is None:
            return
        if bar.total is None and p.total:
            bar.total = p.total
        if p.stage == "verify":
            bar.set_description_str(ctx.t("校验中", "verifying"))
        bar.n = p.done
        bar.refresh()

    request = ModelRequest(args.target, sha256=args.sha256, folder=args.to, name=args.name, kind=args.type,
                           connections=args.connections, file=args.file, variant=args.variant)  # fmt: skip
    try:
        result = fetch_model(ctx.bundle, cfg, request, lang=ctx.lang, say=say, on_progress=on_progress, on_plan=on_plan)
    finally:
        if bar is not None:
            bar.close()
    out = {"path": str(result.path), "sha256": result.sha256, "size": result.size, "reused": result.reused,
           "fetched": result.fetched, "connections": result.connections, "url": result.url,
           "already_present": result.fetched == 0 and result.reused == result.size}  # fmt: skip
    if args.json:
        emit_json(out)
    elif out["already_present"]:
        print(ctx.t(f"已存在且校验通过，无需下载：{result.path}", f"Already present and verified: {result.path}"))
    else:
        print(
            ctx.t(
                f"已保存：{result.path}\nsha256 {result.sha256}（已校验）",
                f"Saved: {result.path}\nsha256 {result.sha256} (verified)",
            )
        )
    return 0


# -- library --------------------------------------------------------------------------------------------------------


def _scan(ctx: Context, with_hashes: bool) -> list[Any]:
    from launcher import config
    from launcher.models.library import scan as scan_library

    cfg = config.load(ctx.bundle)
    return scan_library(ctx.bundle, [Path(p) for p in cfg["models.extra_dirs"]], with_hashes=with_hashes)


def _print_models(ctx: Context, files: list[Any], with_hashes: bool) -> None:
    rows = []
    for f in files:
        d = f.to_dict()
        row = [d["folder"], Path(d["path"]).name, d["format"], d["architecture"] or "-", _human(d["size"])]
        if with_hashes:
            row.append(d["short_hash"] or "-")
        row.append("; ".join(d["problems"]) or ("shared" if d["shared"] else ""))
        rows.append(row)
    headers = [
        ctx.t("文件夹", "folder"),
        ctx.t("文件", "file"),
        ctx.t("格式", "format"),
        ctx.t("架构", "arch"),
        ctx.t("大小", "size"),
    ]
    if with_hashes:
        headers.append(ctx.t("哈希", "hash"))
    headers.append(ctx.t("提示", "notes"))
    if rows:
        print(table(headers, rows))
    else:
        print(ctx.t(f"{ctx.bundle.models_dir} 中还没有模型。试试 ./start.sh models download sd15",
                    f"No models in {ctx.bundle.models_dir} yet. Try ./start.sh models download sd15"))  # fmt: skip


def list_(ctx: Context, args: argparse.Namespace) -> int:

    files = _scan(ctx, with_hashes=False)
    if args.json:
        emit_json({"models": [f.to_dict() for f in files]})
    else:
        _print_models(ctx, files, with_hashes=False)
    return 0


def scan(ctx: Context, args: argparse.Namespace) -> int:

    files = _scan(ctx, with_hashes=True)
    if args.json:
        emit_json({"models": [f.to_dict() for f in files]})
    else:
        _print_models(ctx, files, with_hashes=True)
    return 0


def catalog(ctx: Context, args: argparse.Namespace) -> int:

    from launcher.models.catalog import catalog_path, load_model_catalog

    models = load_model_catalog(catalog_path(ctx.bundle))
    entries = []
    for e in models.entries:
        d = e.to_dict(ctx.lang)
        d["installed"] = e.destination(ctx.bundle.models_dir).exists()
        entries.append(d)
    if args.json:
        emit_json({"models": entries})
        return 0
    rows = [("*" if d["default"] else "", d["id"], d["name"], d["type"], d["architecture"] or "-", _human(d["size"]),
             ctx.t("已下载", "installed") if d["installed"] else "") for d in entries]  # fmt: skip
    print(
        table(
            ("", "id", ctx.t("名称", "name"), ctx.t("类型", "type"), ctx.t("架构", "arch"), ctx.t("大小", "size"), ""),
            rows,
        )
    )
    say(
        ctx.t(
            "下载：./start.sh models download <id>（* 为默认模型）",
            "Download: ./start.sh models download <id> (* marks the default)",
        )
    )
    return 0


def verify(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config
    from launcher.models.library import verify_files

    results = verify_files(
        ctx.bundle, args.paths or None, extra_dirs=[Path(p) for p in config.load(ctx.bundle)["models.extra_dirs"]]
    )
    bad = [r for r in results if not r["ok"]]
    if args.json:
        emit_json({"results": results})
    else:
        for r in results:
            mark = ctx.t("通过", "ok") if r["ok"] else ctx.t("有问题", "PROBLEM")
            print(f"{mark:8} {r['path']}" + (f"  ({'; '.join(r['problems'])})" if r["problems"] else ""))
    return int(ExitCode.FAILURE) if bad else 0
