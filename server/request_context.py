"""Per-request bookkeeping as ASGI middleware: the request id (taken from `X-Request-Id`
or made, echoed back, put in logs), the body-size limit, and the request metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError, error_body
from server.metrics import Metrics

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ENDPOINTS = {"/v1/chat/completions", "/v1/critique", "/critique", "/v1/models", "/health",
              "/version", "/metrics"}


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (for the JSON log format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming and disconnects pass through."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        route = path[len(root):] if root and path.startswith(root) else path
        endpoint = route if route in _ENDPOINTS else "other"
        status = {"code": 500}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        declared = headers.get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject_too_large(send_with_id)
            self._observe(endpoint, 413, started)
            request_id_var.reset(token)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:  # the error handlers answer 413
                    raise body_too_large(self.max_body_bytes)
            return message

        self.metrics.in_flight.labels(endpoint).inc()
        try:
            await self.app(scope, receive_limited, send_with_id)
        finally:
            self.metrics.in_flight.labels(endpoint).dec()
            self._observe(endpoint, status["code"], started)
            request_id_var.reset(token)

    def _observe(self, endpoint: str, status: int, started: float) -> None:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _reject_too_large(self, send: Send) -> None:
        error = body_too_large(self.max_body_bytes)
        body = json.dumps(error_body(error.status, error.message, code=error.code)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def body_too_large(limit: int) -> APIError:
    return APIError(413, f"The request body exceeds the limit of {limit} bytes.",
                    code="request_too_large")
