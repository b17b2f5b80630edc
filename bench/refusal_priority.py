"""What sets the refusal tail under a flood? Issue 10's flood (64 clients sending best-of-8
at the default limits), with arms alternated round by round so they share the machine's
state: server variants (extra `selfcritic serve` flags, one server each, all up at once)
crossed with the CPU priority of vLLM's engine processes.

Priority: on a CPU the engine's threads keep every core busy, and the API process (where
admission answers the 429s) waits for a time slice; renicing every engine thread lets it
run first. Variants: e.g. `--no-freeze-gc-heap`, to see what full garbage collections of
the start-up heap cost. Reported per arm and round: statuses, completed/s, admitted
p50/p99, refusal p50/p99/max.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/refusal_priority.py                 # ~6 min
    HF_HUB_OFFLINE=1 .venv/bin/python bench/refusal_priority.py --nice 0 \
        --variants=,--no-freeze-gc-heap --name refusal_gc                       # ~7 min
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (  # bench/ is not a package: its folder is on sys.path
    REPO,
    Outcome,
    logger,
    machine,
    md_table,
    percentile,
    publish,
    rounded,
    setup_logging,
    start_selfcritic,
)
from load import FLOOD_CASES, status_summary, timed_load


def engine_threads(server_pid: int) -> list[int]:
    """Every thread of every process below the server (vLLM's engine core and workers)."""
    import psutil

    tids: list[int] = []
    for child in psutil.Process(server_pid).children(recursive=True):
        tasks = Path(f"/proc/{child.pid}/task")
        if tasks.is_dir():
            tids += [int(t.name) for t in tasks.iterdir()]
    return tids


def renice(server_pid: int, nice: int) -> int:
    """Set every engine thread's nice value (Linux: nice is per thread); returns how many."""
    tids = engine_threads(server_pid)
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (ProcessLookupError, PermissionError) as exc:
            logger.warning("thread %d: %s", tid, exc)
    return len(tids)


def after_first_burst(outcomes: Sequence[Outcome], skip_s: float = 2.0) -> dict[str, Any]:
    """Refusal latency without the arm's first `skip_s`: at the start all clients send at
    once, so the first refusals wait behind the whole burst whatever the server does."""
    t0 = min((o.start for o in outcomes), default=0.0)
    later = [1000 * o.latency for o in outcomes if o.status == 429 and o.start >= t0 + skip_s]
    first = [1000 * o.latency for o in outcomes if o.status == 429 and o.start < t0 + skip_s]
    return {"first_burst_refusals": len(first),
            "first_burst_max_ms": rounded(max(first, default=None), 1),
            "later_refusals": len(later),
            "later_refusal_p99_ms": rounded(percentile(later, 99), 1),
            "later_refusal_max_ms": rounded(max(later, default=None), 1)}


def markdown(data: dict[str, Any]) -> str:
    rows = [[r["round"], r["variant"] or "default", r["nice"], r["threads"], r["answers"],
             r["completed_per_s"],
             r["admitted_p50_s"], r["admitted_p99_s"], r["refusal_p50_ms"], r["refusal_p99_ms"],
             r["refusal_max_ms"], r.get("first_burst_refusals"), r.get("first_burst_max_ms"),
             r.get("later_refusal_p99_ms"), r.get("later_refusal_max_ms"), r["load1_after"]]
            for r in data["arms"]]
    s = data["settings"]
    return ("# Refusal latency under a flood: server variants and engine priority\n\n"
            f"{s['clients']} closed-loop clients sending best-of-8 (max_tokens "
            f"{s['max_tokens']}) for {s['flood_s']:g} s per arm, default limits, deadline "
            f"60 s; arms alternated round by round (one server per variant). Load "
            f"{data['machine']['loadavg']} at start, {data['machine_at_end']['loadavg']} at end."
            "\n\n"
            + md_table(["round", "server", "engine nice", "threads", "answers", "completed/s",
                        "admitted p50 s", "p99 s", "refusal p50 ms", "p99 ms", "max ms",
                        "first 2 s: refusals", "their max ms", "later: p99 ms", "later max ms",
                        "load1 after"], rows) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nice", default="0,10", help="Engine nice values to alternate.")
    parser.add_argument("--variants", default="",
                        help="Server variants to alternate, comma-separated; each is extra "
                             "`selfcritic serve` flags separated by spaces ('': the defaults), "
                             "optionally after @DIR: the server of another checkout (e.g. a "
                             "`git worktree` of an older commit). Write it as "
                             "--variants=,--no-freeze-gc-heap or --variants=,@/tmp/old.")
    parser.add_argument("--rounds", type=int, default=2, help="Times each arm runs.")
    parser.add_argument("--flood-s", type=float, default=40, help="Seconds of sending per arm.")
    parser.add_argument("--clients", type=int, default=64, help="Closed-loop clients.")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens per request.")
    parser.add_argument("--name", default="refusal_priority", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    nices = [int(v) for v in args.nice.split(",")]
    variants = args.variants.split(",")
    data: dict[str, Any] = {"benchmark": "refusal_priority", "machine": machine(),
                            "settings": {k: v for k, v in vars(args).items() if k != "verbose"},
                            "arms": []}
    servers = []
    try:
        for i, variant in enumerate(variants):
            words = variant.split()
            checkout = Path(words.pop(0)[1:]) if words and words[0].startswith("@") else REPO
            servers.append(start_selfcritic(True, ["--request-timeout-s", "60", *words],
                                            name=f"selfcritic-{i}", checkout=checkout))
        for round_ in range(1, args.rounds + 1):
            for variant, server in zip(variants, servers, strict=True):
                for nice in nices:
                    threads = renice(server.process.pid, nice)
                    outcomes, wall = asyncio.run(timed_load(
                        server, args.clients, args.flood_s, args.max_tokens,
                        extra=FLOOD_CASES["best-of-8"]))
                    arm = {"round": round_, "variant": variant, "nice": nice, "threads": threads,
                           **status_summary(outcomes, wall), **after_first_burst(outcomes),
                           "load1_after": machine()["loadavg"][0]}
                    data["arms"].append(arm)
                    logger.info("round %d %r nice %d: refusal p50 %s ms p99 %s ms, %s/s",
                                round_, variant, nice, arm["refusal_p50_ms"],
                                arm["refusal_p99_ms"], arm["completed_per_s"])
    finally:
        for server in servers:
            server.stop()
    data["machine_at_end"] = machine()
    return publish(args.name, data, markdown(data))


if __name__ == "__main__":
    raise SystemExit(main())
