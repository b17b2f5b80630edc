#!/usr/bin/env python3
"""The image's HEALTHCHECK: exit 0 when GET /health on the local server answers 200.

Python's standard library only, so the image needs no curl; the port follows
SELFCRITIC_PORT like the server does.
"""

import os
import sys
import urllib.request

port = os.environ.get("SELFCRITIC_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:  # connection refused, 503 while loading, timeout
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
