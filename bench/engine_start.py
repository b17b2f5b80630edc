"""How long `VLLMEngine.start` plus warm-up takes, compiled or eager, start after start;
with `--serve`, how the built-in models compare as a served model.

Each repeat starts a model's engine in this process (`--model`, default the default
model), warms it up, and closes it; a compiled start on a CPU reuses the previous start's
inductor cache (`critic_loop/runtime/engines/compile_cache.py`), so the first repeat on a machine
shows the cold cost and the later ones the warm one. Run it alone: starts are CPU-bound.

`--serve` starts `selfcritic serve --model M` for each `--model`, interleaved (A, B, A,
B, ...), and measures the seconds to a healthy /health, one chat answer's latency and
tokens/s (max_tokens 128, temperature 0), the peak RSS of the server's process tree, and
the answers to the newcomer's demo questions with no temperature given (the model's
generation_config.json defaults); results in bench/results/builtin_models.{json,md}.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_start.py --repeats 2
    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_start.py --eager
    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_start.py --serve --eager --repeats 2 \\
        --model smollm2-135m-instruct --model qwen2.5-coder-0.5b-instruct
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # bench/ is not a package: its folder is on sys.path
    machine,
    md_table,
    process_tree_rss,
    rounded,
    setup_logging,
    start_selfcritic,
    write_results,
)

logger = logging.getLogger("bench.engine_start")


DEMO_QUESTIONS = ("What is the capital of France?",
                  "Write a Python function that reverses a string.")
CHAT_QUESTION = "Explain in a few sentences how a hash table works."


async def start_once(eager: bool, model_spec: str = "default") -> tuple[float, float]:
    """Seconds to start the engine, and to warm it up."""
    from critic_loop.runtime.engines.vllm_async import EngineConfig, VLLMEngine

    config = EngineConfig.for_model(model_spec, enforce_eager=eager)  # built before the clock
    started = time.monotonic()
    engine = VLLMEngine.start(config)
    ready = time.monotonic()
    await engine.warm_up()
    warm = time.monotonic()
    await engine.close()
    return ready - started, warm - ready


class PeakRss:
    """Samples the resident memory of this process's children (the server's process tree)
    every `interval_s` in a thread; `peak` is the largest sum seen."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        import psutil

        me = os.getpid()
        while not self._stop.wait(interval_s):
            # this process's tree less this process: the server's tree
            self.peak = max(self.peak, process_tree_rss(me) - psutil.Process(me).memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def chat(client: httpx.Client, model: str, question: str, **sampling: Any) -> dict[str, Any]:
    """One chat request: its answer, latency, completion tokens and tokens/s."""
    started = time.monotonic()
    response = client.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": question}], **sampling})
    seconds = time.monotonic() - started
    response.raise_for_status()
    body = response.json()
    tokens = body["usage"]["completion_tokens"]
    return {"question": question, "sampling": sampling, "seconds": rounded(seconds),
            "completion_tokens": tokens, "tokens_per_s": rounded(tokens / seconds, 1),
            "answer": body["choices"][0]["message"]["content"]}


def serve_once(model: str, eager: bool) -> dict[str, Any]:
    """Start `selfcritic serve --model MODEL`, measure it, stop it."""
    with PeakRss() as rss:
        server = start_selfcritic(eager, ["--model", model], name=f"serve-{model}",
                                  model_name=model)
        try:
            with httpx.Client(base_url=server.url, timeout=900) as client:
                timed = chat(client, model, CHAT_QUESTION, max_tokens=128, temperature=0)
                demos = [chat(client, model, q, max_tokens=256) for q in DEMO_QUESTIONS]
        finally:
            server.stop()
    return {"model": model, "eager": eager, "ready_s": rounded(server.started_s, 1),
            "chat": timed, "demo": demos, "peak_rss_gib": rounded(rss.peak / 1024**3, 2),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def serve_main(models: Sequence[str], eager: bool, repeats: int) -> int:
    """`--serve`: the built-in models, interleaved, `repeats` rounds."""
    runs: list[dict[str, Any]] = []
    before = machine()
    for i in range(repeats):
        for model in models:
            run = serve_once(model, eager)
            logger.info("round %d %s: ready %.0f s, %d tokens in %.1f s (%.1f tok/s), "
                        "peak RSS %.2f GiB", i + 1, model, run["ready_s"],
                        run["chat"]["completion_tokens"], run["chat"]["seconds"],
                        run["chat"]["tokens_per_s"], run["peak_rss_gib"])
            runs.append({"round": i + 1, **run})
            write_serve_results(before, runs)  # after each run: a long run loses nothing
    return 0


def write_serve_results(before: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    rows = [[r["round"], r["model"], r["ready_s"], r["chat"]["seconds"],
             r["chat"]["completion_tokens"], r["chat"]["tokens_per_s"], r["peak_rss_gib"],
             " / ".join(f"{x:.1f}" for x in r["loadavg"])] for r in runs]
    markdown = ("# Built-in models served (`selfcritic serve --enforce-eager`)\n\n"
                f"Machine before: {before}\n\n"
                + md_table(["round", "model", "ready s", "chat s", "tokens", "tok/s",
                            "peak RSS GiB", "load 1/5/15 after"], rows)
                + f"\nChat: \"{CHAT_QUESTION}\", max_tokens 128, temperature 0.\n\n"
                "## Demo questions (no temperature: the model's generation_config.json "
                "defaults; max_tokens 256)\n")
    for r in runs:
        for demo in r["demo"]:
            answer = demo["answer"].replace("\n", "\n    ")
            markdown += (f"\n**{r['model']}, round {r['round']}: {demo['question']}** "
                         f"({demo['completion_tokens']} tokens, {demo['seconds']} s)\n\n"
                         f"    {answer}\n")
    write_results("builtin_models", {"machine_before": before, "machine_after": machine(),
                                      "runs": runs}, markdown)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--eager", action="store_true", help="Eager (default: compiled).")
    parser.add_argument("--repeats", type=int, default=2, help="Starts, one after another "
                        "(with --serve: rounds over the models).")
    parser.add_argument("--model", action="append", help="A model (`selfcritic models` "
                        "names one) or directory; repeat for several (default: default).")
    parser.add_argument("--serve", action="store_true", help="Measure `selfcritic serve` "
                        "per model instead: ready time, one chat answer, peak RSS, demo "
                        "questions.")
    args = parser.parse_args(argv)
    setup_logging()
    logger.info("machine: %s", machine())
    models = args.model or ["default"]
    if args.serve:
        return serve_main(models, args.eager, args.repeats)
    for i in range(args.repeats):
        start_s, warm_s = asyncio.run(start_once(args.eager, models[i % len(models)]))
        logger.info("start %d (%s): %.1f s to start, %.1f s to warm up", i + 1,
                    "eager" if args.eager else "compiled", start_s, warm_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
