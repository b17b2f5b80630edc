"""Each selection strategy beside the knockout on the real engine, through the openai client:
small N and short answers, so the whole module costs a few seconds of generation."""

from __future__ import annotations

import openai

from tests.support.live_server import MODEL

QUESTION = [{"role": "user", "content": "What is 12 + 7? Answer with the number."}]


def run(client: openai.OpenAI, select: str, **options: object):
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=12, temperature=0.9, seed=3,
        extra_body={"self_critic": {"candidates": 3, "judge": "fast", "select": select,
                                    "return_trace": True, **options}})
    report = completion.model_extra["self_critic"]
    assert report["select"] == select
    texts = [c["text"] for c in report["trace"]["candidates"]]
    assert completion.choices[0].message.content == texts[report["trace"]["ranking"][0]]
    return completion, report


def test_vote_reads_confidence_from_real_logprobs(client: openai.OpenAI) -> None:
    completion, report = run(client, "vote")
    assert report["judge_calls"] == 0
    assert completion.choices[0].logprobs is None  # sampled with top-k, none asked for
    signals = [c["signals"] for c in report["trace"]["candidates"]]
    assert all(s["tokens"] >= 1 and s["lowest_group_confidence"] > 0 for s in signals)
    groups = report["trace"]["selection"]["groups"]
    assert sum(g["votes"] for g in groups) == 3
    assert groups[0]["votes"] == max(g["votes"] for g in groups)


def test_confidence_returns_only_the_logprobs_asked_for(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=12, temperature=0.9, seed=4,
        logprobs=True, top_logprobs=2,
        extra_body={"self_critic": {"candidates": 3, "judge": "fast", "select": "confidence",
                                    "return_trace": True}})
    report = completion.model_extra["self_critic"]
    assert report["judge_calls"] == 0
    tokens = completion.choices[0].logprobs.content
    assert tokens and all(len(t.top_logprobs) <= 2 for t in tokens)
    groups = report["trace"]["selection"]["groups"]
    assert report["trace"]["selection"]["confidence_available"] is True
    weights = [g["confidence"] for g in groups]
    assert weights == sorted(weights, reverse=True) and weights[0] > 0


def test_league_plays_every_pair_of_entrants(client: openai.OpenAI) -> None:
    _, report = run(client, "league")
    table = report["trace"]["selection"]["entrants"]
    entrants = len(table)
    assert report["judge_calls"] == entrants * (entrants - 1) // 2 * 2
    assert sum(t["wins"] for t in table) == entrants * (entrants - 1) // 2
    assert [t["wins"] for t in table] == sorted((t["wins"] for t in table), reverse=True)


def test_hybrid_with_the_greedy_candidate(client: openai.OpenAI) -> None:
    _, report = run(client, "hybrid", include_greedy=True, judge_weight=1.0)
    assert report["include_greedy"] is True
    details = report["trace"]["selection"]
    assert details["judge_weight"] == 1.0
    if len(details["groups"]) >= 2:  # the judge settles the top two
        assert report["judge_calls"] == 2 and details["final"]["pair"]
    else:
        assert report["judge_calls"] == 0
