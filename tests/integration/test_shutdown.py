"""SIGTERM drains a server's in-flight requests; a dead engine makes a server exit non-zero.
Either way the whole process tree exits: no vLLM engine core, worker or resource tracker
outlives the server. Each test stops a server of its own, never the session's shared one."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import httpx
import psutil

from tests.support.live_server import API_KEY, MODEL, metric_value

AUTH = {"Authorization": f"Bearer {API_KEY}"}
TREE_EXIT_S = 20
"""How long the server's processes may outlive it (a resource tracker exits when its
last user does)."""


def _session(sid: int) -> list[psutil.Process]:
    """Live processes of the server's session (servers start in a session of their own,
    and processes keep it when orphaned and re-parented)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _assert_tree_exits(sid: int) -> None:
    deadline = time.monotonic() + TREE_EXIT_S
    while (left := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    described = []
    for process in left:
        try:
            described.append((process.pid, process.name(), " ".join(process.cmdline())[:80]))
        except psutil.Error:
            continue
    for process in left:  # do not leak them into the next test run
        process.kill()
    assert not described, f"still alive {TREE_EXIT_S} s after the server exited: {described}"


def _wait_admitted(url: str, pending: concurrent.futures.Future, timeout_s: float = 240) -> None:
    """Until the server has a request in flight (admitted and running or queued); fails at
    once, with the answer, if the request ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pending.done():
            raise AssertionError(f"the request ended before it was seen in flight: "
                                 f"{pending.result()!r}")
        metrics = httpx.get(url + "/metrics", headers=AUTH, timeout=10).text
        if metric_value(metrics, "selfcritic_admission_inflight_sequences") >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"no request was in flight within {timeout_s} s")


STORY_TOKENS = 400
"""Long enough to be seen in flight between two polls on a fast machine, short enough to
drain in seconds on a slow one."""


def test_sigterm_drains_in_flight_requests(launch_server) -> None:
    # A drain long enough for a loaded machine: the test is that the request finishes
    server = launch_server(["--api-key", API_KEY, "--shutdown-drain-s", "600"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story."}],
            "max_tokens": STORY_TOKENS, "ignore_eos": True, "temperature": 0.9, "seed": 1}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, server.url + "/v1/chat/completions", headers=AUTH,
                              json=body, timeout=300)
        _wait_admitted(server.url, pending)
        tree = _session(server.process.pid)
        assert any("EngineCore" in " ".join(p.cmdline()) for p in tree), tree
        server.process.send_signal(signal.SIGTERM)
        response = pending.result()
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == STORY_TOKENS  # not cut short
    assert server.process.wait(120) == 0
    assert "Shutting the engine down" in server.log()
    _assert_tree_exits(server.process.pid)


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
    _assert_tree_exits(server.process.pid)  # the killed core's worker included
