"""Per-request bookkeeping as ASGI middleware: the request id (taken from `X-Request-Id`
or made, echoed back, put in logs), the body-size limit, the request metrics (a client
that left early counts as 499), and the last-resort 500."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.edge.errors import CLIENT_CLOSED, APIError, BodyTooLargeError, api_error_for, error_body
from server.load.metrics import Metrics

if TYPE_CHECKING:
    from server.edge.auth import APIKeyChecker

logger = logging.getLogger(__name__)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ENDPOINTS = {"/v1/chat/completions", "/v1/completions", "/v1/critique", "/critique", "/v1/models", "/health",
              "/version", "/metrics"}


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (for the JSON log format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


@dataclass
class _Exchange:
    """What the middleware saw of one request/response exchange."""

    status: int = 500
    started: bool = False
    completed: bool = False
    client_gone: bool = False

    def outcome(self) -> int:
        """The status to count: 499 when the client left before the answer was complete."""
        return CLIENT_CLOSED if self.client_gone and not self.completed else self.status


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming and disconnects pass through.
    It also answers exceptions nothing else handled: a 500 carrying the request id in its
    body and its `X-Request-Id` header."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int,
                 auth: APIKeyChecker | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.auth = auth

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
        exchange = _Exchange()
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status, exchange.started = message["status"], True
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                exchange.completed = True
            await send(message)

        declared = headers.get(b"content-length")
        # The key is checked on the headers, before the body is read or even measured.
        early = self.auth.denial(route, headers.get(b"authorization", b"").decode(
            "latin-1")) if self.auth else None
        if early is None and declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            early = api_error_for(BodyTooLargeError(self.max_body_bytes), request_id)
        if early is not None:
            await _send_error(send_with_id, early)
            self._observe(endpoint, exchange.outcome(), started)
            request_id_var.reset(token)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.disconnect":
                exchange.client_gone = True
            elif message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:  # a chunked body: the handlers answer 413
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        self.metrics.in_flight.labels(endpoint).inc()
        try:
            await self.app(scope, receive_limited, send_with_id)
        except ClientDisconnect:  # Starlette's word for a send to a closed connection
            exchange.client_gone = True
        except Exception as exc:
            if exchange.started:  # too late for a status; the stream's guard missed it
                logger.error("unhandled error after the response started", exc_info=exc)
            else:
                await _send_error(send_with_id, api_error_for(exc, request_id))
        finally:
            self.metrics.in_flight.labels(endpoint).dec()
            self._observe(endpoint, exchange.outcome(), started)
            request_id_var.reset(token)

    def _observe(self, endpoint: str, status: int, started: float) -> None:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error_body(error.status, error.message, error.param, error.code)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
