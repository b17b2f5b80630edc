"""One real server per test session: the default model on the vLLM CPU engine."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

API_KEY = "test-key-1"
SECOND_KEY = "test-key-2"
MODEL = "smollm2-135m-instruct"


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/")[1:2]:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def server(launch_server: Callable):
    return launch_server(["--api-key", f"{API_KEY},{SECOND_KEY}",
                          "--max-inflight-sequences", "24", "--request-timeout-s", "120"])


@pytest.fixture(scope="session")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0,
                         timeout=300)
