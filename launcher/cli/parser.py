"""The ``yijian`` command line, in Chinese or English.

argparse keeps start-up cheap (no third-party import before a command runs).
Each command module exposes ``register(subparsers, lang)``; this module only
wires them together and translates argparse's own words.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from bootstrap.errors import ExitCode
from bootstrap.i18n import pick
from launcher._version import __version__

_ZH_WORDS = {
    "usage: ": "用法：",
    "positional arguments": "命令与参数",
    "options": "选项",
    "show this help message and exit": "显示帮助并退出",
}


class LocalizedFormatter(argparse.RawDescriptionHelpFormatter):
    lang = "en"

    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        if prefix is None and self.lang == "zh":
            prefix = _ZH_WORDS["usage: "]
        super().add_usage(usage, actions, groups, prefix)


def _formatter(lang: str) -> type[LocalizedFormatter]:
    return type("Formatter", (LocalizedFormatter,), {"lang": lang})


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose headings and errors follow the language."""

    lang = "en"

    def __init__(self, *args, lang: str = "en", **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _formatter(lang))
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self.lang = lang
        if lang == "zh":
            self._positionals.title = _ZH_WORDS["positional arguments"]
            self._optionals.title = _ZH_WORDS["options"]
        self.add_argument("-h", "--help", action="help", help=pick(lang, "显示帮助并退出", "show this help and exit"))

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        prefix = pick(self.lang, "错误", "error")
        hint = pick(self.lang, f"运行 {self.prog} --help 查看用法。", f"Run {self.prog} --help for the usage.")
        self.exit(int(ExitCode.USAGE), f"{self.prog}: {prefix}: {message}\n{hint}\n")


DESCRIPTION = (
    "一键 (Yijian)：Stable Diffusion 一键安装与启动器。\n不带命令运行即打开启动器界面；带命令运行即命令行模式。",
    "Yijian (一键): an all-in-one installer and launcher for Stable Diffusion.\n"
    "Without a command it opens the launcher; with one it runs that command.",
)

EPILOG = (
    "示例：\n  ./start.sh doctor            检查显卡、驱动和环境\n"
    "  ./start.sh mirrors test      镜像测速\n  ./start.sh config validate   检查 config.toml\n\n"
    "退出码：0 成功，1 发现问题，2 用法错误，3 配置错误，4 网络，5 下载，6 环境，7 生成界面，8 功能未完成，9 整合包路径，130 中断",
    "Examples:\n  ./start.sh doctor            check the GPU, driver and environment\n"
    "  ./start.sh mirrors test      measure the mirrors\n  ./start.sh config validate   check config.toml\n\n"
    "Exit codes: 0 ok, 1 problems found, 2 usage, 3 config, 4 network, 5 download, 6 environment, "
    "7 generation UI, 8 not built yet, 9 bundle path, 130 interrupted",
)


def add_json_flag(parser: argparse.ArgumentParser, lang: str) -> None:
    parser.add_argument(
        "--json", action="store_true", help=pick(lang, "以 JSON 输出（供脚本使用）", "print JSON (for scripts)")
    )


def build_parser(lang: str) -> Parser:
    from launcher.cli import (
        config_cmd,
        diagnose_cmd,
        doctor_cmd,
        launch_cmd,
        mirrors_cmd,
        models_cmd,
        packs_cmd,
        release_cmd,
        setup_cmd,
        start_cmd,
    )

    parser = Parser(prog="yijian", lang=lang, description=pick(lang, *DESCRIPTION), epilog=pick(lang, *EPILOG))
    parser.add_argument(
        "--lang",
        choices=("zh", "en"),
        help=pick(lang, "界面语言（默认跟随系统）", "interface language (default: the locale)"),
    )
    parser.add_argument("--version", action="version", version=f"yijian {__version__}",
                        help=pick(lang, "显示版本并退出", "show the version and exit"))  # fmt: skip
    sub = parser.add_subparsers(
        dest="command", metavar=pick(lang, "命令", "COMMAND"), title=pick(lang, "命令", "commands"),
        parser_class=Parser,
    )  # fmt: skip
    launch_cmd.register(sub, lang)
    start_cmd.register(sub, lang)
    setup_cmd.register(sub, lang)
    doctor_cmd.register(sub, lang)
    doctor_cmd.register_sysinfo(sub, lang)
    diagnose_cmd.register(sub, lang)
    packs_cmd.register(sub, lang)
    mirrors_cmd.register(sub, lang)
    models_cmd.register(sub, lang)
    config_cmd.register(sub, lang)
    release_cmd.register(sub, lang)
    # Keep the listing in the order users meet the commands.
    order = ["start", "setup", "packs", "mirrors", "models", "doctor", "diagnose", "sysinfo", "launch", "config"]
    sub._choices_actions.sort(key=lambda a: order.index(a.dest) if a.dest in order else len(order))
    return parser
