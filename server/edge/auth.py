"""API keys: `Authorization: Bearer KEY`, compared in constant time against every key and
checked on the headers alone, before any body is read. Also the start-up rule: no key on
a non-loopback address only with `--allow-unauthenticated`, and a warning whenever open."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Sequence

from starlette.requests import Request

from server.edge.errors import APIError
from server.edge.keys import configured_keys
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

OPS_PATHS = frozenset({"/health", "/metrics"})
"""Open to probes and scrapers unless `--protect-health`."""


class APIKeyChecker:
    """Checks bearer tokens; with no keys configured every request passes. Every path
    needs a key (docs, schema, version and unknown routes included) except `open_paths`."""

    def __init__(self, keys: Sequence[str], open_paths: Iterable[str] = ()) -> None:
        self._keys = [k.encode() for k in keys]
        self.open_paths = frozenset(open_paths)

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> APIKeyChecker:
        """Keys from `--api-key` and `--api-key-file` (a bad file is a `ValueError`)."""
        keys = configured_keys(settings.api_key, settings.api_key_file)
        return cls(keys, open_paths=() if settings.protect_health else OPS_PATHS)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def denial(self, route: str, authorization: str) -> APIError | None:
        """The 401 for a request to `route` (the path without the root path) carrying this
        Authorization header, or None when it may pass."""
        if not self._keys or route in self.open_paths or self._matches(authorization):
            return None
        return _unauthorized()

    def check(self, request: Request) -> None:
        """The same check as a route dependency (the middleware has already run it)."""
        if self._keys and not self._matches(request.headers.get("authorization", "")):
            raise _unauthorized()

    def _matches(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        # Compare against every key so timing does not reveal which one (or none) matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        return matched


def _unauthorized() -> APIError:
    return APIError(401, "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
                    code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class UnsafeExposureError(ValueError):
    """Serving a non-loopback address without a key, unasked."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name or an empty string (every interface)
        return False


def check_exposure(settings: ServerSettings, auth: APIKeyChecker) -> None:
    """Refuse an open non-loopback server unless allowed; warn whenever it is open."""
    if auth.enabled:
        return
    local = is_loopback(settings.host)
    if not local and not settings.allow_unauthenticated:
        raise UnsafeExposureError(
            f"Refusing to serve {settings.host} without an API key: anyone who can reach "
            "it could use it. Set --api-key-file (or SELFCRITIC_API_KEY), or pass "
            "--allow-unauthenticated if something in front of it authenticates.")
    logger.warning("Serving WITHOUT an API key on %s: every client is accepted%s",
                   settings.host, "" if local else " (--allow-unauthenticated)")
