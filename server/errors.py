"""One place that turns every failure into OpenAI's error shape with the right status.

`{"error": {"message", "type", "param", "code"}}`. Bad input is a 4xx that says what to
fix; only our own bugs are 500s, and those are logged with their traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from critic_loop.engine import EngineError, PromptTooLongError

logger = logging.getLogger(__name__)

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


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error_body(error.status, error.message, error.param, error.code),
                        status_code=error.status, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that map exceptions to OpenAI-shaped responses."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"{message}: no such route. See GET /v1/models, POST /v1/chat/completions."
        return error_response(APIError(exc.status_code, message,
                                       headers=dict(exc.headers or {})))

    @app.exception_handler(PromptTooLongError)
    async def _too_long(_: Request, exc: PromptTooLongError) -> JSONResponse:
        return error_response(APIError(400, str(exc), param="messages",
                                       code="context_length_exceeded"))

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError) -> JSONResponse:
        logger.error("engine error: %s", exc)
        return error_response(APIError(503, f"The engine is unavailable: {exc}",
                                       headers={"Retry-After": "5"}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(APIError(500, f"Internal server error ({type(exc).__name__}).",
                                       code="internal_error"))


def validation_error(errors: Any) -> APIError:
    """A pydantic/FastAPI validation failure as one readable 400."""
    problems = []
    first_param = None
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        param = ".".join(loc) or None
        first_param = first_param or param
        if err.get("type") == "json_invalid":
            problems.append("the body is not valid JSON: "
                            f"{err.get('ctx', {}).get('error', err.get('msg'))}")
            continue
        problems.append(f"{param or 'body'}: {err.get('msg')}")
    message = "Invalid request: " + "; ".join(problems)
    return APIError(400, message, param=first_param, code="invalid_value")
