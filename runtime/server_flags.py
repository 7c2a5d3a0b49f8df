"""What A1111's server flags do to the app: CORS, request logging and frozen settings.

``--cors-allow-origins``/``--cors-allow-origins-regex`` let a web page on
another origin (a browser plugin, a web client) call the API;
``--api-log`` logs each API request in one line (through the logging that
masks secrets); ``--freeze-settings`` refuses every ``POST
/sdapi/v1/options``, ``--freeze-specific-settings a,b`` refuses those that
change ``a`` or ``b``.  ``--api-server-stop``'s routes are
:mod:`runtime.api.server_control`'s; ``--timeout-keep-alive`` goes to uvicorn
in :mod:`runtime.server`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from runtime.options import RuntimeOptions

log = logging.getLogger("yijian.runtime")
OPTIONS_PATH = "/sdapi/v1/options"


def _refusal(options: RuntimeOptions, keys: list[str]) -> tuple[int, dict[str, Any]]:
    which = ", ".join(keys) if keys else "every setting"
    zh = f"设置已被 {'--freeze-settings' if options.freeze_settings else '--freeze-specific-settings'} 锁定：{which}"
    en = f"changing settings is disabled by {'--freeze-settings' if options.freeze_settings else '--freeze-specific-settings'}: {which}"
    text = zh if options.lang == "zh" else en
    return 403, {"error": "SETTINGS_FROZEN", "detail": text, "errors": text}


class FrozenSettings:
    """ASGI middleware: POST /sdapi/v1/options answers 403 for frozen settings (the body is replayed otherwise)."""

    def __init__(self, app: Any, options: RuntimeOptions) -> None:
        self.app, self.options = app, options

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != OPTIONS_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            keys = list(json.loads(body or b"{}"))
        except (ValueError, TypeError):
            keys = []  # the route itself answers a body that is not a JSON object
        frozen = keys if self.options.freeze_settings else [k for k in keys if k in self.options.frozen_settings]
        if self.options.freeze_settings or frozen:
            status, payload = _refusal(self.options, frozen)
            data = json.dumps(payload, ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": data})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                message: dict[str, Any] = await receive()
                return message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def apply(app: Any, options: RuntimeOptions) -> None:
    """Add what the A1111 server flags ask for to the FastAPI ``app`` (before the UI is mounted)."""
    if options.cors_origins or options.cors_regex:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                           allow_origin_regex=options.cors_regex, allow_methods=["*"], allow_headers=["*"],
                           allow_credentials=True)  # fmt: skip
    if options.freeze_settings or options.frozen_settings:
        app.add_middleware(FrozenSettings, options=options)
    if options.api_log:
        _add_api_log(app)


def _add_api_log(app: Any) -> None:
    @app.middleware("http")
    async def api_log(request: Any, call_next: Any) -> Any:
        if not request.url.path.startswith("/sdapi/"):
            return await call_next(request)
        started = time.monotonic()
        response = await call_next(request)
        client = request.client.host if request.client else "-"
        log.info("API %s %s %s %d %.0f ms", client, request.method, request.url.path, response.status_code,
                 (time.monotonic() - started) * 1000)  # fmt: skip
        return response
