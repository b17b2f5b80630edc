"""A small async client for any OpenAI-compatible chat endpoint, with bounded concurrency.

Overload answers (429, 503) are retried after their `Retry-After`; any other failure
becomes an `EndpointError` carrying the server's own message, so a strategy the endpoint
does not support fails with the reason the endpoint gave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 503)
MAX_RETRIES = 6
MAX_RETRY_WAIT_S = 30.0


class EndpointError(Exception):
    """A request the endpoint refused or failed; `status` 0 means no HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def refused(self) -> bool:
        """A 4xx other than overload: the request itself is not acceptable there."""
        return 400 <= self.status < 500 and self.status not in RETRY_STATUSES


@dataclass(frozen=True)
class ChatReply:
    """A chat completion's body and how long its (last) attempt took."""

    body: dict[str, Any]
    seconds: float

    @property
    def texts(self) -> list[str]:
        """The choices' message contents, in the order the endpoint returned them."""
        return [(c.get("message") or {}).get("content") or "" for c in self.body.get("choices", [])]

    @property
    def tokens(self) -> int:
        """prompt + completion tokens from `usage` (0 when the endpoint reports none)."""
        usage = self.body.get("usage") or {}
        return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


class ChatClient:
    """POSTs chat completions to `base_url` with at most `concurrency` in flight."""

    def __init__(self, base_url: str, api_key: str | None = None, concurrency: int = 4,
                 timeout_s: float = 900.0, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=_api_root(base_url), headers=headers,
                                       timeout=timeout_s, transport=transport)
        self._slots = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def model_names(self) -> list[str]:
        """Model ids from `GET /v1/models`."""
        response = await self._http.get("/models")
        if response.status_code != 200:
            raise EndpointError(response.status_code, _error_message(response))
        return [m["id"] for m in response.json().get("data", [])]

    async def chat(self, body: dict[str, Any]) -> ChatReply:
        """One chat completion; waits for a free slot, retries overload answers."""
        async with self._slots:
            for attempt in range(MAX_RETRIES + 1):
                start = time.monotonic()
                try:
                    response = await self._http.post("/chat/completions", json=body)
                except httpx.HTTPError as exc:
                    raise EndpointError(0, f"{type(exc).__name__}: {exc}") from exc
                seconds = time.monotonic() - start
                if response.status_code == 200:
                    return ChatReply(response.json(), seconds)
                if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                    raise EndpointError(response.status_code, _error_message(response))
                wait = _retry_after(response, attempt)
                logger.debug("HTTP %d; retrying in %.1f s", response.status_code, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")


def _api_root(url: str) -> str:
    """`http://host:port` or `.../v1` → the `/v1` root the OpenAI routes hang from."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        wait = float(response.headers.get("retry-after", ""))
    except ValueError:
        wait = 2.0 ** attempt
    return min(max(wait, 0.1), MAX_RETRY_WAIT_S)


def _error_message(response: httpx.Response) -> str:
    """OpenAI's `{"error": {"message"}}`, FastAPI's `{"detail"}`, or the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if "detail" in data:
            return str(data["detail"])[:500]
        if "message" in data:
            return str(data["message"])[:500]
    return response.text[:500]
