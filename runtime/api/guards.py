"""What stands in front of every route: the Host check and the login for the API's own pages.

A runtime that listens only on 127.0.0.1 has no login by default, so a web page
could reach it through DNS rebinding (its own host name made to point at
127.0.0.1): the browser then sends that foreign name in ``Host``.
:class:`LoopbackHostOnly` answers such requests 421 before any route runs.
With ``--listen`` the check is off: other computers use other names, and a
login is required there anyway.
"""

from __future__ import annotations

from typing import Any

from runtime.api.routes import error_response
from runtime.errors import HostNotAllowed

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback_host(value: str) -> bool:
    """``127.0.0.1``, ``localhost`` or ``[::1]``, each with or without ``:port``."""
    v = value.strip().lower()
    for name in LOOPBACK_NAMES:
        if v == name:
            return True
        if v.startswith(name + ":"):
            port = v[len(name) + 1 :]
            return port.isascii() and port.isdigit() and len(port) <= 5
    return False


class LoopbackHostOnly:
    """ASGI middleware: HTTP and WebSocket requests whose Host is not a loopback name are refused."""

    def __init__(self, app: Any, lang: str = "en") -> None:
        self.app = app
        self.lang = lang

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
            if not is_loopback_host(host):
                if scope["type"] == "websocket":  # closed before it is accepted: the client sees HTTP 403
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = error_response(HostNotAllowed(host[:100] or "(none)"), self.lang)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
