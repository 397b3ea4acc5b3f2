"""ASGI middleware: body size limit, API key, access log (no bodies, no customer data)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from typing import Any

access_log = logging.getLogger("callcast.api.access")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes`` (declared length or streamed), before the app reads them."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, {"detail": f"Request body over {self.max_bytes} bytes."})
            return
        seen = 0

        class TooLarge(Exception):
            pass

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await send_json(send, 413, {"detail": f"Request body over {self.max_bytes} bytes."})


class ApiKeyMiddleware:
    """The API-key rule, enforced on the address each connection actually arrived on.

    ``scope["server"]`` is the local socket address of the connection, whatever ``CALLCAST_API__HOST`` says:
    a server started as ``uvicorn ... --host 0.0.0.0`` still answers loopback clients without a key, and every
    other client needs ``X-API-Key`` equal to ``key`` (constant-time comparison) — or gets 403 when no key is
    configured at all, so a misbound server never serves the open network.
    """

    def __init__(self, app, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not is_loopback(str((scope.get("server") or ("127.0.0.1",))[0])):
            if self.key is None:
                await send_json(
                    send,
                    403,
                    {
                        "detail": "This API is reachable beyond loopback but has no API key: the operator must "
                        "set CALLCAST_API__API_KEY or bind to 127.0.0.1."
                    },
                )
                return
            given = next((v for k, v in scope.get("headers") or [] if k == b"x-api-key"), b"")
            if not hmac.compare_digest(given, self.key):
                await send_json(send, 401, {"detail": "Missing or wrong X-API-Key header."})
                return
        elif scope["type"] == "http" and self.key is not None:
            given = next((v for k, v in scope.get("headers") or [] if k == b"x-api-key"), b"")
            if not hmac.compare_digest(given, self.key):
                await send_json(send, 401, {"detail": "Missing or wrong X-API-Key header."})
                return
        await self.app(scope, receive, send)


class AccessLogMiddleware:
    """One line per request: method, path without query string, status, milliseconds. No bodies."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            access_log.info(
                '%s "%s %s" %d %.1fms',
                (scope.get("client") or ("-",))[0], scope["method"], scope["path"], status,
                (time.perf_counter() - t0) * 1000,
            )  # fmt: skip


async def send_json(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
