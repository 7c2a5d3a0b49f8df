"""``yijian launch``: start the generation UI in the bundle environment and wait for it.

Settings come from ``config.toml`` (``launch.*``, ``models.extra_dirs``);
flags given here win for this run.  Anything after ``--`` goes to the
runtime as it is, so A1111 habits (``-- --xformers --medvram``) keep
working.  Ctrl-C stops the runtime; when it exits with an error, its log is
scanned and the cause is shown with its fix.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from bootstrap.i18n import pick
from launcher.cli.context import Context
from launcher.cli.output import say


def register(sub: Any, lang: str) -> None:
    t = lambda zh, en: pick(lang, zh, en)  # noqa: E731
    p = sub.add_parser("launch", help=t("启动生成界面（Gradio 与 A1111 兼容 API）", "start the generation UI (Gradio and the A1111 API)"),
                       description=t("在生成环境里启动生成界面，就绪后打开浏览器。-- 之后的参数原样交给生成界面（可用 A1111 的 --xformers、--medvram 等）。",
                                     "Starts the generation UI in the bundle environment and opens the browser when ready. "
                                     "Arguments after -- go to the runtime as they are (A1111's --xformers, --medvram … work)."),
                       lang=lang)  # fmt: skip
    p.add_argument("--demo", action="store_true",
                   help=t("用随机权重的演示模型（只生成噪点，用于试用）", "use a random-weight demo model (draws noise; for trying things)"))  # fmt: skip
    p.add_argument(
        "--model", help=t("要加载的模型（文件名、哈希或路径）", "checkpoint to load (file name, hash or path)")
    )
    p.add_argument("--port", type=int, help=t("端口（默认取 launch.port）", "port (default: launch.port)"))
    p.add_argument("--listen", action="store_true", default=None,
                   help=t("允许局域网访问（需要 --auth）", "listen on the network (needs --auth)"))  # fmt: skip
    p.add_argument("--auth", help=t("登录，格式 用户名:密码", "login, as user:password"))
    p.add_argument("--insecure-no-auth", action="store_true",
                   help=t("允许无密码的 --listen（不推荐）", "allow --listen without a login (not recommended)"))  # fmt: skip
    p.add_argument("--vram", choices=("auto", "none", "medvram", "lowvram"))
    p.add_argument("--attention", choices=("auto", "sdpa", "xformers"))
    p.add_argument("--precision", choices=("auto", "fp16", "bf16", "fp32"))
    p.add_argument("--no-browser", action="store_true", help=t("不打开浏览器", "do not open the browser"))
    p.add_argument("--webui-user", metavar="FILE",
                   help=t("A1111 的 webui-user.bat/.sh：用其中的 COMMANDLINE_ARGS", "an A1111 webui-user.bat/.sh: its COMMANDLINE_ARGS apply"))  # fmt: skip
    p.add_argument("--timeout", type=float, default=600.0, help=argparse.SUPPRESS)
    p.add_argument("runtime_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(handler=launch)


def options_from(ctx: Context, args: argparse.Namespace) -> Any:
    from launcher import config
    from launcher.runtime_process import next_free_port, options_from_config

    cfg = config.load(ctx.bundle)
    port = args.port or cfg.get_int("launch.port")
    if args.port is None:
        free = next_free_port(port)
        if free is not None and free != port:
            say(ctx.t(f"端口 {port} 已被占用，改用 {free}。", f"Port {port} is in use; using {free}."))
            port = free
    return options_from_config(
        cfg, ctx.lang, port=port, listen=True if args.listen else None, auth=args.auth,
        insecure_no_auth=args.insecure_no_auth, vram=args.vram, attention=args.attention, precision=args.precision,
        open_browser=False if args.no_browser else None, demo=args.demo, model=args.model,
        passthrough=[a for a in (args.runtime_args or []) if a != "--"],
    )  # fmt: skip


def launch(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.runtime_process import stop_on_signals

    with stop_on_signals():  # a SIGTERM/SIGHUP to the launcher stops the runtime too
        return _launch(ctx, args)


def _launch(ctx: Context, args: argparse.Namespace) -> int:

    from bootstrap.a1111_flags import SECRET_FLAGS, table
    from launcher.errors import RuntimeStartFailed
    from launcher.runtime_process import add_webui_user, start, take_logins

    options = options_from(ctx, args)
    if args.webui_user:
        warning = add_webui_user(options, args.webui_user, ctx.lang)
        if warning:
            say(warning)
    take_logins(options, os.environ)  # -- --gradio-auth …, COMMANDLINE_ARGS, webui-user count for the check below
    for name in SECRET_FLAGS:  # taken out before the runtime, which would have named them
        if options.a1111.has(name):
            say(table().no_effect_line(options.a1111.given[name].flag, ctx.lang))
    options.check()
    if not options.demo:
        _ensure_architecture_configs(ctx, args)

    def echo(line: str) -> None:
        print(line, flush=True)

    say(ctx.t("正在启动生成界面……", "Starting the generation UI…"))
    rp = start(ctx.bundle, options, dict(os.environ), on_line=echo)
    try:
        url = rp.wait_ready(args.timeout)
        if url is None:
            rc = rp.stop() if rp.proc.poll() is None else rp.wait()
            _explain(ctx, rp.output())
            detail = ctx.t(f"退出码 {rc}", f"exit code {rc}") if rc is not None else ctx.t("超时", "timed out")
            raise RuntimeStartFailed(detail, log=str(rp.log_path))
        say(ctx.t(f"生成界面已就绪：{url}（按 Ctrl+C 停止）", f"The generation UI is ready: {url} (Ctrl+C stops it)"))
        rc = rp.wait()
    except KeyboardInterrupt:
        rp.stop()
        say(ctx.t("已停止生成界面。", "The generation UI has stopped."))
        return 0
    return report_exit(ctx, rp, rc)


def report_exit(ctx: Context, rp: Any, rc: int) -> int:
    """After the runtime ended by itself: 0 for a clean exit, else its diagnosis and exit code 7."""
    import sys

    if rc == 0:
        return 0
    _explain(ctx, rp.output())
    print(ctx.t(f"生成界面已退出（退出码 {rc}），日志：{rp.log_path}",
                f"The generation UI exited (code {rc}); log: {rp.log_path}"), file=sys.stderr)  # fmt: skip
    return 7


def _ensure_architecture_configs(ctx: Context, args: argparse.Namespace) -> None:
    """Write, once, the config folders single-file checkpoints load with (from the shipped data, no network)."""
    from pathlib import Path

    from launcher import config
    from launcher.models.architecture import ARCHITECTURES
    from launcher.models.configs import architectures_in_library, ensure_configs, missing_architectures

    cfg = config.load(ctx.bundle)
    archs = architectures_in_library(ctx.bundle, list(cfg["models.extra_dirs"]))
    if args.model and Path(args.model).is_file():
        from launcher.models.library import describe

        arch = describe(Path(args.model)).architecture
        if arch in ARCHITECTURES:
            archs.add(arch)
    if missing_architectures(ctx.bundle, sorted(archs)):
        ensure_configs(ctx.bundle, sorted(archs), lang=ctx.lang, say=say)


def _explain(ctx: Context, output: str) -> None:
    """Scan the runtime's output with the doctor's signatures and print what they find."""
    import sys

    from launcher.doctor.scanner import scan

    for f in scan(output, ctx.lang):
        print(f"[{f.code}] {f.title}\n    {f.detail}\n    {ctx.t('修复：', 'Fix: ')}{f.fix}", file=sys.stderr)
