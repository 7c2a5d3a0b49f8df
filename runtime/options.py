"""``python -m runtime`` options, and every A1111 1.10 flag mapped or named.

Users carry flags over from webui-user.bat (``--xformers --medvram
--no-half --listen --port 7861 --api --autolaunch``), so those mean here
what they meant there.  Each flag A1111 1.10 knows (the table:
bootstrap/a1111_flags.toml) is either mapped to what Yijian does instead
(:data:`MAPPERS`, and the runtime's own flags of the same name) or accepted
with one warning line naming it and why it changes nothing here; a flag A1111
does not know is an error naming it and the nearest one.  ``COMMANDLINE_ARGS``
from the environment is read first, so the command line wins.  The login
comes from ``--auth``/``--gradio-auth``/``--api-auth``/``--gradio-auth-path``
or, as the launcher sends it, from ``YIJIAN_AUTH`` (never the command line;
see bootstrap/login.py).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap.a1111_flags import Parsed, commandline_args, expand_names, parse_flags, table
from bootstrap.login import LOGIN_ENV, logins_in, take_login_flags
from runtime.checkpoints import TypedDir
from runtime.device import ATTENTION, PRECISIONS, VRAM_PRESETS
from runtime.errors import ListenWithoutAuth, RuntimeUsageError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
A1111_PRECISION = {"half": "fp16", "autocast": "auto"}  # A1111's --precision values, as ours


@dataclass
class RuntimeOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    listen: bool = False
    auth: tuple[str, str] | None = None
    insecure_no_auth: bool = False
    model: str | None = None
    demo: bool = False
    vram: str = "auto"
    attention: str = "auto"
    precision: str = "auto"
    allow_ckpt: bool = False
    compile: bool = False
    api: bool = True
    no_ui: bool = False
    open_browser: bool = False
    lang: str = "zh"
    root: Path | None = None
    extra_model_dirs: tuple[str, ...] = ()  # plain extra models folders, and TypedDir entries from A1111 flags
    warnings: list[str] = field(default_factory=list)
    # From A1111 flags
    vae_path: str | None = None  # --vae-path: this VAE file, selected once the model is loaded
    styles_files: tuple[str, ...] = ()  # --styles-file (else <--data-dir>/styles.csv); () = the bundle's own
    load_model: bool = True  # --skip-load-model-at-start, --ui-debug-mode: start with no model loaded
    environ: dict[str, str] = field(default_factory=dict)  # set before torch starts (--device-id, --use-cpu)
    loglevel: str | None = None
    cors_origins: tuple[str, ...] = ()
    cors_regex: str | None = None
    api_log: bool = False
    api_server_stop: bool = False
    timeout_keep_alive: int = 5  # seconds; uvicorn's default (A1111's --timeout-keep-alive sets it)
    freeze_settings: bool = False
    frozen_settings: tuple[str, ...] = ()
    a1111: Parsed = field(default_factory=Parsed)  # the A1111 flags as given (for /sdapi/v1/cmd-flags)


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:  # the value is not echoed: it may be a password alone
        raise RuntimeUsageError("--auth: write the login as user:password")
    return user, password


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a bad value of the runtime's own flags: the error tree, not exit(2)
        raise RuntimeUsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m runtime", allow_abbrev=False,
        description="Yijian's generation UI and A1111-compatible API. Every AUTOMATIC1111 1.10 flag is accepted "
                    "too (--xformers, --medvram, --ckpt-dir …): mapped to these, or named in a warning when it has "
                    "no effect here.",
    )  # fmt: skip
    p.add_argument("--port", type=int, default=None, help="port (default 7860; 7861 with --nowebui, as in A1111)")
    p.add_argument("--listen", action="store_true", help="listen on all interfaces (needs --auth)")
    p.add_argument(
        "--auth",
        help="user:password for the UI and the API (also --gradio-auth, --api-auth, "
        f"--gradio-auth-path FILE, or the environment variable {LOGIN_ENV}, which keeps it out of `ps`)",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow --listen without --auth (anyone on the network can use this computer)",
    )
    p.add_argument("--model", help="checkpoint to load (file name, title, hash or path)")
    p.add_argument("--demo", action="store_true", help="a tiny random model that draws noise, for trying things out")
    p.add_argument("--vram", choices=VRAM_PRESETS, default="auto")
    p.add_argument("--attention", choices=ATTENTION, default="auto")
    p.add_argument("--precision", choices=(*PRECISIONS, *A1111_PRECISION), default="auto")
    p.add_argument("--allow-ckpt", action="store_true", help="load pickle checkpoints (.ckpt), with weights_only")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (slow first image)")
    p.add_argument("--no-api", action="store_true", help="do not serve /sdapi/v1")
    p.add_argument("--no-browser", action="store_true", help="do not open the browser")
    p.add_argument("--lang", choices=("zh", "en"), default=None)
    p.add_argument("--root", type=Path, help="the bundle root (default: YIJIAN_HOME or the code folder)")
    p.add_argument("--extra-models-dir", action="append", default=[], help="another A1111/秋叶 models folder")
    p.add_argument("--ckpt", dest="model", help=argparse.SUPPRESS)  # A1111's name for --model
    return p  # fmt: skip


def own_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The runtime's own flags and what each takes (``none`` or ``one``), for the A1111 flag reader."""
    return {
        name: "none" if action.nargs == 0 else "one" for action in parser._actions for name in action.option_strings
    }


# --- what each mapped A1111 flag does -----------------------------------------------------------------------------
Mapper = Callable[[RuntimeOptions, Any, Parsed, Mapping[str, str]], None]


def _typed(kind: str) -> Mapper:
    def add(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
        o.extra_model_dirs = (*o.extra_model_dirs, TypedDir(value, kind))

    return add


def _set(**values: Any) -> Mapper:
    def apply(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
        for key, v in values.items():
            setattr(o, key, v)

    return apply


def _vram(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    # A1111's order: --lowvram over --medvram over --medvram-sdxl
    for flag, preset in (("--lowvram", "lowvram"), ("--medvram", "medvram"), ("--medvram-sdxl", "medvram-sdxl")):
        if given.has(flag):
            o.vram = preset
            return


def _attention(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    xformers = given.has("--xformers") or given.has("--force-enable-xformers")
    o.attention = "xformers" if xformers else "sdpa"  # A1111's split/sub-quad/SDP choices are SDPA's job here


def _use_cpu(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    modules = set(value)
    if modules & {"all", "sd"}:
        o.environ["CUDA_VISIBLE_DEVICES"] = ""  # torch then sees no GPU: everything runs on the CPU
    other = sorted(modules - {"all", "sd"})
    if other:
        o.warnings.append(_say(o, f"--use-cpu {' '.join(other)} 在这里不起作用：只有 all 或 sd 会改变生成所用的设备。",
                                  f"--use-cpu {' '.join(other)} has no effect here: only all or sd change the device "
                                  "generation runs on."))  # fmt: skip


def _device_id(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    if "CUDA_VISIBLE_DEVICES" in o.environ:  # --use-cpu all wins
        return
    visible = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    index = str(value).strip()
    # A1111 picks cuda:N among the visible devices; hiding all others does the same before torch starts.
    o.environ["CUDA_VISIBLE_DEVICES"] = (
        visible[int(index)] if visible and index.isdigit() and int(index) < len(visible) else index
    )


def _server_name(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    o.host = str(value)
    if o.host not in LOOPBACK_NAMES:
        o.listen = True  # reachable from the network: the same login rule as --listen


def _nowebui(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    o.no_ui, o.api = True, True


def _styles(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    o.styles_files = (*o.styles_files, *value)


def _data_dir(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    # A1111's data folder: its models/ (and embeddings/ beside it) are shared like models.extra_dirs, and its
    # styles.csv is the styles file unless --styles-file names one; outputs and settings stay in the bundle.
    o.extra_model_dirs = (*o.extra_model_dirs, str(value))
    if not given.has("--styles-file"):
        o.styles_files = (str(Path(value) / "styles.csv"),)


def _models_dir(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    o.extra_model_dirs = (*o.extra_model_dirs, str(value))


def _vae_path(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    o.vae_path = str(value)
    o.extra_model_dirs = (*o.extra_model_dirs, TypedDir(value, "vae"))


def _upscalers(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    if any(isinstance(d, TypedDir) and d.kind == "upscaler" for d in o.extra_model_dirs):
        o.warnings.append(_say(o, f"只用第一个放大模型文件夹；{value} 被忽略。",
                                  f"only the first upscaler folder is used; {value} is ignored."))  # fmt: skip
        return
    _typed("upscaler")(o, value, given, env)


def _loglevel(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    level = str(value).upper()  # A1111: any case; a name logging does not know means INFO
    if level not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        o.warnings.append(_say(o, f"--loglevel {value} 不是日志级别（CRITICAL、ERROR、WARNING、INFO、DEBUG），使用 INFO。",
                                  f"--loglevel {value} is not a log level (CRITICAL, ERROR, WARNING, INFO, DEBUG); "
                                  "INFO is used."))  # fmt: skip
        level = "INFO"
    o.loglevel = level


def _csv(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def _noop(o: RuntimeOptions, value: Any, given: Parsed, env: Mapping[str, str]) -> None:
    """Mapped by being what Yijian does anyway (the runtime never downloads a model; one-click start honours it)."""


# A1111 flag -> what it does here.  The login flags are taken out before (bootstrap/login.py), and --port,
# --listen, --precision and --ckpt are the runtime's own flags of the same name.
MAPPERS: dict[str, Mapper] = {
    "--data-dir": _data_dir, "--models-dir": _models_dir, "--ckpt-dir": _typed("checkpoint"),
    "--vae-dir": _typed("vae"), "--embeddings-dir": _typed("embedding"), "--lora-dir": _typed("lora"),
    "--lyco-dir-backcompat": _typed("lora"), "--esrgan-models-path": _upscalers,
    "--realesrgan-models-path": _upscalers, "--bsrgan-models-path": _upscalers, "--vae-path": _vae_path,
    "--styles-file": _styles, "--medvram": _vram, "--medvram-sdxl": _vram, "--lowvram": _vram,
    "--no-half": _set(precision="full"), "--xformers": _attention, "--force-enable-xformers": _attention,
    "--opt-sdp-attention": _attention, "--opt-sdp-no-mem-attention": _attention, "--opt-split-attention": _attention,
    "--opt-split-attention-v1": _attention, "--opt-split-attention-invokeai": _attention,
    "--opt-sub-quad-attention": _attention, "--use-cpu": _use_cpu, "--device-id": _device_id,
    "--server-name": _server_name, "--api": _set(api=True), "--nowebui": _nowebui,
    "--api-log": _set(api_log=True), "--ui-debug-mode": _set(load_model=False),
    "--skip-load-model-at-start": _set(load_model=False), "--autolaunch": _noop,
    "--cors-allow-origins": lambda o, v, g, e: setattr(o, "cors_origins", _csv(v)),
    "--cors-allow-origins-regex": lambda o, v, g, e: setattr(o, "cors_regex", str(v)),
    "--api-server-stop": _set(api_server_stop=True),
    "--timeout-keep-alive": lambda o, v, g, e: setattr(o, "timeout_keep_alive", int(v)),
    "--freeze-settings": _set(freeze_settings=True),
    "--freeze-specific-settings": lambda o, v, g, e: setattr(o, "frozen_settings", _csv(v)),
    "--no-download-sd-model": _noop, "--loglevel": _loglevel,
}  # fmt: skip
LOGIN_FLAGS = ("--gradio-auth", "--gradio-auth-path", "--api-auth")


def _say(o: RuntimeOptions, zh: str, en: str) -> str:
    return zh if o.lang == "zh" else en


def _apply_a1111(o: RuntimeOptions, given: Parsed, env: Mapping[str, str]) -> None:
    done: set[Mapper] = set()
    for name, g in given.given.items():
        if g.flag.effect == "none":
            o.warnings.append(table().no_effect_line(g.flag, o.lang))
            continue
        mapper = MAPPERS[name]
        if mapper in (_vram, _attention) and mapper in done:
            continue  # these look at every flag of their group at once
        done.add(mapper)
        mapper(o, g.value, given, env)


def parse(argv: list[str], environ: Mapping[str, str] | None = None) -> RuntimeOptions:
    env = os.environ if environ is None else environ
    parser = build_parser()
    own = own_flags(parser)
    args, logins = take_login_flags(expand_names([*commandline_args(env), *argv]))
    if not logins and env.get(LOGIN_ENV):
        logins = logins_in(env[LOGIN_ENV])
    given = parse_flags(args, own)
    ns = parser.parse_args(given.rest)
    lang = ns.lang or ("zh" if env.get("LANG", "").lower().startswith("zh") else "en")
    opts = RuntimeOptions(
        port=ns.port or (7861 if given.has("--nowebui") else 7860), listen=ns.listen,
        insecure_no_auth=ns.insecure_no_auth, model=ns.model, demo=ns.demo, vram=ns.vram, attention=ns.attention,
        precision=A1111_PRECISION.get(ns.precision, ns.precision), allow_ckpt=ns.allow_ckpt, compile=ns.compile,
        api=not ns.no_api, open_browser=not ns.no_browser, root=ns.root, extra_model_dirs=tuple(ns.extra_models_dir),
        lang=lang, a1111=given,
    )  # fmt: skip
    opts.auth = _auth(logins[0]) if logins else None
    if len(logins) > 1:
        opts.warnings.append(_say(opts, f"给了 {len(logins)} 个登录；生成界面只有一个登录，只有第一个（用户 {opts.auth[0] if opts.auth else '?'}）能登录",
                                  f"{len(logins)} logins given; the generation UI has one, so only the first "
                                  f"(user {opts.auth[0] if opts.auth else '?'}) can log in"))  # fmt: skip
    _apply_a1111(opts, given, env)
    if opts.listen:
        if opts.host in LOOPBACK_NAMES:
            opts.host = "0.0.0.0"
        if opts.auth is None and not opts.insecure_no_auth:
            raise ListenWithoutAuth()
    if not 1 <= opts.port <= 65535:
        raise RuntimeUsageError(f"--port {opts.port}: use a port between 1 and 65535")
    return opts


# --- the options this process started with (read by /sdapi/v1/cmd-flags) -----------------------------------------
_started: list[RuntimeOptions] = []


def remember_started(options: RuntimeOptions) -> None:
    _started[:] = [options]


def started_with() -> RuntimeOptions | None:
    return _started[0] if _started else None
