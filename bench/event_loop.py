"""How long `/health` takes to answer while huge inputs are in flight (issue 10's event-loop
case, measured here because tests never assert timings).

Each repetition sends, all at once, the four inputs of `tests/integration/test_responsive.py`:
a chat message near the 1 MiB body limit, the largest message the size check lets through
(templated and tokenised), a critique of two 128 KiB responses, and a critique of two long
responses that fit (judged). Meanwhile one client polls `/health` every 50 ms. Reported per
repetition: the statuses, the number of polls, and the poll latency p50 / p99 / max.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/event_loop.py               # 5 repetitions, ~3 min
    HF_HUB_OFFLINE=1 .venv/bin/python bench/event_loop.py --repeats 10
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
from _common import (  # bench/ is not a package: its folder is on sys.path
    Server,
    logger,
    machine,
    md_table,
    percentile,
    publish,
    rounded,
    setup_logging,
    start_selfcritic,
)

PROSE = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun. "
CONTEXT, LONGEST_TOKEN = 2048, 81  # the default context; SmolLM2's longest token spells 81
POLL_S = 0.05


def _text(chars: int) -> str:
    return (PROSE * (chars // len(PROSE) + 1))[:chars]


def huge_inputs(model: str) -> list[tuple[str, str, dict[str, Any]]]:
    question = "Which text is better written?"
    return [
        ("chat 1 MB (refused by size)", "/v1/chat/completions",
         {"model": model, "messages": [{"role": "user", "content": _text(1_000_000)}]}),
        ("chat largest tokenised", "/v1/chat/completions",
         {"model": model, "messages": [{"role": "user", "content": _text(CONTEXT * LONGEST_TOKEN)}]}),
        ("critique 2x128 KiB", "/v1/critique",
         {"model": model, "question": question, "judge": "fast", "comparisons": 8,
          "responses": [_text(128 * 1024)] * 2}),
        ("critique that fits", "/v1/critique",
         {"model": model, "question": question, "judge": "fast", "comparisons": 8,
          "responses": [_text(2500), _text(2400)]}),
    ]


async def one_repetition(server: Server) -> dict[str, Any]:
    latencies: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as poller, \
            httpx.AsyncClient(base_url=server.url, timeout=300) as sender:
        async def poll() -> None:
            while not done.is_set():
                started = time.perf_counter()
                reply = await poller.get("/health")
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    raise RuntimeError(f"/health answered {reply.status_code}")
                await asyncio.sleep(POLL_S)

        async def post(path: str, body: dict[str, Any]) -> int:
            return (await sender.post(path, json=body)).status_code

        polling = asyncio.create_task(poll())
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        statuses = await asyncio.gather(*(post(path, body)
                                          for _, path, body in huge_inputs(server.model)))
        seconds = time.perf_counter() - started
        done.set()
        await polling
    return {"statuses": list(statuses), "seconds": rounded(seconds), "polls": len(latencies),
            "health_p50_s": rounded(percentile(latencies, 50), 4),
            "health_p99_s": rounded(percentile(latencies, 99), 4),
            "health_max_s": rounded(max(latencies), 4)}


def markdown(data: dict[str, Any]) -> str:
    rows = [[i + 1, " ".join(map(str, r["statuses"])), r["seconds"], r["polls"],
             r["health_p50_s"], r["health_p99_s"], r["health_max_s"]]
            for i, r in enumerate(data["repetitions"])]
    return ("# /health while huge inputs are in flight\n\n"
            f"Load average at start {data['machine']['loadavg']}, at end "
            f"{data['machine_at_end']['loadavg']}.\n\n"
            + md_table(["rep", "statuses", "s", "polls", "health p50 s", "p99 s", "max s"], rows)
            + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="Repetitions (default 5).")
    parser.add_argument("--compiled", action="store_true", help="Compile (default: eager).")
    parser.add_argument("--name", default="event_loop", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    data: dict[str, Any] = {"benchmark": "event_loop", "machine": machine(),
                            "settings": {"repeats": args.repeats, "compiled": args.compiled},
                            "inputs": [name for name, _, _ in huge_inputs("")]}
    server = start_selfcritic(not args.compiled)
    try:
        data["repetitions"] = []
        for i in range(args.repeats):
            data["repetitions"].append(asyncio.run(one_repetition(server)))
            logger.info("repetition %d: %s", i + 1, data["repetitions"][-1])
    finally:
        server.stop()
    data["machine_at_end"] = machine()
    return publish(args.name, data, markdown(data))


if __name__ == "__main__":
    raise SystemExit(main())
