"""Commands whose features are not built yet.

Each says so plainly and exits with ExitCode.NOT_BUILT; it never pretends.
A command leaves this table when its feature lands.
"""

from __future__ import annotations

import argparse
from typing import Any

from bootstrap.errors import NotBuiltYet
from bootstrap.i18n import pick
from launcher.cli.context import Context

# name: (zh help, en help, zh plan, en plan)
PENDING: dict[str, tuple[str, str, str, str]] = {
    "start": ("无界面一键启动（适合 SSH/服务器）", "one-click start without the TUI (for SSH and servers)",
              "一键启动流程", "the one-click start flow"),
}  # fmt: skip


def _not_built(ctx: Context, args: argparse.Namespace) -> Any:
    zh_help, en_help, zh_plan, en_plan = PENDING[args.command]
    raise NotBuiltYet(feature=args.command, plan=pick(ctx.lang, zh_plan, en_plan))


def register(sub: Any, lang: str) -> None:
    for name, (zh_help, en_help, _zh, _en) in PENDING.items():
        help_text = pick(lang, zh_help, en_help) + pick(lang, "（尚未完成）", " (not built yet)")
        p = sub.add_parser(name, help=help_text, description=help_text, lang=lang)
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(handler=_not_built)
