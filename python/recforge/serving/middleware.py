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
        status = [500, False]         # the answer's status, whether it started
        limit = self.max_body_bytes

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0], status[1] = message["status"], True
            await send(message)

        too_large = False
        may_have_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                may_have_body = True
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = True
            elif name == b"transfer-encoding":
                may_have_body = True
        inner_receive = receive
        if may_have_body:             # without either header an HTTP/1.1 request has no body
            received = [0]

            async def inner_receive():
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise _BodyTooLarge(limit)
                return message
        try:
            if too_large:
                raise _BodyTooLarge(limit)
            await self.app(scope, inner_receive, send_wrapper)
        except _BodyTooLarge:
            if not status[1]:
                status[0] = 413
                await _send_json(send, 413, {"error": "body_too_large",
                                             "detail": f"request bodies are limited to {limit} bytes"})
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not status[1]:
                status[0] = 500
                await _send_json(send, 500, {"error": "internal", "detail": "internal server error"})
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe_request(template, scope.get("method", ""), status[0],
                                         time.perf_counter() - start)
