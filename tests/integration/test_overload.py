"""Overload on the real engine: a flood of best-of-8 requests at a low limit is answered
with 200s and fast 429s (with Retry-After), never a 504 or another 5xx."""

from __future__ import annotations

import asyncio
import time

import httpx
from conftest import API_KEY, MODEL  # type: ignore[import-not-found]

FLOOD = 16
WAVES = 2
FAST_REFUSAL_S = 2.0
"""A refusal must come at once, not after queueing (generous: two shared, busy cores)."""


async def _flood(url: str) -> list[tuple[int, float, httpx.Headers]]:
    body = {"model": MODEL, "max_tokens": 24, "temperature": 0.8,
            "messages": [{"role": "user", "content": "Name a colour and a fruit."}],
            "self_critic": {"candidates": 8, "judge": "fast"}}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        async def one() -> tuple[int, float, httpx.Headers]:
            start = time.monotonic()
            reply = await client.post("/v1/chat/completions", json=body)
            return reply.status_code, time.monotonic() - start, reply.headers

        answers = []
        for _ in range(WAVES):  # the second wave meets a measured throughput
            answers += await asyncio.gather(*(one() for _ in range(FLOOD)))
        return answers


def test_a_flood_of_best_of_8_gets_200s_and_fast_429s(server) -> None:
    answers = asyncio.run(_flood(server.url))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    refusals = [(latency, headers) for status, latency, headers in answers if status == 429]
    assert all(latency < FAST_REFUSAL_S for latency, _ in refusals), refusals
    assert all(int(headers["retry-after"]) >= 1 for _, headers in refusals)
