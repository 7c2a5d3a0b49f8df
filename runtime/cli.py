"""``python -m runtime``: parse options, make the environment safe, load a model, serve.

Before Gradio is imported: loopback always bypasses proxies (with
``HTTP_PROXY`` set and no ``NO_PROXY``, Gradio's self-check fails), a SOCKS
``ALL_PROXY`` is dropped for this process when ``socksio`` is missing
(``import gradio`` would fail; the runtime never goes online anyway), and
analytics, telemetry and Hub access are off.  Errors end as one line on
stderr with the hint, and the exit code of the error tree.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from bootstrap.errors import ExitCode, YijianError
from bootstrap.layout import Bundle
from bootstrap.login import LOGIN_ENV
from bootstrap.redact import redact_handlers, remember_argv, remember_environ

LOOPBACK = ("localhost", "127.0.0.1", "::1")
PROXY_VARS = ("ALL_PROXY", "all_proxy")


def safe_environ(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Adjust ``environ`` in place for serving on loopback offline; return warnings."""
    warnings: list[str] = []
    for key in ("NO_PROXY", "no_proxy"):
        have = [h.strip() for h in environ.get(key, "").split(",") if h.strip()]
        environ[key] = ",".join([*have, *(h for h in LOOPBACK if h not in have)])
    socks = [k for k in PROXY_VARS if environ.get(k, "").lower().startswith("socks")]
    if socks:
        try:
            import socksio  # noqa: F401
        except ImportError:
            for k in socks:
                environ.pop(k, None)
            warnings.append("ALL_PROXY is a SOCKS proxy and socksio is not installed; the generation UI ignores it "
                            "(it needs no internet access)")  # fmt: skip
    environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    environ["HF_HUB_OFFLINE"] = "1"
    environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    environ["DO_NOT_TRACK"] = "1"
    environ.setdefault("GRADIO_SSR_MODE", "False")
    return warnings


def _bundle(root: Path | None) -> Bundle:
    if root is not None:
        return Bundle(root.resolve(), Path(__file__).resolve().parent.parent)
    return Bundle.locate()


def load_first_model(engine: Any, options: Any) -> None:
    """The model the UI starts with (none with A1111's --skip-load-model-at-start), and --vae-path's VAE."""
    if options.demo:
        engine.load_demo()
    elif not options.load_model:
        logging.info("No model loaded at start (--skip-load-model-at-start / --ui-debug-mode): pick one in the UI")
        return
    elif options.model:
        engine.load(options.model)
    elif engine.checkpoints:
        engine.load(engine.checkpoints[0].title)
    else:
        logging.warning("No model in models/Stable-diffusion yet: the UI starts, generation needs a model")
        return
    if options.vae_path:
        engine.select_vae(Path(options.vae_path).name)


def main(argv: list[str] | None = None) -> int:
    from runtime.options import parse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    redact_handlers(logging.getLogger())  # the runtime's own log lines mask secrets too

    from runtime.lifeline import start_if_wanted

    start_if_wanted()  # ends this process when the launcher that started it dies
    lang = "zh" if os.environ.get("LANG", "").lower().startswith("zh") else "en"
    args = sys.argv[1:] if argv is None else argv
    remember_environ(os.environ)
    remember_argv(args)
    try:
        try:
            options = parse(args)
        finally:
            os.environ.pop(LOGIN_ENV, None)  # read once; nothing this process starts inherits it
        lang = options.lang
        os.environ.update(options.environ)  # --device-id, --use-cpu: before anything imports torch
        if options.loglevel:
            logging.getLogger().setLevel(options.loglevel)
        for w in [*options.warnings, *safe_environ(os.environ)]:
            logging.warning("%s", w)
        bundle = _bundle(options.root)
        from runtime.engine import Engine, EngineSettings
        from runtime.server import serve

        settings = EngineSettings(vram=options.vram, attention=options.attention, precision=options.precision,
                                  allow_ckpt=options.allow_ckpt, compile=options.compile,
                                  extra_model_dirs=options.extra_model_dirs,
                                  own_paths=(options.model,) if options.model else ())  # fmt: skip
        engine = Engine(bundle, settings)
        load_first_model(engine, options)
        return serve(engine, options)
    except YijianError as e:
        print(f"{e.code}: {e.message(lang)}\n{e.hint(lang)}", file=sys.stderr)
        return int(e.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
