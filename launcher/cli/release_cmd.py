"""``yijian release --target win-x64|linux-x64 [--with-pack ID] [--out DIR]``: a portable archive."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say
from launcher.cli.parser import add_json_flag


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("release", help=t("导出便携包：解压即用，可离线", "export a portable archive that runs wherever it is unpacked"),
                       description=t("生成一个整合包压缩包：目标系统的 python/、预装好的启动器环境、启动脚本、镜像与环境包数据、空的 models/ 目录和说明。"
                                     "解压到任意文件夹即可运行（启动器本身不需要联网）。文件名带版本和目标平台，并附每个文件 sha256 的清单。",
                                     "Builds a bundle archive: python/ for the target, the launcher environment preinstalled, the "
                                     "start scripts, the mirror and pack data, the empty models/ layout and the README. It runs "
                                     "wherever it is unpacked (the launcher needs no internet). Its name carries the version and the "
                                     "target; a manifest lists every file with its sha256."), lang=lang)  # fmt: skip
    p.add_argument("--target", required=True, choices=("win-x64", "linux-x64"),
                   help=t("目标平台", "the platform the archive is for"))  # fmt: skip
    p.add_argument("--with-pack", metavar="ID",
                   help=t("同时预装这个环境包的生成环境（含 torch，数 GB），供离线电脑使用；win-x64 可在 Linux 上交叉安装，"
                          "linux-x64 需在 Linux 上生成",
                          "also preinstall this pack's generation environment (torch included, several GB) for an "
                          "offline machine; win-x64 can be cross-installed from Linux, linux-x64 needs Linux"))  # fmt: skip
    p.add_argument("--out", metavar="DIR", type=Path,
                   help=t("输出目录（默认：整合包下的 dist/）", "output folder (default: dist/ in the bundle)"))  # fmt: skip
    p.add_argument("--python", metavar="PATH",
                   help=t("固定版本的 Python 无法下载时，打包这个本机的 CPython（默认：运行启动器的 Python）",
                          "when the pinned Python cannot be fetched, pack this local CPython (default: the one running "
                          "the launcher)"))  # fmt: skip
    add_json_flag(p, lang)
    p.set_defaults(handler=release)


def release(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.release import build_release

    out = (args.out or ctx.bundle.root / "dist").expanduser().resolve()
    result = build_release(ctx.bundle, args.target, out=out, with_pack=args.with_pack, python=args.python,
                           lang=ctx.lang, say=say)  # fmt: skip
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(result.archive)
    print(ctx.t(f"清单：{result.manifest}", f"manifest: {result.manifest}"))
    print(ctx.t(f"Python：{result.python.note('zh')}", f"Python: {result.python.note('en')}"))
    return 0
