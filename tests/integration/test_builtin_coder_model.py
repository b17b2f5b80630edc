"""Chat, self-critic, /v1/critique and `eval policy` once on the real 0.5B built-in model
(Qwen2.5-Coder-0.5B-Instruct): the rest of the suite runs on the 135M model for speed.

One server for this module, stopped at its end. On a fresh machine the model is built first
(`selfcritic prepare-model`, a few minutes, once per $SELFCRITIC_HOME), with its progress
on the terminal, so that the server's start timeout covers only the start. Every request
is small: the 0.5B model decodes ~20 tokens/s on a busy CPU.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from selfcritic.cli import main
from tests.support.knockout import KNOCKOUT

MODEL = "qwen2.5-coder-0.5b-instruct"
API_KEY = "coder-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
REPO = Path(__file__).resolve().parents[2]
PREPARE_TIMEOUT_S = float(os.environ.get("SELFCRITIC_TEST_PREPARE_TIMEOUT", "1800"))

logger = logging.getLogger(__name__)


def prepare_model(pytestconfig: pytest.Config) -> None:
    """Build the model's directory unless it is built (a no-op then), its log going to the
    terminal uncaptured: a first build takes minutes and CI should show them."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    started = time.monotonic()
    with capture.global_and_fixture_disabled():
        done = subprocess.run([sys.executable, "-m", "selfcritic", "prepare-model", "--model",
                               MODEL], cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                              stdout=subprocess.PIPE, text=True, timeout=PREPARE_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"selfcritic prepare-model --model {MODEL} failed "
                           f"(exit {done.returncode}); see its log above")
    logger.info("%s ready at %s after %.0f s", MODEL, done.stdout.strip(),
                time.monotonic() - started)


@pytest.fixture(scope="module")
def coder_server(launch_server: Callable, pytestconfig: pytest.Config) -> Iterator:
    prepare_model(pytestconfig)
    server = launch_server(["--model", MODEL, "--api-key", API_KEY,
                            "--request-timeout-s", "300"])
    yield server
    server.stop()  # free its memory for the modules after this one


@pytest.fixture(scope="module")
def coder(coder_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=coder_server.url + "/v1", api_key=API_KEY, max_retries=0,
                         timeout=600)


def test_chat_answers_the_demo_question(coder: openai.OpenAI) -> None:
    completion = coder.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16, temperature=0)
    assert completion.model == MODEL
    assert "Paris" in completion.choices[0].message.content
    assert 0 < completion.usage.completion_tokens <= 16


def test_self_critic_fast_judge(coder: openai.OpenAI) -> None:
    completion = coder.chat.completions.create(
        # An open question sampled hot: two equal candidates would need no judge at all.
        model=MODEL, messages=[{"role": "user", "content": "Write one line of a poem about "
                                                           "the sea."}],
        max_tokens=16, temperature=1.0, seed=3,
        extra_body={"self_critic": {**KNOCKOUT, "candidates": 2, "judge": "fast", "return_trace": True}})
    assert completion.object == "chat.completion" and len(completion.choices) == 1
    assert completion.choices[0].finish_reason in ("stop", "length")
    report = completion.model_extra["self_critic"]
    assert report["candidates"] == 2 and report["judge"] == "fast"
    assert 1 <= report["judge_calls"] <= 2
    texts = [c["text"] for c in report["trace"]["candidates"]]
    assert len(texts) == 2 and completion.choices[0].message.content in texts
    usage = report["usage"]
    assert usage["judge"]["prompt_tokens"] > 0
    # The bill covers the candidates and the judge.
    assert completion.usage.total_tokens == usage["total"]["total_tokens"]
    assert usage["total"]["total_tokens"] > usage["judge"]["total_tokens"] > 0


def test_critique_right_and_wrong(coder_server) -> None:
    response = httpx.post(coder_server.url + "/v1/critique", headers=AUTH, timeout=600, json={
        "model": MODEL, "question": "What is the capital of France?",
        "responses": ["The capital of France is Paris.", "The capital of France is Berlin."],
        "judge": "fast", "comparisons": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "critique" and body["model"] == MODEL
    assert sorted(body["ranking"]) == [0, 1]
    assert sum(body["preference"]) == pytest.approx(1.0, abs=1e-6)
    assert [j["order"] for j in body["judgments"]] == [[0, 1], [1, 0]]
    for judgment in body["judgments"]:
        assert sum(judgment["probabilities"]) == pytest.approx(1.0)
    assert body["usage"]["prompt_tokens"] > 0
    # Which response wins is not asserted: Paris won in both runs measured, but its margin
    # was not, and prefix-cache numerics can move a near-tie (bench/README.md measures the
    # judge's p_comp instead).


def test_eval_policy_once(coder_server, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    strategies = ("greedy", "majority", "pass@N", "self-critic-fast")
    code = main(["eval", "policy", "--data", str(REPO / "data/tasks/heldout.jsonl"),
                      "--url", coder_server.url, "--api-key", API_KEY, "--limit", "2",
                      "--n", "2", "--k", "2", "--max-tokens", "24", "--concurrency", "2",
                      "--strategies", ",".join(strategies), "--output", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == MODEL and report["questions"] == 2 and not report["unavailable"]
    rows = {row["strategy"]: row for row in report["rows"]}
    assert set(rows) == set(strategies)
    for row in rows.values():
        assert row["questions"] == 2 and row["errors"] == 0, row
        assert 0 <= row["accuracy"] <= 1 and row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
        assert row["tokens_per_question"] > 0
    for name in ("majority", "self-critic-fast"):
        assert rows[name]["n"] == 2 and rows[name]["accuracy"] <= rows[name]["pass_at_n"]
    assert rows["pass@N"]["accuracy"] == rows["majority"]["pass_at_n"]
    outcomes = [json.loads(line) for line in (out / "outcomes.jsonl").read_text().splitlines()]
    assert len({o["question_id"] for o in outcomes}) == 2
    for outcome in outcomes:
        assert not outcome["correct"] or any(outcome["candidates_correct"]), outcome
