"""ASGI middleware (plain ASGI, no per-request task): body size limit, metrics, last-resort 500.

* A body over ``max_body_bytes`` (by Content-Length, or counted as it streams) gets 413.
* Every request is counted and timed under its route template (``/v1/similar-items/{item_id}``,
  so ids never become label values); unmatched paths count as ``<unmatched>``.
* Any exception that escapes the app becomes a 500 JSON body (the traceback goes to the log).
"""
from __future__ import annotations

import json
import logging
import time

from starlette.exceptions import HTTPException

log = logging.getLogger("recforge.serve")


class _BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTPExceptions through to a 413 answer."""

    def __init__(self, limit: int):
        super().__init__(413, f"request bodies are limited to {limit} bytes")


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class GuardAndMeasure:
    def __init__(self, app, metrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        limit = self.max_body_bytes

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        received = {"bytes": 0}

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    raise _BodyTooLarge(limit)
            return message

        too_large = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = True
        try:
            if too_large:
                raise _BodyTooLarge(limit)
            await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if not status["started"]:
                status["code"] = 413
                await _send_json(send, 413, {"error": "body_too_large",
                                             "detail": f"request bodies are limited to {limit} bytes"})
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not status["started"]:
                status["code"] = 500
                await _send_json(send, 500, {"error": "internal", "detail": "internal server error"})
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe_request(template, scope.get("method", ""), status["code"],
                                         time.perf_counter() - start)
