"""What the integration tests know about the session's real server: its keys and model
name, and how to read one of its Prometheus metrics."""

from __future__ import annotations

from critic_loop.builtin_models import TEST_MODEL

API_KEY = "test-key-1"
SECOND_KEY = "test-key-2"
MODEL = TEST_MODEL


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus sample `name` over the series that carry `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
