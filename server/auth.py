"""API keys: `Authorization: Bearer KEY`, compared in constant time against every key."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import Request

from server.errors import APIError


class APIKeyChecker:
    """Checks a request's bearer token; with no keys configured every request passes."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, request: Request) -> None:
        if not self._keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        # Compare against every key so timing does not reveal which one (or none) matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise APIError(401, "Missing or invalid API key: send 'Authorization: Bearer "
                           "<key>'.", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})
