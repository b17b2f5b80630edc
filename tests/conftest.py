"""Shared fixtures: `launch_server` starts the real `selfcritic serve` as a subprocess
(with the project's one launcher, `evaluation.local_server`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.code.sandbox import Limits, Sandbox, SandboxUnavailable
from evaluation.local_server import bound_url, wait_healthy

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = float(os.environ.get("SELFCRITIC_TEST_START_TIMEOUT", "600"))


@dataclass
class ServerProcess:
    """A running server: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(args: list[str], log_path: Path, env: dict[str, str] | None = None,
                 health_headers: dict[str, str] | None = None) -> ServerProcess:
    """Start `selfcritic serve ARGS` on a port it binds itself (`--port 0`: no other
    process can take it between choosing and binding) and wait until /health is 200.
    The model is the fast 135M one unless ARGS name another (a later --model wins)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [sys.executable, "-m", "selfcritic", "serve", "--model", TEST_MODEL, "--port", "0",
         "--enforce-eager", *args], cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    server = ServerProcess(bound_url(process, log_path), process, log_path)
    if not wait_healthy(server.url, process, server.log, START_TIMEOUT_S, health_headers, 1.0):
        server.stop(signal.SIGKILL)
        raise RuntimeError(f"server not healthy after {START_TIMEOUT_S}s:\n"
                           f"{server.log()[-4000:]}")
    return server


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
