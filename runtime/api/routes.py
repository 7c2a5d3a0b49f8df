"""``/sdapi/v1``: A1111's API over the same engine the UI uses.

:func:`build_router` puts together one router per concern (generation,
library, settings, information, what is not here yet, server control); an
engineer adding routes adds a module and one line here.  Blocking work
(generation, model switching) runs in FastAPI's thread pool; the engine's
lock queues concurrent requests.  Errors from the engine become JSON answers
with the error's stable code and A1111's error keys (``error``, ``detail``,
``body``, ``errors``): a bad field is a 422 naming the field, as pydantic's
own validation errors are; a feature Yijian does not have yet is a 501.

Gradio's ``auth=`` protects only Gradio's pages, so these routes check the
same credentials themselves (HTTP Basic, as A1111's ``--api-auth``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from bootstrap.errors import ExitCode, YijianError
from runtime.api import extras, generation, info, library, notyet, server_control, settings
from runtime.api.context import ApiContext
from runtime.engine import Engine
from runtime.errors import (
    ArchitectureConfigMissing,
    FeatureNotAvailable,
    HostNotAllowed,
    InvalidRequest,
    ModelLoadFailed,
    ModelNotFound,
    NoModel,
    OptionNotSettable,
    OutOfMemory,
    PickleNotAllowed,
    ScriptNotFound,
)
from runtime.upscale import UpscalerNotFound, UpscalerUnsupported

# A model that cannot be switched to is the client's request failing (4xx), not the server: the model loaded
# before stays loaded and keeps generating.
STATUS = {InvalidRequest: 422, ModelNotFound: 404, PickleNotAllowed: 403, ModelLoadFailed: 422,
          ArchitectureConfigMissing: 422, HostNotAllowed: 421, NoModel: 503, OutOfMemory: 507,
          FeatureNotAvailable: 501, ScriptNotFound: 422, OptionNotSettable: 422, UpscalerNotFound: 422,
          UpscalerUnsupported: 422}  # fmt: skip


def error_response(err: YijianError, lang: str = "en") -> JSONResponse:
    status = next((code for cls, code in STATUS.items() if isinstance(err, cls)), None)
    if status is None:
        status = 422 if err.exit_code == ExitCode.USAGE else 500  # e.g. an unknown sampler name
    message = err.message(lang)
    body: dict[str, Any] = {"error": err.code, "detail": message, "body": "", "errors": message,
                            "hint": err.hint(lang), "code": err.code}  # fmt: skip
    if isinstance(err, InvalidRequest):
        field = err.params.get("field", "")
        body["detail"] = [{"loc": ["body", field], "msg": message, "type": "value_error"}]
    return JSONResponse(body, status_code=status)


class BasicAuth:
    """A dependency that checks HTTP Basic credentials (none configured: everyone may call).

    The header is decoded as UTF-8 (FastAPI's ``HTTPBasic`` takes ASCII only),
    so Chinese passwords work.
    """

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.credentials = credentials

    async def __call__(self, request: Request) -> None:
        if self.credentials is None:
            return
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        ok = scheme.lower() == "basic" and bool(sep) and \
            secrets.compare_digest(user.encode(), self.credentials[0].encode()) and \
            secrets.compare_digest(password.encode(), self.credentials[1].encode())  # fmt: skip
        if not ok:
            raise HTTPException(401, "Incorrect credentials", headers={"WWW-Authenticate": "Basic"})


def build_router(
    engine: Engine,
    credentials: tuple[str, str] | None,
    lang: str = "en",
    *,
    styles_file: Path | None = None,
    server_stop: bool = False,
    context: ApiContext | None = None,
) -> APIRouter:
    ctx = context or ApiContext.create(engine, lang, styles_file=styles_file, server_stop=server_stop)
    router = APIRouter(prefix="/sdapi/v1", dependencies=[Depends(BasicAuth(credentials))])
    router.include_router(generation.router(ctx))
    router.include_router(library.router(ctx))
    router.include_router(settings.router(ctx))
    router.include_router(info.router(ctx))
    router.include_router(extras.router(ctx))
    router.include_router(notyet.router(ctx))
    router.include_router(server_control.router(ctx))
    return router


def install_error_handlers(app: Any, lang: str) -> None:
    @app.exception_handler(YijianError)
    async def on_error(request: Request, err: YijianError) -> JSONResponse:
        return error_response(err, lang)
