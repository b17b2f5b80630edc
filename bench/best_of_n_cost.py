"""What best-of-N costs over plain sampling of the same candidates, per engine variant.

Each variant (dtype, KV block size) gets its own in-process vLLM engine. Per question and
variant, in rotated order: plain n=N generation, then fast best-of-N with the same seed (so
the same candidates) — interleaved so that the machine's noise hits every variant alike.
Reports medians and spreads of both wall times and their ratio, and per judgment its
prompt tokens and the share the prefix cache served.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/best_of_n_cost.py --variants bfloat16:block128 \\
        bfloat16:block32 bfloat16:block32:answer float32 --questions 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import machine, setup_logging, write_results

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import GenerationRequest, GenerationResult, SamplingOptions

logger = logging.getLogger("bench.best_of_n_cost")

QUESTIONS = [f"What is {a} + {b}? Answer with the number." for a, b in
             [(23, 45), (17, 38), (56, 29), (71, 14), (38, 47), (62, 19), (44, 37), (25, 68),
              (81, 12), (34, 59), (47, 26), (53, 38)]]


@dataclass
class Recorder:
    """Wraps an engine: keeps each judge request's prompt and cached token counts."""

    engine: Any
    judged: list[tuple[int, int]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = await self.engine.generate(requests)
        for request, result in zip(requests, results, strict=True):
            if request.sampling.choices or "-r" in request.request_id:
                self.judged.append((result.prompt_tokens, result.cached_tokens))
        return results


def _all_cores() -> dict[str, str]:
    from critic_loop.runtime.engines.cpu_runtime import BIND_VARIABLE, cpu_list

    return {BIND_VARIABLE: cpu_list(sorted(os.sched_getaffinity(0)))}


def _preload() -> dict[str, str]:
    from critic_loop.runtime.engines.cpu_runtime import find_preload_libraries

    return {"LD_PRELOAD": ":".join(find_preload_libraries())}


def _torch_gomp() -> dict[str, str]:
    """What vLLM preloads by itself: PyTorch's libgomp (found as vLLM finds it)."""
    import torch

    torch_dir = Path(torch.__file__).parent
    found = sorted(glob.glob(str(torch_dir.parent / "torch.libs" / "libgomp*.so*"))
                   + glob.glob(str(torch_dir / "lib" / "libgomp*.so*")))
    return {"LD_PRELOAD": found[0] if found else ""}


CPU_RUNTIME_OPTIONS = {
    "bind-auto": lambda: {"VLLM_CPU_OMP_THREADS_BIND": "auto"},  # vLLM's own: one reserved
    "bind-all": _all_cores,
    "preload": _preload,  # tcmalloc and Intel OpenMP where installed
    "nopreload": _torch_gomp,
}


@contextlib.contextmanager
def engine_environment(env: dict[str, str]) -> Iterator[None]:
    """`env` set while an engine starts (its spawned core reads it), then put back: vLLM
    itself writes LD_PRELOAD into this process's environment at start."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def parse_variant(text: str) -> dict[str, Any]:
    """DTYPE[:blockN][:answer][:eager|:compiled][:bind-auto|:bind-all][:preload|:nopreload]
    [:agreement|:confidence][:waveN] -> engine dtype, KV block size, merge mode, whether
    the engine compiles (None: the --compiled flag decides), the environment its engine
    starts with (the CPU thread binding, LD_PRELOAD; unset: `critic_loop.runtime.engines.cpu_runtime`
    decides) and adaptive sampling (`critic_loop.adaptive`; waveN implies agreement)."""
    dtype, *options = text.split(":")
    variant: dict[str, Any] = {"name": text, "dtype": dtype, "block_size": None,
                               "merge": "text", "eager": None, "env": {},
                               "adaptive": "off", "wave": 0}
    for option in options:
        if option in ("agreement", "confidence"):
            variant["adaptive"] = option
        elif option.startswith("wave"):
            variant["wave"] = int(option.removeprefix("wave"))
            if variant["adaptive"] == "off":
                variant["adaptive"] = "agreement"
        elif option in CPU_RUNTIME_OPTIONS:
            variant["env"].update(CPU_RUNTIME_OPTIONS[option]())
        elif option in ("eager", "compiled"):
            variant["eager"] = option == "eager"
        elif option.startswith("block"):
            variant["block_size"] = int(option.removeprefix("block"))
        elif option in ("answer", "text"):
            variant["merge"] = option
        else:
            raise SystemExit(f"unknown variant option {option!r} in {text!r}")
    return variant


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from critic_loop.runtime.engines.vllm_async import VLLMEngine
    from critic_loop.runtime.model_store import resolve_model

    model = resolve_model(args.model)
    variants = [parse_variant(v) for v in args.variants]
    engines: dict[str, Recorder] = {}
    for v in variants:
        if v["eager"] is None:
            v["eager"] = not args.compiled
        key = f"{v['dtype']}:{v['block_size']}:{v['eager']}:{sorted(v['env'].items())}"
        if key in engines:  # variants that differ only in merge mode share an engine
            v["start_s"] = 0.0
            engines[v["name"]] = engines[key]
            continue
        started = time.monotonic()
        with engine_environment(v["env"]):
            engine = VLLMEngine.from_model(model, dtype=v["dtype"], block_size=v["block_size"],
                                           enforce_eager=v["eager"])
        await engine.warm_up()
        v["start_s"] = round(time.monotonic() - started, 1)
        engines[v["name"]] = engines[key] = Recorder(engine)
    rows: dict[str, dict[str, list[float]]] = {v["name"]: {"plain": [], "best": []}
                                               for v in variants}
    try:
        for q, question in enumerate(QUESTIONS[: args.questions]):
            order = variants[q % len(variants):] + variants[: q % len(variants)]
            for v in order:
                engine = engines[v["name"]]
                messages = [{"role": "user", "content": question}]
                prompt = engine.render_chat(messages)
                sampling = SamplingOptions(max_tokens=args.max_tokens,
                                           temperature=args.temperature, seed=1000 + q)
                started = time.monotonic()
                await engine.generate([GenerationRequest(f"plain-{q}", prompt, sampling,
                                                         n=args.candidates)])
                plain = time.monotonic() - started
                config = SelfCriticConfig(candidates=args.candidates, judge="fast",
                                          comparisons=args.comparisons, seed=q,
                                          schedule=args.schedule, merge=v["merge"],
                                          adaptive=v["adaptive"], adaptive_wave=v["wave"])
                started = time.monotonic()
                judged_before = len(engine.judged)
                result = await best_of_n(engine, prompt, messages, sampling, config,
                                         f"best-{q}-{v['name']}")
                best = time.monotonic() - started
                rows[v["name"]].setdefault("judge_calls", []).append(
                    len(engine.judged) - judged_before)
                rows[v["name"]].setdefault("entrants", []).append(len(result.report.knockout.entrants))
                rows[v["name"]].setdefault("load1", []).append(machine()["loadavg"][0])
                rows[v["name"]].setdefault("candidate_tokens", []).append(
                    result.report.candidate_usage.completion_tokens)
                rows[v["name"]].setdefault("started", []).append(
                    result.report.adaptive.started if result.report.adaptive
                    else args.candidates)
                rows[v["name"]]["plain"].append(plain)
                rows[v["name"]]["best"].append(best)
                logger.info("q%d %s: plain %.2f s, best-of-%d %.2f s (%.2fx)", q, v["name"],
                            plain, args.candidates, best, best / plain)
    finally:
        for engine in {id(e): e for e in engines.values()}.values():
            await engine.close()
    return {"variants": variants, "rows": rows,
            "judged": {v["name"]: engines[v["name"]].judged for v in variants}}


def summarise(raw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for v in raw["variants"]:
        plain, best = raw["rows"][v["name"]]["plain"], raw["rows"][v["name"]]["best"]
        ratios = [b / p for b, p in zip(best, plain, strict=True)]
        judged = raw["judged"][v["name"]]
        prompt_tokens = sum(p for p, _ in judged)
        out.append({
            "variant": v["name"], "start_s": v["start_s"],
            "judge_calls_mean": round(statistics.mean(raw["rows"][v["name"]]["judge_calls"]), 1),
            "entrants_mean": round(statistics.mean(raw["rows"][v["name"]]["entrants"]), 1),
            "plain_median_s": round(statistics.median(plain), 2),
            "plain_range_s": [round(min(plain), 2), round(max(plain), 2)],
            "best_median_s": round(statistics.median(best), 2),
            "best_range_s": [round(min(best), 2), round(max(best), 2)],
            "ratio_median": round(statistics.median(ratios), 2),
            "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "candidate_tokens_mean": round(statistics.mean(
                raw["rows"][v["name"]]["candidate_tokens"]), 1),
            "started_mean": round(statistics.mean(raw["rows"][v["name"]]["started"]), 2),
            "load1_range": [min(raw["rows"][v["name"]]["load1"]),
                            max(raw["rows"][v["name"]]["load1"])],
            "judgments": len(judged),
            "judge_prompt_tokens_mean": round(prompt_tokens / max(1, len(judged)), 1),
            "judge_cached_share": round(sum(c for _, c in judged) / max(1, prompt_tokens), 3),
        })
    return out


def markdown(summary: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"# Best-of-{args.candidates} (fast, K={args.comparisons}, {args.schedule}) "
             f"against plain n={args.candidates}", "",
             f"{args.questions} questions, {args.max_tokens} tokens, interleaved per question; "
             "medians with [min, max].", "",
             "| variant | plain n=N s | best-of-N s | ratio | entrants | judge calls "
             "| judge prompt tokens | cached | candidate tokens | candidates started | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary:
        lines.append(
            f"| {row['variant']} | {row['plain_median_s']} {row['plain_range_s']} | "
            f"{row['best_median_s']} {row['best_range_s']} | {row['ratio_median']} "
            f"{row['ratio_range']} | {row['entrants_mean']} | {row['judge_calls_mean']} | "
            f"{row['judge_prompt_tokens_mean']} | "
            f"{row['judge_cached_share']:.0%} | {row['candidate_tokens_mean']} | "
            f"{row['started_mean']} | {row['load1_range']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--variants", nargs="+", default=["float32", "bfloat16"],
                        help="DTYPE[:blockN][:answer][:eager|:compiled][:bind-auto|"
                             ":bind-all][:preload|:nopreload] per run, e.g. "
                             "float32:block32:answer (variants differing only in merge "
                             "share an engine)")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--comparisons", type=int, default=2)
    parser.add_argument("--schedule", default="pipelined", choices=("pipelined", "rounds"))
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--compiled", action="store_true",
                        help="compile variants that do not say :eager or :compiled "
                             "(default: eager)")
    parser.add_argument("--name", default="best_of_n_cost", help="results file stem")
    args = parser.parse_args(argv)
    setup_logging()
    raw = asyncio.run(run(args))
    summary = summarise(raw)
    payload = {"args": vars(args), "machine": machine(), "summary": summary, "raw": raw}
    write_results(args.name, payload, markdown(summary, args))
    logger.info("\n%s", markdown(summary, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
