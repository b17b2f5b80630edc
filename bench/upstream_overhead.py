"""What the remote path costs: `selfcritic serve` with vLLM in-process against
`selfcritic serve --upstream` in front of vLLM's own OpenAI server, same model and engine
settings (eager, 32-token KV blocks, whole-prompt prefills, 2 GiB KV cache each).

Two workloads at one concurrency: plain chat, and best-of-8 self-critic with the fast
judge. Both set-ups stay up for the whole run and are measured alternately, the order
flipped each round, so a shared machine's changing load falls on both alike. The in-process
server and the upstream vLLM run side by side, each with its own engine.

    HF_HUB_OFFLINE=1 flock /tmp/vllm.lock .venv/bin/python bench/upstream_overhead.py
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

logger = logging.getLogger("bench.upstream_overhead")

TOPICS = ("why the sky is blue", "how bees make honey", "the water cycle", "how bridges carry "
          "loads", "the rules of chess", "how plants grow", "how a CPU works", "climate")
WORKLOADS = {"plain": None, "best-of-8 fast": {"candidates": 8, "judge": "fast"}}


def body(model: str, i: int, max_tokens: int, self_critic: dict[str, Any] | None) -> dict:
    question = f"Explain {TOPICS[i % len(TOPICS)]} in one short paragraph."
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": 0.8,
                               "messages": [{"role": "user", "content": question}]}
    if self_critic:
        request["self_critic"] = self_critic
    return request


async def measure(server: Server, workload: str, concurrency: int, total: int,
                  max_tokens: int, offset: int) -> tuple[list[Outcome], float]:
    async with http_client(server) as client:
        return await closed_loop(concurrency, total, lambda i: post_json(
            client, "/v1/chat/completions",
            body(server.model, offset + i, max_tokens, WORKLOADS[workload])))


def summarise(outcomes: Sequence[Outcome], wall: float) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200]
    latencies = [o.latency for o in ok]
    return {"requests": len(outcomes), "ok": len(ok), "wall_s": round(wall, 2),
            "requests_per_s": round(len(ok) / wall, 3),
            "completion_tokens_per_s": round(sum(o.completion_tokens for o in ok) / wall, 1),
            "latency_p50_s": rounded(percentile(latencies, 50)),
            "latency_p95_s": rounded(percentile(latencies, 95)),
            "errors": sorted({o.error[:120] for o in outcomes if o.status != 200})}


async def run(args: argparse.Namespace, servers: dict[str, Server]) -> dict[str, Any]:
    for server in servers.values():  # the first requests pay lazy set-up; not measured
        await measure(server, "plain", 4, 4, 16, 0)
        await measure(server, "best-of-8 fast", 1, 1, 16, 0)
    raw: dict[str, dict[str, list[Outcome]]] = {w: {n: [] for n in servers} for w in WORKLOADS}
    walls: dict[str, dict[str, float]] = {w: dict.fromkeys(servers, 0.0) for w in WORKLOADS}
    loads = []
    for r in range(args.rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        for workload in WORKLOADS:
            total = args.concurrency * (args.plain_per_client if WORKLOADS[workload] is None
                                        else 1)
            for name in order:
                outcomes, wall = await measure(servers[name], workload, args.concurrency, total,
                                               args.max_tokens, offset=r * total)
                raw[workload][name] += outcomes
                walls[workload][name] += wall
                loads.append(machine()["loadavg"][0])
                logger.info("round %d, %s, %s: %d requests in %.1f s (load %.2f)", r + 1,
                            workload, name, total, wall, loads[-1])
    results = {w: {n: summarise(raw[w][n], walls[w][n]) for n in servers} for w in WORKLOADS}
    return {"results": results, "load1_during": [min(loads), max(loads)]}


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for workload, by_server in data["results"].items():
        for name, res in by_server.items():
            rows.append([workload, name, res["requests_per_s"], res["completion_tokens_per_s"],
                         res["latency_p50_s"], res["latency_p95_s"],
                         f"{res['ok']}/{res['requests']}"])
        local, remote = by_server["in-process"], by_server["upstream"]
        rows.append([workload, "**upstream / in-process**",
                     round(remote["requests_per_s"] / local["requests_per_s"], 3), "",
                     round(remote["latency_p50_s"] / local["latency_p50_s"], 3), "", ""])
    m, s = data["machine"], data["settings"]
    head = (f"# upstream_overhead\n\n{m['time']}, {m['cpus']} CPUs, vLLM {m.get('vllm')}, eager, "
            f"concurrency {s['concurrency']}, max_tokens {s['max_tokens']}, {s['rounds']} "
            f"rounds. Load average (1 min) at start {m['loadavg'][0]}, during "
            f"{data['load1_during'][0]}–{data['load1_during'][1]}.\n\n")
    return head + md_table(["workload", "server", "requests/s", "completion tok/s", "p50 s",
                            "p95 s", "ok"], rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--plain-per-client", type=int, default=3,
                        help="Plain requests per client and round (best-of-8: one each).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--name", default="upstream_overhead", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    start_machine = machine()
    model_dir, served = default_model_dir()
    servers: dict[str, Server] = {}
    upstream: Server | None = None
    try:  # one start at a time, so no start competes with another for the CPU
        servers["in-process"] = start_selfcritic(True, name="in-process")
        upstream = start_vllm(model_dir, served, True, name="vllm-upstream",
                              extra=OUR_CPU_ENGINE_ARGS)
        servers["upstream"] = start_selfcritic(True, ["--upstream", upstream.url],
                                               name="upstream")
        data = asyncio.run(run(args, servers))
    finally:
        for server in servers.values():
            server.stop()
        if upstream is not None:
            upstream.stop()
    data = {"benchmark": "upstream_overhead", "machine": start_machine,
            "machine_at_end": machine(),
            "settings": {**{k: v for k, v in vars(args).items() if k != "verbose"},
                         "model": served, "eager": True, "max_model_len": 2048},
            **data}
    return publish(args.name, data, markdown(data))


if __name__ == "__main__":
    raise SystemExit(main())
