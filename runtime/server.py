"""One server, one port: the A1111 API first, the Gradio UI mounted at ``/``.

The API routes are added before Gradio is mounted (routes added after a
mount at ``/`` would never be reached).  uvicorn runs the app; the ready
line ``Running on local URL:  http://127.0.0.1:PORT`` is printed only once
the socket listens, because the launcher waits for exactly that line.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from runtime import server_flags
from runtime.engine import Engine
from runtime.options import RuntimeOptions, remember_started

log = logging.getLogger("yijian.runtime")


def build_app(engine: Engine, options: RuntimeOptions) -> Any:
    from fastapi import FastAPI

    from runtime.api import cmd_flags
    from runtime.api.context import ApiContext
    from runtime.api.controlnet import build_controlnet_router
    from runtime.api.guards import LoopbackHostOnly
    from runtime.api.routes import BasicAuth, build_router, install_error_handlers

    # FastAPI's own /docs, /redoc and /openapi.json would answer without the login: they are off, and the two
    # we serve are added below behind the same login as the API.
    app = FastAPI(title="Yijian", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app, options.lang)
    remember_started(options)  # what GET /sdapi/v1/cmd-flags reports
    server_flags.apply(app, options)  # A1111's --cors-allow-origins, --api-log, --freeze-settings, --api-server-stop
    if not options.listen:
        app.add_middleware(LoopbackHostOnly, lang=options.lang)
    # A1111's --styles-file (the first one given; else the bundle's styles.csv) and --api-server-stop
    styles_file = options.styles_files[0] if options.styles_files else None
    context = ApiContext.create(engine, options.lang, styles_file=Path(styles_file) if styles_file else None,
                                server_stop=options.api_server_stop and options.api)  # fmt: skip
    app.state.api = context
    if options.api:
        app.include_router(build_router(engine, options.auth, options.lang, context=context))
        app.include_router(
            cmd_flags.router(options, engine.bundle.root, engine.bundle.models_dir, BasicAuth(options.auth))
        )
        app.include_router(build_controlnet_router(engine.controlnet_folders, options.auth))
        _add_docs(app, options.auth)
    if options.no_ui:
        return app
    import gradio as gr

    from runtime.ui.app import I18N, build_ui

    ui = build_ui(engine, options.lang)
    ui.queue(default_concurrency_limit=1)
    return gr.mount_gradio_app(app, ui, path="/", auth=options.auth, i18n=I18N, footer_links=["api", "settings"],
                               show_error=True, ssr_mode=False)  # fmt: skip


def _add_docs(app: Any, auth: tuple[str, str] | None) -> None:
    from fastapi import Depends
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse

    from runtime.api.routes import BasicAuth

    login = [Depends(BasicAuth(auth))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=login)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=login)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Yijian API")


def local_url(options: RuntimeOptions) -> str:
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "localhost") else options.host  # --server-name NAME
    return f"http://{f'[{host}]' if ':' in host else host}:{options.port}"


def serve(engine: Engine, options: RuntimeOptions) -> int:
    import uvicorn

    app = build_app(engine, options)

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"Running on local URL:  {local_url(options)}", flush=True)
                if options.listen:
                    print(f"Listening on all interfaces, port {options.port}"
                          + (" (password required)" if options.auth else " WITHOUT A PASSWORD"), flush=True)  # fmt: skip
                if options.open_browser:
                    threading.Thread(target=_open_browser, args=(local_url(options), options.lang), daemon=True).start()

    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                            timeout_keep_alive=options.timeout_keep_alive)  # fmt: skip
    server = ReadyServer(config)
    app.state.api.control["server"] = server  # for A1111's /server-stop and /server-kill (--api-server-stop)
    server.run()
    return 0 if server.started else 3


def _open_browser(url: str, lang: str) -> None:
    """Open the UI where a browser can be shown, and say plainly where it was not (no display, CI)."""
    from bootstrap.browser import open_url, opened_text

    text = opened_text(url, open_url(url))
    print(text.zh if lang == "zh" else text.en, flush=True)
