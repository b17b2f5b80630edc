"""One place that turns every failure into OpenAI's error shape with the right status.

`{"error": {"message", "type", "param", "code"}}`. Bad input is a 4xx that says what to
fix; only our own bugs are 500s, logged with their traceback and answered with the
request id. A client that went away is not an error: no traceback, status 499.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from critic_loop.context_length import CODE as CONTEXT_LENGTH_CODE
from critic_loop.context_length import context_length_message
from critic_loop.engine import EngineError, InvalidRequestError, PromptTooLongError
from server.edge.validation_errors import client_problems

logger = logging.getLogger(__name__)

CLIENT_CLOSED = 499
"""nginx's status for a client that closed the connection before the answer."""

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class APIError(Exception):
    """An error a client should see, with its HTTP status and OpenAI fields."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


class BodyTooLargeError(StarletteHTTPException):
    """Raised while the body is read. An HTTPException because FastAPI passes those on
    from a body read, where it turns anything else into "error parsing the body" (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes.")


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def context_length_error(context: int, prompt_tokens: int, completion_tokens: int, *,
                         param: str, advice: str = "") -> APIError:
    """A 400 in OpenAI's words (which gateways match), then our own advice."""
    message = context_length_message(context, prompt_tokens, completion_tokens)
    return APIError(400, f"{message} {advice}".strip(), param=param, code=CONTEXT_LENGTH_CODE)


def internal_error(request_id: str) -> APIError:
    return APIError(500, f"Internal server error; quote request id {request_id} when "
                    "reporting it.", code="internal_error")


def engine_unavailable() -> APIError:
    """What the client hears when the engine fails; the cause goes to our log only."""
    return APIError(503, "The engine is unavailable; retry later.", code="engine_unavailable",
                    headers={"Retry-After": "5"})


def api_error_for(exc: Exception, request_id: str) -> APIError:
    """The client's view of any exception raised while serving (HTTP handlers and
    streams share it); engine failures and our own bugs are logged here."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, BodyTooLargeError):
        return APIError(413, str(exc.detail), code="request_too_large")
    if isinstance(exc, PromptTooLongError):
        return APIError(400, str(exc), param="messages", code=CONTEXT_LENGTH_CODE)
    if isinstance(exc, InvalidRequestError):
        return APIError(400, str(exc), param=exc.param, code="invalid_value")
    if isinstance(exc, EngineError):
        logger.error("engine error: %s", exc)
        return engine_unavailable()
    logger.error("unhandled error", exc_info=exc)
    return internal_error(request_id)


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error_body(error.status, error.message, error.param, error.code),
                        status_code=error.status, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that map exceptions to OpenAI-shaped responses. Exceptions
    none of these handle are answered by `RequestContextMiddleware` (a 500 with the id)."""
    from server.load.cancellation import ClientDisconnected  # it imports this module

    async def _known(request: Request, exc: Exception) -> JSONResponse:
        return error_response(api_error_for(exc, request.state.request_id))

    for kind in (APIError, BodyTooLargeError, PromptTooLongError, InvalidRequestError,
                 EngineError):
        app.add_exception_handler(kind, _known)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors(), exc.body))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = (f"{message}: no such route. See GET /v1/models, "
                       "POST /v1/chat/completions, POST /v1/completions.")
        return error_response(APIError(exc.status_code, message,
                                       headers=dict(exc.headers or {})))

    async def _gone(_: Request, __: Exception) -> Response:
        logger.info("The client disconnected before the answer; its engine work was aborted")
        return Response(status_code=CLIENT_CLOSED)

    app.add_exception_handler(ClientDisconnected, _gone)
    app.add_exception_handler(ClientDisconnect, _gone)


def validation_error(errors: Any, body: Any = None) -> APIError:
    """A pydantic/FastAPI validation failure as one readable 400; `body` (the parsed
    JSON) lets field paths be given as the client wrote them."""
    problems = client_problems(errors, body)
    message = "Invalid request: " + "; ".join(
        p.message if p.param is None else f"{p.param}: {p.message}" for p in problems)
    return APIError(400, message, param=next((p.param for p in problems if p.param), None),
                    code="invalid_value")
