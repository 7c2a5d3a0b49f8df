"""``yijian mirrors list|test|use|env``."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap.errors import ExitCode
from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say, table
from launcher.cli.parser import add_json_flag
from launcher.mirrors.catalog import CHANNELS

if TYPE_CHECKING:
    pass

# The handlers import what they use, so that building the parser (on every start) stays cheap.


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("mirrors", help=t("镜像源：列表、测速、切换", "mirrors: list, measure, choose"),
                       description=t("五个通道：pypi、torch、huggingface、python、github。每个通道可设为 auto（测速选最快）、镜像 id、网址或本地文件夹。",
                                     "Five channels: pypi, torch, huggingface, python, github. Each is auto (the fastest), "
                                     "a mirror id, a URL, or a local folder."), lang=lang)  # fmt: skip
    verbs = p.add_subparsers(dest="verb", metavar=t("操作", "ACTION"), title=t("操作", "actions"), required=True)
    channel_help = t("只看这个通道", "only this channel")

    ls = verbs.add_parser(
        "list", help=t("列出所有镜像及当前选择", "list every mirror and the current choice"), lang=lang
    )
    ls.add_argument("--channel", choices=CHANNELS, help=channel_help)
    add_json_flag(ls, lang)
    ls.set_defaults(handler=list_)

    te = verbs.add_parser(
        "test", help=t("同时测速所有镜像并排序", "measure every mirror at once and rank them"), lang=lang
    )
    te.add_argument("--channel", choices=CHANNELS, help=channel_help)
    te.add_argument("--timeout", type=float, default=None,
                    help=t("每个镜像的超时秒数（默认取 network.probe_timeout）", "seconds per probe (default: network.probe_timeout)"))  # fmt: skip
    te.add_argument(
        "--cuda",
        default=None,
        help=t("torch 通道测试的 CUDA 版本，如 cu128", "CUDA variant for the torch channel, e.g. cu128"),
    )
    add_json_flag(te, lang)
    te.set_defaults(handler=test)

    us = verbs.add_parser(
        "use",
        help=t("选择某个通道的镜像（先检查再保存）", "choose a channel's mirror (checked before saving)"),
        lang=lang,
    )
    us.add_argument("channel", choices=CHANNELS, help=t("通道", "the channel"))
    us.add_argument("value", help=t("auto、镜像 id、网址或本地文件夹", "auto, a mirror id, a URL or a local folder"))
    us.add_argument(
        "--force", action="store_true", help=t("不检查能否连接，直接保存", "save without checking that it answers")
    )
    us.set_defaults(handler=use)

    en = verbs.add_parser("env", help=t("显示子进程（pip、uv、模型下载）得到的环境变量", "show the environment child processes (pip, uv, downloads) get"), lang=lang)  # fmt: skip
    en.add_argument("--cuda", default=None, help=t("包含 torch 通道时的 CUDA 版本，如 cu128", "include the torch channel for this CUDA variant, e.g. cu128"))  # fmt: skip
    add_json_flag(en, lang)
    en.set_defaults(handler=env)


def _channels(args: argparse.Namespace) -> tuple[str, ...]:
    return (args.channel,) if getattr(args, "channel", None) else CHANNELS


def list_(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config
    from launcher.mirrors import ranking
    from launcher.mirrors.catalog import load_catalog
    from launcher.mirrors.sources import candidates

    cfg = config.load(ctx.bundle)
    catalog = load_catalog(ctx.bundle.mirrors_file)
    rank_ = ranking.load(ctx.bundle)
    out: list[dict[str, Any]] = []
    for name in _channels(args):
        ch = catalog.channel(name)
        choice = cfg.get_str(f"mirrors.{name}")
        order = candidates(ch, choice, rank_)
        current = order[0].id if order else "off"
        out.append({
            "channel": name, "name": ch.name(ctx.lang), "choice": choice, "current": current,
            "mirrors": [{"id": m.id, "name": m.name(ctx.lang), "url": m.url, "kind": m.kind, "status": m.status,
                         "official": m.official, "auto": m.automatic, "notes": m.notes} for m in ch.mirrors],
        })  # fmt: skip
    if args.json:
        emit_json({"channels": out})
        return 0
    for entry in out:
        print(
            f"\n[{entry['channel']}] {entry['name']}  "
            + ctx.t(f"当前设置：{entry['choice']}", f"setting: {entry['choice']}")
        )
        rows = [("*" if m["id"] == entry["current"] else "", m["id"], m["name"], m["status"] + (" (official)" if m["official"] else ""), m["url"])
                for m in entry["mirrors"]]  # fmt: skip
        print(table(("", "id", ctx.t("名称", "name"), ctx.t("状态", "status"), "URL"), rows))
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _speed(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.1f} MB/s" if value >= 1e6 else f"{value / 1e3:.0f} kB/s"


def test(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config
    from launcher.errors import OfflineMode
    from launcher.mirrors.measure import measure

    cfg = config.load(ctx.bundle)
    if cfg.get_bool("network.offline"):
        raise OfflineMode(action_zh="测速镜像", action_en="measure mirrors")
    timeout = args.timeout if args.timeout is not None else float(cfg["network.probe_timeout"])
    channels = _channels(args)
    started = time.monotonic()
    if not args.json:
        say(ctx.t(f"正在同时测速 {len(channels)} 个通道的镜像（每个最多 {timeout:g} 秒）…",
                  f"Measuring the mirrors of {len(channels)} channel(s) at once (at most {timeout:g} s each) ..."))  # fmt: skip
    by_channel = measure(ctx.bundle, cfg, channels, args.cuda, timeout)
    elapsed = time.monotonic() - started
    findings = dead_channels(by_channel, {name: cfg.get_str(f"mirrors.{name}") for name in channels})
    code = int(ExitCode.NETWORK) if any(blocks(f.channel, args) for f in findings) else 0
    if args.json:
        emit_json({"results": [r.to_dict() for name in channels for r in by_channel[name]],
                   "findings": [f.to_dict(ctx.lang) for f in findings],
                   "timeout_s": timeout, "elapsed_s": round(elapsed, 2)})  # fmt: skip
        return code
    for name, rs in by_channel.items():
        print(f"\n[{name}]")
        rows = []
        for i, r in enumerate(rs, 1):
            state = ctx.t("可用", "ok") if r.ok else r.error
            if r.ok and not r.automatic:
                state += ctx.t("（未验证，auto 不会选）", " (unverified: auto skips it)")
            rows.append(
                (
                    str(i) if r.ok else "-",
                    r.id,
                    state,
                    _ms(r.connect_ms),
                    _ms(r.tls_ms),
                    _ms(r.ttfb_ms),
                    _speed(r.bytes_per_s),
                )
            )
        print(table(("#", "id", ctx.t("结果", "result"), ctx.t("连接ms", "connect ms"), "TLS ms",
                     ctx.t("首字节ms", "first byte ms"), ctx.t("速度", "speed")), rows))  # fmt: skip
    say(ctx.t(f"用时 {elapsed:.1f} 秒。结果已保存，auto 会选每个通道最快的可用镜像。",
              f"Took {elapsed:.1f} s. Saved: auto now picks the fastest healthy mirror of each channel."))  # fmt: skip
    for f in findings:
        say(f"✗ {f.text(ctx.lang)}\n  {f.fix(ctx.lang)}")
    return code


@dataclass(frozen=True)
class DeadChannel:
    """A finding of ``mirrors test``: no mirror of ``channel`` works."""

    channel: str
    tried: tuple[tuple[str, str], ...]  # (id, error)

    def text(self, lang: str) -> str:
        listing = "; ".join(f"{i}: {e}" for i, e in self.tried) or "-"
        return pick(lang, f"{self.channel} 通道没有可用的镜像（试过：{listing}）。",
                    f"The {self.channel} channel has no working mirror (tried: {listing}).")  # fmt: skip

    def fix(self, lang: str) -> str:
        zh, en = _FIXES.get(self.channel, _FIXES["*"])
        return pick(lang, zh, en).format(channel=self.channel)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {"code": "CHANNEL_DEAD", "channel": self.channel, "tried": [{"id": i, "error": e} for i, e in self.tried],
                "message": self.text(lang), "fix": self.fix(lang)}  # fmt: skip


_PROXY = (
    "或设置代理：./start.sh config set network.proxy http://主机:端口。",
    "or set a proxy: ./start.sh config set network.proxy http://host:port.",
)
_FIXES = {
    "torch": ("安装时会改用 PyPI 上等价的 torch（若环境包有）；否则把 torch 轮子放进一个文件夹并运行 ./start.sh mirrors use torch 文件夹路径，" + _PROXY[0],
              "Setup falls back to PyPI's equivalent torch where the pack has one; otherwise put the torch wheels in a folder "
              "and run ./start.sh mirrors use torch FOLDER, " + _PROXY[1]),
    "huggingface": ("模型会改从 ModelScope 下载（若目录里有）；也可以把自己的模型文件放进 models/Stable-diffusion，" + _PROXY[0],
                    "Models fall back to ModelScope where the catalog has a copy; or put your own model file in "
                    "models/Stable-diffusion, " + _PROXY[1]),
    "*": ("检查网络，用 ./start.sh mirrors use {channel} 网址 指定一个能用的镜像，" + _PROXY[0],
          "Check the network, pick one that works with ./start.sh mirrors use {channel} URL, " + _PROXY[1]),
}  # fmt: skip


# Channels one-click never needs: a dead one is reported, but fails the plain test only when asked for by name
# (civitai.com is often unreachable in mainland China, and that must not make every `mirrors test` exit 4).
OPTIONAL_CHANNELS = ("civitai", "modelscope")


def blocks(channel: str, args: argparse.Namespace) -> bool:
    """Whether a dead ``channel`` makes ``mirrors test`` exit non-zero."""
    return channel not in OPTIONAL_CHANNELS or getattr(args, "channel", None) == channel


def dead_channels(by_channel: dict[str, list[Any]], choices: dict[str, str]) -> list[DeadChannel]:
    """The tested channels in which no mirror answered (github with ``off`` uses none, so it cannot be dead)."""
    return [DeadChannel(name, tuple((r.id, r.error) for r in rs)) for name, rs in by_channel.items()
            if not any(r.ok for r in rs) and not (name == "github" and choices.get(name) == "off")]  # fmt: skip


def use(ctx: Context, args: argparse.Namespace) -> int:
    from launcher import config
    from launcher.errors import MirrorChoiceInvalid, OfflineMode
    from launcher.mirrors.catalog import load_catalog
    from launcher.mirrors.check import check_source
    from launcher.mirrors.sources import from_value, is_path, is_url

    cfg = config.load(ctx.bundle)
    catalog = load_catalog(ctx.bundle.mirrors_file)
    ch = catalog.channel(args.channel)
    value = args.value.strip()
    alias = ch.by_alias(value)
    if alias is not None:
        value = alias.id
    allowed = ("auto", "off", *ch.ids) if ch.id == "github" else ("auto", *ch.ids)
    if value not in allowed and not is_url(value) and not (is_path(value) and ch.id in ("pypi", "torch")):
        guess = ch.suggest(value, ("auto", "off") if ch.id == "github" else ("auto",))
        near = [guess] if guess else []
        raise MirrorChoiceInvalid(
            channel=ch.id, value=value,
            reason_zh="既不是已知的镜像 id，也不是 https:// 地址" + ("或文件夹" if ch.id in ("pypi", "torch") else ""),
            reason_en="it is neither a known mirror id nor an https:// URL" + (" or a folder" if ch.id in ("pypi", "torch") else ""),
            fix_zh=(f"你是不是想写「{near[0]}」？" if near else "") + f"可用的 id：{'、'.join(allowed)}。运行 ./start.sh mirrors list 查看全部。",
            fix_en=(f"Did you mean {near[0]!r}? " if near else "") + f"Known ids: {', '.join(allowed)}. See ./start.sh mirrors list.",
        )  # fmt: skip
    source = from_value(value, ch)
    saved = value
    if source is not None and source.id in ("custom", "local") and not args.force:
        if cfg.get_bool("network.offline") and source.id == "custom":
            raise OfflineMode(action_zh="检查这个镜像", action_en="check this mirror")
        checked = check_source(source, float(cfg["network.probe_timeout"]), cfg.get_str("network.proxy"))
        if checked.kind == "flat" and source.kind != "flat":
            saved = "flat+" + value
            say(ctx.t("这是一个文件列表（类似阿里云 pytorch-wheels），已按 find-links 方式保存。",
                      "This is a flat file listing (like Aliyun's pytorch-wheels); saved for use as find-links."))  # fmt: skip
    mirror = ch.get(value)
    if mirror is not None and not mirror.automatic:
        say(ctx.t(f"注意：{value} 未经验证，auto 不会自动选择它；这是你的明确选择，将优先使用。",
                  f"Note: {value} is unverified, so auto never picks it; as your explicit choice it will be used first."))  # fmt: skip
    config.apply(ctx.bundle, [(f"mirrors.{ch.id}", saved)])
    print(ctx.t(f"已保存：mirrors.{ch.id} = {saved}", f"saved: mirrors.{ch.id} = {saved}"))
    return 0


def env(ctx: Context, args: argparse.Namespace) -> int:
    import os

    from launcher import config
    from launcher.mirrors.environ import changed, child_environ
    from launcher.mirrors.plan import plan_for

    cfg = config.load(ctx.bundle)
    plan = plan_for(ctx.bundle, cfg, cuda=args.cuda)
    base = dict(os.environ)
    child, notices = child_environ(plan, base)
    diff = changed(child, base)
    if args.json:
        emit_json({"set": {k: v for k, v in diff.items() if v is not None},
                   "removed": [k for k, v in diff.items() if v is None],
                   "warnings": [n.text(ctx.lang) for n in notices]})  # fmt: skip
        return 0
    for n in notices:
        say(n.text(ctx.lang))
    for k, v in diff.items():
        print(f"{k}={v}" if v is not None else f"unset {k}")
    return 0
