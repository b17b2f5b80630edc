"""Load test of `selfcritic serve`: rising concurrency against a low admission limit, and
resident memory under sustained load.

`levels` mode: closed-loop clients at each concurrency (1, 4, 16, 64 by default) for a fixed
time against a server started with a low `--max-inflight-sequences`, so the higher levels
are refused in part with 429. A refused client waits the server's `Retry-After` before its
next request, as a polite client does. Reported per level: completed requests/s and output
tokens/s, p50/p95/p99 latency of completed requests (and of refusals), and the rejection
rate (429s among all answers).

`flood` mode: at the server's default limits, `--clients` (64) closed-loop clients send
best-of-8 self-critic requests for `--flood-s`, then the same for plain chat; a refused
client waits Retry-After. Reported per case: the share of each status, the latency of
admitted requests at p50/p99 and of refusals (target: no 504, admitted p99 under the
deadline, refusals under 50 ms). Its results are merged into the existing load.json.

`memory` mode: one steady level for `--duration-s` (10 minutes by default), sampling the
resident memory (RSS) of the server's whole process tree (the API process and vLLM's engine
processes, via psutil) every `--sample-s`; reports the RSS after the first minute and at the
end (target: within 10%).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py                           # both modes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --mode levels --level-s 30
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --mode memory --duration-s 600
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --mode flood --flood-s 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # bench/ is not a package: its folder is on sys.path
    RESULTS,
    Outcome,
    Server,
    http_client,
    machine,
    md_table,
    percentile,
    post_json,
    process_tree_rss,
    publish,
    rounded,
    setup_logging,
    start_selfcritic,
)

logger = logging.getLogger("bench.load")

PROMPTS = ("Give three tips for learning a new language.", "What is a prime number?",
           "Describe a sunset in two sentences.", "How do I boil an egg?",
           "Name four planets and one fact about each.", "Why do cats purr?",
           "Explain recursion to a child.", "What causes the seasons?")


def body(server: Server, i: int, max_tokens: int,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": server.model, "max_tokens": max_tokens, "temperature": 0.8,
            "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            **(extra or {})}


async def timed_load(server: Server, concurrency: int, seconds: float, max_tokens: int,
                     on_tick: Any = None, extra: dict[str, Any] | None = None
                     ) -> tuple[list[Outcome], float]:
    """Closed loop for `seconds`: each client sends, and after a 429/503 waits Retry-After.
    A request sent before the end is waited for (the wall time includes it)."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            outcome = await post_json(client, "/v1/chat/completions",
                                      body(server, next(counter), max_tokens, extra))
            outcomes.append(outcome)
            if outcome.status in (429, 503):
                await asyncio.sleep(min(float(outcome.extra.get("retry_after", 1)),
                                        max(0.0, deadline - time.monotonic())))
            elif outcome.status != 200:
                await asyncio.sleep(0.5)  # an unexpected error: do not spin on it

    async def ticker() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            on_tick(outcomes)

    t0 = time.monotonic()
    async with http_client(server) as client:
        tasks = [client_loop(client) for _ in range(concurrency)]
        if on_tick is not None:
            tasks.append(ticker())
        await asyncio.gather(*tasks)
    return outcomes, time.monotonic() - t0


def summarise(outcomes: Sequence[Outcome], wall: float) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    other = [o for o in outcomes if o.status not in (200, 429)]
    latencies = [o.latency for o in ok]
    return {
        "answers": len(outcomes), "completed": len(ok), "rejected_429": len(refused),
        "other_errors": len(other),
        "other_statuses": sorted({o.status for o in other}),
        "rejection_rate": round(len(refused) / len(outcomes), 4) if outcomes else None,
        "wall_s": round(wall, 2),
        "completed_per_s": round(len(ok) / wall, 3),
        "output_tokens_per_s": round(sum(o.completion_tokens for o in ok) / wall, 2),
        "latency_p50_s": rounded(percentile(latencies, 50)),
        "latency_p95_s": rounded(percentile(latencies, 95)),
        "latency_p99_s": rounded(percentile(latencies, 99)),
        "rejection_latency_p50_ms": rounded(
            percentile([o.latency * 1000 for o in refused], 50), 1),
    }


async def run_levels(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for c in args.concurrency:
        load_before = machine()["loadavg"][0]
        outcomes, wall = await timed_load(server, c, args.level_s, args.max_tokens)
        results[str(c)] = {**summarise(outcomes, wall), "load1_before": load_before,
                           "load1_after": machine()["loadavg"][0]}
        r = results[str(c)]
        logger.info("concurrency %d: %d completed (%.2f/s, %.1f tok/s), %.1f%% rejected, "
                    "p50 %.2f s, p99 %s s, load %.2f", c, r["completed"], r["completed_per_s"],
                    r["output_tokens_per_s"], 100 * (r["rejection_rate"] or 0),
                    r["latency_p50_s"] or 0, r["latency_p99_s"], r["load1_after"])
    return results


FLOOD_CASES = {"best-of-8": {"self_critic": {"candidates": 8}}, "chat": {}}


def status_summary(outcomes: Sequence[Outcome], wall: float) -> dict[str, Any]:
    """Share of each status; admitted and refused latency."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[str(o.status)] = counts.get(str(o.status), 0) + 1
    ok = [o.latency for o in outcomes if o.status == 200]
    refused = [o.latency * 1000 for o in outcomes if o.status == 429]
    return {"answers": len(outcomes), "wall_s": round(wall, 1), "statuses": counts,
            "shares": {s: round(c / len(outcomes), 4) for s, c in counts.items()},
            "completed_per_s": round(len(ok) / wall, 3),
            "admitted_p50_s": rounded(percentile(ok, 50)),
            "admitted_p99_s": rounded(percentile(ok, 99)),
            "admitted_max_s": rounded(max(ok, default=None)),
            "refusal_p50_ms": rounded(percentile(refused, 50), 1),
            "refusal_p99_ms": rounded(percentile(refused, 99), 1),
            "refusal_max_ms": rounded(max(refused, default=None), 1)}


async def run_flood(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, extra in FLOOD_CASES.items():
        outcomes, wall = await timed_load(server, args.clients, args.flood_s,
                                          args.flood_max_tokens, extra=extra)
        results[name] = {**status_summary(outcomes, wall), "load1_after": machine()["loadavg"][0]}
        r = results[name]
        logger.info("%s: %s, admitted p50 %s s p99 %s s, refusals p50 %s ms p99 %s ms", name,
                    r["statuses"], r["admitted_p50_s"], r["admitted_p99_s"],
                    r["refusal_p50_ms"], r["refusal_p99_ms"])
    return results


async def run_memory(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def sample(outcomes: Sequence[Outcome]) -> None:
        now = time.monotonic() - t0
        if not samples or now - samples[-1][0] >= args.sample_s:
            samples.append((round(now, 1), process_tree_rss(server.process.pid)))
            logger.info("memory: %.0f s, %d answers, RSS %.1f MiB, load %.2f", now,
                        len(outcomes), samples[-1][1] / 2**20, machine()["loadavg"][0])

    rss_idle = process_tree_rss(server.process.pid)
    outcomes, wall = await timed_load(server, args.memory_concurrency, args.duration_s,
                                      args.max_tokens, on_tick=sample)
    rss_end = process_tree_rss(server.process.pid)
    after_first_minute = next((rss for t, rss in samples if t >= 60), None)
    drift = None if after_first_minute is None else (rss_end - after_first_minute) / after_first_minute
    return {"duration_s": args.duration_s, "concurrency": args.memory_concurrency,
            "rss_idle_bytes": rss_idle, "rss_after_first_minute_bytes": after_first_minute,
            "rss_end_bytes": rss_end, "rss_max_bytes": max((r for _, r in samples), default=None),
            "drift_end_vs_first_minute": None if drift is None else round(drift, 4),
            "within_10_percent": None if drift is None else abs(drift) <= 0.10,
            "samples": samples, "load": summarise(outcomes, wall)}


def flood_markdown(flood: dict[str, Any]) -> str:
    m, s = flood["machine"], flood["settings"]
    rows = []
    for name, r in flood["cases"].items():
        shares = ", ".join(f"{code}: {100 * share:.1f}%" for code, share in
                           sorted(r["shares"].items()))
        rows.append([name, r["answers"], shares, r["completed_per_s"], r["admitted_p50_s"],
                     r["admitted_p99_s"], r["refusal_p50_ms"], r["refusal_p99_ms"],
                     r["refusal_max_ms"], r["load1_after"]])
    return (f"\n## Flood ({m['time']}, load {m['loadavg'][0]} at start)\n\n"
            f"Default limits (`--max-inflight-sequences 256`, adaptive admission), deadline "
            f"`--request-timeout-s {s['request_timeout_s']:g}`; {s['clients']} closed-loop "
            f"clients for {s['flood_s']:g} s per case, max_tokens {s['flood_max_tokens']}, "
            f"T=0.8; best-of-8 uses the server's judge defaults (fast, K=2, pipelined); a "
            f"refused client waits Retry-After.\n\n"
            + md_table(["case", "answers", "statuses", "completed/s", "admitted p50 s",
                        "admitted p99 s", "refusal p50 ms", "refusal p99 ms",
                        "refusal max ms", "load1 after"], rows))


def markdown(data: dict[str, Any]) -> str:
    if "levels" not in data and "memory" not in data:
        return "# load\n" + (flood_markdown(data["flood"]) if "flood" in data else "")
    m, s = data["machine"], data["settings"]
    out = [f"# load\n\n{m['time']}, {m['cpus']} CPUs, vLLM {m.get('vllm')}, eager; server "
           f"`--max-inflight-sequences {s['max_inflight_sequences']}`; plain chat "
           f"completions, max_tokens {s['max_tokens']}, T=0.8; refused clients wait "
           f"Retry-After. Load average (1 min) at start {m['loadavg'][0]}.\n"]
    if "levels" in data:
        rows = [[c, r["completed"], r["completed_per_s"], r["output_tokens_per_s"],
                 r["latency_p50_s"], r["latency_p95_s"], r["latency_p99_s"],
                 f"{100 * r['rejection_rate']:.1f}%", r["rejection_latency_p50_ms"],
                 r["other_errors"], r["load1_after"]]
                for c, r in data["levels"].items()]
        out.append(f"\n## Levels ({s['level_s']} s each)\n\n")
        out.append(md_table(["concurrency", "completed", "req/s", "output tok/s", "p50 s",
                             "p95 s", "p99 s", "rejected", "429 p50 ms", "other errors",
                             "load1 after"], rows))
    if "memory" in data:
        mem = data["memory"]
        mib = (lambda b: None if b is None else round(b / 2**20, 1))  # noqa: E731
        out.append(f"\n## Memory ({mem['duration_s']:.0f} s at concurrency "
                   f"{mem['concurrency']})\n\n")
        out.append(md_table(["RSS idle MiB", "after 1 min MiB", "at end MiB", "max MiB",
                             "end vs 1 min", "within 10%", "completed", "rejected"],
                            [[mib(mem["rss_idle_bytes"]), mib(mem["rss_after_first_minute_bytes"]),
                              mib(mem["rss_end_bytes"]), mib(mem["rss_max_bytes"]),
                              None if mem["drift_end_vs_first_minute"] is None
                              else f"{100 * mem['drift_end_vs_first_minute']:+.1f}%",
                              mem["within_10_percent"], mem["load"]["completed"],
                              mem["load"]["rejected_429"]]]))
    if "flood" in data:
        out.append(flood_markdown(data["flood"]))
    return "".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--mode", choices=["levels", "memory", "both", "flood"], default="both")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--level-s", type=float, default=30, help="Seconds per level.")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens per request.")
    parser.add_argument("--max-inflight-sequences", type=int, default=8,
                        help="The server's admission limit (low, so some requests get 429).")
    parser.add_argument("--duration-s", type=float, default=600,
                        help="Memory mode: how long to keep the load on.")
    parser.add_argument("--memory-concurrency", type=int, default=16,
                        help="Memory mode: concurrent clients.")
    parser.add_argument("--sample-s", type=float, default=10, help="Memory mode: RSS interval.")
    parser.add_argument("--clients", type=int, default=64, help="Flood mode: clients.")
    parser.add_argument("--flood-s", type=float, default=60,
                        help="Flood mode: seconds of sending per case.")
    parser.add_argument("--flood-max-tokens", type=int, default=64,
                        help="Flood mode: max_tokens per request.")
    parser.add_argument("--request-timeout-s", type=float, default=60,
                        help="Flood mode: the server's deadline (short, so a run fits in "
                             "minutes; the default 600 s works alike, slower).")
    parser.add_argument("--compiled", action="store_true", help="Compile (default: eager).")
    parser.add_argument("--name", default="load", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    start = machine()
    logger.info("machine: %s", start)
    settings = {k: v for k, v in vars(args).items() if k != "verbose"}
    if args.mode == "flood":
        return flood_main(args, start, settings)
    server = start_selfcritic(not args.compiled, ["--max-inflight-sequences",
                                                  str(args.max_inflight_sequences)])
    data: dict[str, Any] = {"benchmark": "load", "machine": start, "settings": settings}
    try:
        if args.mode in ("levels", "both"):
            data["levels"] = asyncio.run(run_levels(server, args))
        if args.mode in ("memory", "both"):
            data["memory"] = asyncio.run(run_memory(server, args))
    finally:
        server.stop()
    data["machine_at_end"] = machine()
    return publish(args.name, data, markdown(data))


def flood_main(args: argparse.Namespace, start: dict[str, Any],
               settings: dict[str, Any]) -> int:
    """Run the flood at default limits and merge it into the existing results file."""
    server = start_selfcritic(not args.compiled,
                              ["--request-timeout-s", str(args.request_timeout_s)])
    try:
        cases = asyncio.run(run_flood(server, args))
    finally:
        server.stop()
    previous = RESULTS / f"{args.name}.json"
    data = json.loads(previous.read_text()) if previous.exists() else {"benchmark": "load"}
    data["flood"] = {"machine": start, "settings": settings, "cases": cases,
                     "machine_at_end": machine()}
    return publish(args.name, data, markdown(data))


if __name__ == "__main__":
    raise SystemExit(main())
