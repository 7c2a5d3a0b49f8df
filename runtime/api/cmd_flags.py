"""``GET /sdapi/v1/cmd-flags``: every A1111 1.10 flag with its value, as A1111 answers it.

A1111 answers ``vars(cmd_opts)``: one key per flag, the flag's name with
underscores, the value given or the default.  Here the defaults are this
bundle's (``data_dir`` is the bundle, the model folders are its own), the
flags the runtime itself parses (``--port``, ``--listen``, ``--ckpt``,
``--precision``) and the VRAM, attention and API choices report what is in
effect, and a secret is never shown: ``gradio_auth``/``api_auth`` (and an
ngrok token) are ``"***"`` when set (A1111 would show them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends

from bootstrap.a1111_flags import SECRET_FLAGS, Flag, table
from bootstrap.redact import MASK
from runtime.options import RuntimeOptions

A1111_PRECISION_NAME = {"full": "full", "fp32": "full", "fp16": "half", "bf16": "half"}  # else autocast


def _default(flag: Flag, data: Path, models: Path) -> Any:
    def fill(v: Any) -> Any:
        return v.replace("{data}", str(data)).replace("{models}", str(models)) if isinstance(v, str) else v

    return [fill(v) for v in flag.default] if isinstance(flag.default, list) else fill(flag.default)


def cmd_flags(options: RuntimeOptions, data: Path, models: Path) -> dict[str, Any]:
    """A1111's ``/cmd-flags`` answer for a runtime started with ``options`` in the bundle at ``data``."""
    values = {f.dest: _default(f, data, models) for f in table().flags.values()}
    for g in options.a1111.given.values():
        values[g.flag.dest] = g.value
    values.update(
        port=options.port, listen=options.listen, server_name=None if options.host == "127.0.0.1" else options.host,
        ckpt=options.model, api=options.api, nowebui=options.no_ui,
        medvram=options.vram == "medvram", lowvram=options.vram == "lowvram",
        medvram_sdxl=options.vram == "medvram-sdxl", xformers=options.attention == "xformers",
        no_half=options.precision in ("full", "fp32"),
        precision=A1111_PRECISION_NAME.get(options.precision, "autocast"),
        autolaunch=options.open_browser, timeout_keep_alive=options.timeout_keep_alive, skip_load_model_at_start=not options.load_model,
        gradio_auth=MASK if options.auth else None, api_auth=MASK if options.auth else None, gradio_auth_path=None,
    )  # fmt: skip
    for name in SECRET_FLAGS:  # an ngrok authtoken (no effect here) is never shown either
        dest = table().flags[name].dest
        if options.a1111.has(name):
            values[dest] = MASK
    return values


def router(options: RuntimeOptions, data: Path, models: Path, login: Any) -> APIRouter:
    r = APIRouter(prefix="/sdapi/v1", dependencies=[Depends(login)])

    @r.get("/cmd-flags")
    def get_cmd_flags() -> dict[str, Any]:
        return cmd_flags(options, data, models)

    return r
