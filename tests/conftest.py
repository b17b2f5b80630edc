"""Shared fixtures: `launch_server` starts the real `selfcritic serve` as a subprocess
(with the project's one launcher, `evaluation.local_server`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.code.sandbox import Limits, Sandbox, SandboxUnavailable
from evaluation.local_server import ServerProcess, launch

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = float(os.environ.get("SELFCRITIC_TEST_START_TIMEOUT", "600"))


def start_server(args: list[str], log_path: Path, env: dict[str, str] | None = None,
                 health_headers: dict[str, str] | None = None) -> ServerProcess:
    """Start `selfcritic serve ARGS` on a port it binds itself (`--port 0`: no other
    process can take it between choosing and binding) and wait until /health is 200.
    The model is the fast 135M one unless ARGS name another (a later --model wins)."""
    argv = [sys.executable, "-m", "selfcritic", "serve", "--model", TEST_MODEL, "--port", "0",
            "--enforce-eager", *args]
    return launch(argv, log_path, env=env, cwd=REPO, name="selfcritic serve",
                  start_timeout_s=START_TIMEOUT_S, health_headers=health_headers, interval_s=1.0)


@pytest.fixture(scope="session")
def launch_server(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Callable[..., ServerProcess]]:
    """Factory for real servers; every one started is stopped at the end of the session."""
    started: list[ServerProcess] = []

    def launch(args: list[str], env: dict[str, str] | None = None,
               health_headers: dict[str, str] | None = None) -> ServerProcess:
        log = tmp_path_factory.mktemp("server") / "server.log"
        server = start_server(args, log, env, health_headers)
        started.append(server)
        return server

    yield launch
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    """A probed code sandbox (bwrap or namespaces) for tests that run programs; skips
    where none works."""
    box = Sandbox(Limits(wall_s=10.0))
    try:
        box.isolation  # noqa: B018 (probes)
    except SandboxUnavailable:
        pytest.skip("no sandbox works on this machine")
    return box
