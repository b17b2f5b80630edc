"""Engine request ids and answer timestamps, shared by the endpoints' answers."""

from __future__ import annotations

import time
import uuid


def engine_id(request_id: str) -> str:
    """Engine request ids must be unique even when clients reuse an X-Request-Id."""
    return f"{request_id}-{uuid.uuid4().hex[:8]}"


def created_now() -> int:
    """An answer's `created`: Unix seconds."""
    return int(time.time())
