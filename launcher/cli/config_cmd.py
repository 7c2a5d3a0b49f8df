"""``yijian config validate|show|set|unset|path``."""

from __future__ import annotations

import argparse
from typing import Any

from bootstrap.errors import ExitCode
from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say, table
from launcher.cli.parser import add_json_flag
from launcher.errors import UsageError


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("config", help=t("查看与修改设置 (config.toml)", "view and change settings (config.toml)"),
                       description=t("设置保存在整合包根目录的 config.toml 中；只保存你改过的项。",
                                     "Settings live in config.toml at the bundle root; only what you change is stored."),
                       lang=lang)  # fmt: skip
    verbs = p.add_subparsers(dest="verb", metavar=t("操作", "ACTION"), title=t("操作", "actions"), required=True)

    v = verbs.add_parser(
        "validate", help=t("检查 config.toml，列出所有问题", "check config.toml and list every problem"), lang=lang
    )
    add_json_flag(v, lang)
    v.set_defaults(handler=validate)

    s = verbs.add_parser("show", help=t("显示所有设置的当前值", "show the effective value of every setting"), lang=lang)
    s.add_argument("key", nargs="?", help=t("只显示这一项，如 mirrors.pypi", "show only this one, e.g. mirrors.pypi"))
    add_json_flag(s, lang)
    s.set_defaults(handler=show)

    st = verbs.add_parser(
        "set", help=t("修改设置（先校验，再保存）", "change settings (validated before saving)"), lang=lang
    )
    st.add_argument("pairs", nargs="+", metavar=t("键 值", "KEY VALUE"),
                    help=t("一个或多个「键 值」对，如 launch.port 7861", "one or more KEY VALUE pairs, e.g. launch.port 7861"))  # fmt: skip
    st.set_defaults(handler=set_)

    u = verbs.add_parser("unset", help=t("恢复某项为默认值", "restore settings to their defaults"), lang=lang)
    u.add_argument("keys", nargs="+", metavar=t("键", "KEY"))
    u.set_defaults(handler=unset)

    pa = verbs.add_parser("path", help=t("显示 config.toml 的位置", "print where config.toml is"), lang=lang)
    pa.set_defaults(handler=path)


def validate(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config

    problems = config.check(ctx.bundle)
    file = str(ctx.bundle.config_file)
    exists = ctx.bundle.config_file.exists()
    if args.json:
        emit_json(
            {"file": file, "exists": exists, "valid": not problems, "problems": [p.to_dict(ctx.lang) for p in problems]}
        )
    elif problems:
        say(ctx.t(f"{file} 有 {len(problems)} 处错误：", f"{file} has {len(problems)} problem(s):"))
        for p in problems:
            print(p.render(ctx.lang))
    elif exists:
        print(ctx.t(f"{file}：没有问题。", f"{file}: valid."))
    else:
        print(ctx.t(f"{file} 不存在：使用全部默认设置。", f"{file} does not exist: every setting is at its default."))
    return int(ExitCode.CONFIG) if problems else 0


def show(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config

    cfg = config.load(ctx.bundle)
    settings = [config.find_setting(args.key)] if args.key else list(config.SETTINGS)
    if args.json:
        emit_json(
            {
                "file": str(cfg.path),
                "settings": [
                    {"key": s.key, "value": config.shown(s, cfg[s.key]), "default": s.default,
                     "set": s.key in cfg.user_keys,
                     "help": s.help(ctx.lang)}
                    for s in settings
                ],
            }
        )  # fmt: skip
        return 0
    if args.key:
        print(_fmt(config.shown(settings[0], cfg[args.key])))
        return 0
    rows = [
        (s.key, _fmt(config.shown(s, cfg[s.key])), "*" if s.key in cfg.user_keys else "", s.help(ctx.lang))
        for s in settings
    ]
    print(table((ctx.t("键", "key"), ctx.t("值", "value"), ctx.t("已改", "set"), ctx.t("说明", "meaning")), rows))
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def set_(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config

    if len(args.pairs) % 2:
        raise UsageError(ctx.t("「键 值」要成对给出", "give KEY VALUE in pairs"))
    changes = []
    for key, raw in zip(args.pairs[::2], args.pairs[1::2], strict=True):
        setting = config.find_setting(key)
        changes.append((key, config.parse_value(setting, raw)))
    cfg = config.apply(ctx.bundle, changes)
    for key, _ in changes:
        value = _fmt(config.shown(config.BY_KEY[key], cfg[key]))  # a secret is never echoed
        print(ctx.t(f"已保存 {key} = {value}", f"saved {key} = {value}"))
    return 0


def unset(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config

    cfg = config.apply(ctx.bundle, [(key, None) for key in args.keys])
    for key in args.keys:
        print(ctx.t(f"{key} 已恢复默认值：{_fmt(cfg[key])}", f"{key} is back to its default: {_fmt(cfg[key])}"))
    return 0


def path(ctx: Context, args: argparse.Namespace) -> int:

    print(ctx.bundle.config_file)
    return 0
