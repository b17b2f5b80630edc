"""One real server per test session: the default model on the vLLM CPU engine."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.support.live_server import API_KEY, SECOND_KEY


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
