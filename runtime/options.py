"""``python -m runtime`` options, with A1111's ``COMMANDLINE_ARGS`` flags as aliases.

Users carry flags over from webui-user.bat (``--xformers --medvram
--no-half --listen --port 7861 --api --autolaunch``), so those mean here
what they meant there.  Flags A1111 has and we do not are named in one
warning rather than ignored in silence; anything else is an error with the
closest valid flag.  ``COMMANDLINE_ARGS`` from the environment is read too.
The login comes from ``--auth``/``--gradio-auth``/``--api-auth``/
``--gradio-auth-path`` or, as the launcher sends it, from ``YIJIAN_AUTH``
(never the command line; see bootstrap/login.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.login import LOGIN_ENV, logins_in, take_login_flags
from runtime.device import ATTENTION, PRECISIONS, VRAM_PRESETS
from runtime.errors import ListenWithoutAuth, RuntimeUsageError

# A1111 flag -> (our dest, value)
A1111_ALIASES: dict[str, tuple[str, object]] = {
    "--xformers": ("attention", "xformers"),
    "--opt-sdp-attention": ("attention", "sdpa"),
    "--opt-sdp-no-mem-attention": ("attention", "sdpa"),
    "--medvram": ("vram", "medvram"),
    "--medvram-sdxl": ("vram", "medvram"),
    "--lowvram": ("vram", "lowvram"),
    "--no-half": ("precision", "full"),
    "--precision-full": ("precision", "full"),
    "--autolaunch": ("open_browser", True),
    "--api": ("api", True),
    "--nowebui": ("no_ui", True),
    "--share": ("share_refused", True),
}
# A1111 flags we accept but that change nothing here (named in a warning).
A1111_IGNORED = (
    "--no-half-vae", "--upcast-sampling", "--disable-nan-check", "--skip-torch-cuda-test", "--skip-python-version-check",
    "--skip-version-check", "--no-download-sd-model", "--theme", "--enable-insecure-extension-access", "--gradio-queue",
    "--no-gradio-queue", "--deepdanbooru", "--opt-split-attention", "--opt-split-attention-v1", "--opt-channelslast",
    "--reinstall-xformers", "--reinstall-torch", "--update-check", "--cors-allow-origins", "--disable-safe-unpickle",
    "--skip-install", "--skip-prepare-environment", "--no-hashing", "--api-log", "--ui-debug-mode",
)  # fmt: skip
A1111_IGNORED_WITH_VALUE = (
    "--theme",
    "--cors-allow-origins",
    "--ckpt-dir",
    "--lora-dir",
    "--vae-dir",
    "--embeddings-dir",
)


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
    extra_model_dirs: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:  # the value is not echoed: it may be a password alone
        raise RuntimeUsageError("--auth: write the login as user:password")
    return user, password


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runtime", description="Yijian's generation UI and A1111-compatible API."
    )
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")
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
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--allow-ckpt", action="store_true", help="load pickle checkpoints (.ckpt), with weights_only")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (slow first image)")
    p.add_argument("--no-api", action="store_true", help="do not serve /sdapi/v1")
    p.add_argument("--no-browser", action="store_true", help="do not open the browser")
    p.add_argument("--lang", choices=("zh", "en"), default=None)
    p.add_argument("--root", type=Path, help="the bundle root (default: YIJIAN_HOME or the code folder)")
    p.add_argument("--extra-models-dir", action="append", default=[], help="another A1111/秋叶 models folder")
    p.add_argument("--ckpt", dest="model", help=argparse.SUPPRESS)  # A1111's name for --model
    return p  # fmt: skip


def _split_a1111(argv: list[str]) -> tuple[list[str], dict[str, object], list[str]]:
    rest: list[str] = []
    aliased: dict[str, object] = {}
    ignored: list[str] = []
    it = iter(argv)
    for arg in it:
        flag = arg.split("=", 1)[0]
        if flag in A1111_ALIASES:
            dest, value = A1111_ALIASES[flag]
            aliased[dest] = value
        elif flag in A1111_IGNORED_WITH_VALUE:
            ignored.append(flag)
            if "=" not in arg:
                next(it, None)
        elif flag in A1111_IGNORED:
            ignored.append(flag)
        else:
            rest.append(arg)
    return rest, aliased, ignored


def parse(argv: list[str], environ: dict[str, str] | None = None) -> RuntimeOptions:
    env = os.environ if environ is None else environ
    from_env = shlex.split(env.get("COMMANDLINE_ARGS", ""))
    args, logins = take_login_flags([*from_env, *argv])
    if not logins and env.get(LOGIN_ENV):
        logins = logins_in(env[LOGIN_ENV])
    rest, aliased, ignored = _split_a1111(args)
    parser = build_parser()
    ns, unknown = parser.parse_known_args(rest)
    if unknown:
        raise RuntimeUsageError(f"unknown option(s): {' '.join(unknown)}")
    opts = RuntimeOptions(
        port=ns.port or 7860, listen=ns.listen, insecure_no_auth=ns.insecure_no_auth, model=ns.model, demo=ns.demo,
        vram=ns.vram, attention=ns.attention, precision=ns.precision, allow_ckpt=ns.allow_ckpt, compile=ns.compile,
        api=not ns.no_api, open_browser=not ns.no_browser, root=ns.root,
        extra_model_dirs=tuple(ns.extra_models_dir),
        lang=ns.lang or ("zh" if env.get("LANG", "").lower().startswith("zh") else "en"),
    )  # fmt: skip
    opts.auth = _auth(logins[0]) if logins else None
    if len(logins) > 1:
        opts.warnings.append(f"{len(logins)} logins given; the generation UI has one, so only the first "
                             f"(user {opts.auth[0] if opts.auth else '?'}) can log in")  # fmt: skip
    for dest, value in aliased.items():
        if dest == "share_refused":
            opts.warnings.append(
                "--share is refused: Yijian never opens a public tunnel (use --listen --auth on your LAN)"
            )
        elif dest == "open_browser":
            pass  # A1111's --autolaunch: opening the browser is already the default (--no-browser wins)
        else:
            setattr(opts, dest, value)
    if ignored:
        opts.warnings.append("A1111 options with no effect here: " + " ".join(dict.fromkeys(ignored)))
    if opts.listen:
        opts.host = "0.0.0.0"
        if opts.auth is None and not opts.insecure_no_auth:
            raise ListenWithoutAuth()
    if not 1 <= opts.port <= 65535:
        raise RuntimeUsageError(f"--port {opts.port}: use a port between 1 and 65535")
    return opts
