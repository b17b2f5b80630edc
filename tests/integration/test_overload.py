"""Overload on the real engine: a flood of best-of-8 requests at a low limit is answered
with 200s and 429s (with Retry-After), never a 504 or another 5xx, and every refusal is
made at admission, before any work reaches the engine.

No timing threshold is asserted (timings belong in bench/; `bench/load.py` measures the
refusal latency). What is asserted is the order of events: within a wave every refusal
comes back before the first admitted request finishes, so nothing was refused after
queueing behind the admitted work.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from tests.support.live_server import API_KEY, MODEL, metric_value

FLOOD = 16
WAVES = 2
CANDIDATES = 8


@dataclass(frozen=True)
class Answer:
    wave: int
    status: int
    finished_at: float
    headers: httpx.Headers
    code: str | None


async def _flood(url: str) -> list[Answer]:
    body = {"model": MODEL, "max_tokens": 24, "temperature": 0.8,
            "messages": [{"role": "user", "content": "Name a colour and a fruit."}],
            "self_critic": {"candidates": CANDIDATES, "judge": "fast"}}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        async def one(wave: int) -> Answer:
            reply = await client.post("/v1/chat/completions", json=body)
            code = reply.json().get("error", {}).get("code") if reply.status_code != 200 else None
            return Answer(wave, reply.status_code, time.monotonic(), reply.headers, code)

        answers: list[Answer] = []
        for wave in range(WAVES):  # the second wave meets a measured throughput
            answers += await asyncio.gather(*(one(wave) for _ in range(FLOOD)))
        return answers


def _rejections(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics").text
    refused = (metric_value(text, "selfcritic_rejections_total", reason="capacity")
               + metric_value(text, "selfcritic_rejections_total", reason="deadline"))
    return refused, metric_value(text, "selfcritic_candidates_total")


def test_a_flood_of_best_of_8_gets_200s_and_429s_refused_at_admission(server) -> None:
    refused_before, candidates_before = _rejections(server.url)
    answers = asyncio.run(_flood(server.url))
    refused_after, candidates_after = _rejections(server.url)

    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    refusals = [answer for answer in answers if answer.status == 429]
    assert all(answer.code == "overloaded" for answer in refusals), refusals
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in refusals)
    # Each refusal was counted at admission, and only the admitted requests sampled.
    assert refused_after - refused_before == len(refusals)
    admitted = statuses.count(200)
    assert candidates_after - candidates_before == CANDIDATES * admitted
    for wave in range(WAVES):
        done = [a.finished_at for a in answers if a.wave == wave and a.status == 200]
        turned_away = [a.finished_at for a in answers if a.wave == wave and a.status == 429]
        if done and turned_away:
            assert max(turned_away) < min(done), f"wave {wave}: a refusal came after a success"
