"""Last in the session (file order): SIGTERM drains the shared server; a dead engine
makes a second server exit non-zero."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import httpx
import psutil
from conftest import API_KEY, MODEL  # type: ignore[import-not-found]

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_sigterm_drains_in_flight_requests(server) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story."}],
            "max_tokens": 64, "temperature": 0.9, "seed": 1}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, server.url + "/v1/chat/completions", headers=AUTH,
                              json=body, timeout=300)
        time.sleep(1.0)  # the request is in flight
        server.process.send_signal(signal.SIGTERM)
        response = pending.result()
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] > 0
    assert server.process.wait(120) == 0
    assert "Shutting the engine down" in server.log()


def test_engine_death_exits_non_zero(launch_server) -> None:
    server = launch_server([])
    assert httpx.get(server.url + "/health").status_code == 200
    children = psutil.Process(server.process.pid).children(recursive=True)
    engine = [p for p in children if "EngineCore" in " ".join(p.cmdline()) + p.name()]
    assert engine, [(p.name(), p.cmdline()) for p in children]
    for process in engine:
        process.kill()
    code = server.process.wait(120)
    assert code != 0
    assert "engine" in server.log().lower()
