#!/usr/bin/env python3
"""The image's HEALTHCHECK: exit 0 when GET /health on the local server answers 200.

It sends the server's API key when one is set (the first of SELFCRITIC_API_KEY, then of
the file SELFCRITIC_API_KEY_FILE), so it works with --protect-health too; a key given
only as a command-line flag is invisible to it. It loads only the standard library and
`server.edge.keys`, so it starts fast and the image needs no curl. The port follows
SELFCRITIC_PORT like the server does.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping


def health_request(environ: Mapping[str, str]) -> urllib.request.Request:
    from server.edge.keys import configured_keys

    port = environ.get("SELFCRITIC_PORT", "8000")
    given = [k.strip() for k in environ.get("SELFCRITIC_API_KEY", "").split(",") if k.strip()]
    keys = configured_keys(given, environ.get("SELFCRITIC_API_KEY_FILE") or None)
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    return urllib.request.Request(f"http://127.0.0.1:{port}/health", headers=headers)


def main() -> int:
    try:
        with urllib.request.urlopen(health_request(os.environ), timeout=5) as response:
            return 0 if response.status == 200 else 1
    except Exception as error:  # connection refused, 401/503, timeout, unreadable key file
        sys.stderr.write(f"unhealthy: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
