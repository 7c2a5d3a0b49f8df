"""``/server-stop``, ``/server-restart``, ``/server-kill``: only with A1111's ``--api-server-stop``, as in A1111.

Stop and kill end the server (stop lets the requests in flight finish, kill
does not wait for them); the launcher sees the runtime end.  A restart needs a
parent that starts the runtime again, which a hand-started runtime lacks:
as A1111's when it is not restartable, it answers 501.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from runtime.api.context import ApiContext


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()
    if not ctx.server_stop:
        return r

    def server() -> Any:
        return ctx.control.get("server")

    @r.post("/server-stop")
    async def stop() -> Response:
        if server() is not None:
            server().should_exit = True
        return PlainTextResponse("Stopping.")

    @r.post("/server-kill")
    async def kill() -> Response:
        if server() is not None:
            server().should_exit = True
            server().force_exit = True
        return Response(status_code=200)

    @r.post("/server-restart")
    async def restart() -> Response:
        return Response(status_code=501)

    return r
