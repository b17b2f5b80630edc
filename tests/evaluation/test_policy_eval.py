"""`eval policy` against a scripted endpoint: every strategy's accounting, the peer case,
the outputs (JSON, table, per-question lines, PNG) and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import policy as policy_module
from evaluation.client import ChatClient
from evaluation.policy import PolicyEvalConfig, evaluate_policy
from evaluation.report import Row
from evaluation.strategies import STRATEGIES, majority_index
from selfcritic.cli import main
from tests.support.fake_endpoint import JUDGE_TOKENS_PER_CALL, PROMPT_TOKENS, FakeEndpoint, Script

# Answers: 2, 5, 7, 6. Worked out by hand in the comments; the tests check the sums.
SCRIPTS = {
    # N=4: votes 2,3,2,3 tie → first (2) right; fast picks "3" (wrong), reason "2" (right)
    "What is 1 + 1?": Script("2", ["The answer is 2", "3", "2.0", "3"], {"fast": 1, "reason": 0}),
    # N=4: votes 4,5,5,4 tie → first (4) wrong; fast picks 5 (right), reason 4 (wrong)
    "What is 2 + 3?": Script("4", ["4", "5", "5", "4"], {"fast": 2, "reason": 3}),
    # nothing right: pass@N false
    "What is 3 + 4?": Script("I don't know", ["1", "8", "8", "9"], {"fast": 0, "reason": 0}),
    # N=4: 6 is the majority though not first; fast picks 7 (wrong), reason 6 (right)
    "What is 2 × 3?": Script("6", ["5", "6", "6", "7"], {"fast": 3, "reason": 1}),
}
ANSWERS = ["2", "5", "7", "6"]
ALL = ("greedy", "sample", "majority", "pass@N", "self-critic-fast", "self-critic-reason")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    rows = [{"id": f"q{i}", "question": q, "answer": a, "grader": "numeric"}
            for i, (q, a) in enumerate(zip(SCRIPTS, ANSWERS, strict=True))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(data: Path, out: Path, endpoint: FakeEndpoint, **overrides: object):
    settings: dict = {"strategies": ALL, "ns": (2, 4), "ks": (2,), "concurrency": 2,
                      "progress": False, "model": None, **overrides}
    config = PolicyEvalConfig(data=data, output=out, url="http://fake",
                              transport=endpoint.transport, **settings)
    return evaluate_policy(config)


def rows_by(result) -> dict[tuple[str, int], Row]:
    return {(r.strategy, r.n): r for r in result.rows}


def test_each_strategy_is_scored_as_worked_out(data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS)
    result = run(data, tmp_path / "out", endpoint)
    rows = rows_by(result)
    accuracy = {key: row.accuracy for key, row in rows.items()}
    assert accuracy == {
        ("greedy", 1): 2 / 4, ("sample", 1): 1 / 4,
        ("majority", 2): 1 / 4, ("pass@N", 2): 3 / 4,
        ("majority", 4): 2 / 4, ("pass@N", 4): 3 / 4,
        ("self-critic-fast", 2): 1 / 4, ("self-critic-fast", 4): 1 / 4,
        ("self-critic-reason", 2): 3 / 4, ("self-critic-reason", 4): 2 / 4}
    assert all(row.questions == 4 and row.errors == 0 for row in rows.values())
    # Efficiency is accuracy / pass@N over the same candidates.
    assert rows["majority", 4].selection_efficiency == pytest.approx((2 / 4) / (3 / 4))
    assert rows["self-critic-fast", 4].selection_efficiency == pytest.approx((1 / 4) / (3 / 4))
    assert rows["self-critic-reason", 2].selection_efficiency == pytest.approx(1.0)
    assert rows["greedy", 1].selection_efficiency is None
    assert rows["pass@N", 4].selection_efficiency is None
    # The self-critic run's own candidates: same pass@N and majority as the sampling run's.
    for n in (2, 4):
        critic = rows["self-critic-fast", n]
        assert critic.pass_at_n == rows["pass@N", n].accuracy
        assert critic.majority_at_n == rows["majority", n].accuracy
        assert critic.same_candidates_as_sampling == 1.0
        assert critic.k == 2 and critic.judge_calls_per_question == (n - 1) * 2


def test_tokens_and_seconds_per_question(data: Path, tmp_path: Path) -> None:
    result = run(data, tmp_path / "out", FakeEndpoint(SCRIPTS))
    rows = rows_by(result)
    greedy_words = [len(s.greedy.split()) for s in SCRIPTS.values()]
    assert rows["greedy", 1].tokens_per_question == pytest.approx(
        PROMPT_TOKENS + sum(greedy_words) / 4)
    words4 = [sum(len(t.split()) for t in s.candidates[:4]) for s in SCRIPTS.values()]
    judge = 3 * 2 * JUDGE_TOKENS_PER_CALL
    assert rows["self-critic-fast", 4].tokens_per_question == pytest.approx(
        PROMPT_TOKENS + judge + sum(words4) / 4)
    # majority and pass@N are read from one request, so they cost the same.
    assert rows["majority", 4].tokens_per_question == rows["pass@N", 4].tokens_per_question
    assert all(r.seconds_per_question is not None and r.seconds_per_question >= 0
               for r in result.rows)


def test_selection_never_beats_its_own_oracle(data: Path, tmp_path: Path) -> None:
    result = run(data, tmp_path / "out", FakeEndpoint(SCRIPTS))
    for row in result.rows:
        assert row.accuracy is not None and 0 <= row.accuracy <= 1
        assert row.ci95 is not None and row.ci95[0] <= row.accuracy <= row.ci95[1]
        if row.pass_at_n is not None:
            assert row.accuracy <= row.pass_at_n


def test_requests_pair_samples_by_seed(data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS)
    run(data, tmp_path / "out", endpoint, ns=(4,))
    by_question: dict[str, set] = {}
    for body in endpoint.requests:
        question = body["messages"][0]["content"]
        if body["temperature"] == 0:
            assert "seed" not in body and "self_critic" not in body
        else:
            by_question.setdefault(question, set()).add(body["seed"])
    assert len(by_question) == 4 and all(len(seeds) == 1 for seeds in by_question.values())
    critic = [b for b in endpoint.requests if "self_critic" in b]
    assert {b["self_critic"]["judge"] for b in critic} == {"fast", "reason"}
    assert all(b["self_critic"]["return_trace"] and b["self_critic"]["candidates"] == 4
               for b in critic)
    assert all(b["self_critic"].get("judge_max_tokens") == 256 for b in critic
               if b["self_critic"]["judge"] == "reason")
    endpoint = FakeEndpoint(SCRIPTS)
    run(data, tmp_path / "out2", endpoint, ns=(4,), request_seeds=False)
    assert not any("seed" in b for b in endpoint.requests)


def test_a_peer_without_self_critic_fails_those_strategies_only(data: Path,
                                                                tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS, self_critic=False)
    result = run(data, tmp_path / "out", endpoint, ns=(4,), concurrency=1)
    rows = rows_by(result)
    assert rows["greedy", 1].accuracy == 2 / 4 and rows["majority", 4].accuracy == 2 / 4
    for mode in ("fast", "reason"):
        row = rows[f"self-critic-{mode}", 4]
        assert row.accuracy is None and row.questions == 0
        assert row.unavailable and "self_critic" in row.unavailable
    assert set(result.unavailable) == {"self-critic-fast@4k2", "self-critic-reason@4k2"}
    # Found out on the first request; the rest are not sent.
    assert sum("self_critic" in b for b in endpoint.requests) == 2
    assert result.any_scored
    table = (tmp_path / "out" / "table.md").read_text()
    assert "unavailable" in table and "self_critic" in table


def test_answer_merging_refused_is_unavailable_with_the_servers_reason(
        data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS, merge=False)
    result = run(data, tmp_path / "out", endpoint, ns=(4,),
                 strategies=("majority", "self-critic-fast", "self-critic-fast-answer"))
    rows = rows_by(result)
    assert rows["self-critic-fast", 4].accuracy == 1 / 4
    refused = rows["self-critic-fast-answer", 4]
    assert refused.accuracy is None
    assert "HTTP 400" in refused.unavailable and "Extra inputs" in refused.unavailable
    merged = [b for b in endpoint.requests if b.get("self_critic", {}).get("merge")]
    assert merged and merged[0]["self_critic"]["merge"] == "answer"
    assert merged[0]["self_critic"]["answer_format"] == "auto"


def test_answer_merging_is_scored_when_served(data: Path, tmp_path: Path) -> None:
    result = run(data, tmp_path / "out", FakeEndpoint(SCRIPTS), ns=(4,),
                 strategies=("self-critic-fast-answer",))
    (row,) = result.rows
    assert row.strategy == "self-critic-fast-answer" and row.accuracy == 1 / 4
    assert row.entrants_per_question == 4


def test_failed_requests_are_errors_not_wrong_answers(data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS, fail={"What is 3 + 4?": 500})
    result = run(data, tmp_path / "out", endpoint, ns=(4,), strategies=("greedy", "majority"))
    rows = rows_by(result)
    assert rows["greedy", 1].questions == 3 and rows["greedy", 1].errors == 1
    assert rows["greedy", 1].accuracy == 2 / 3
    assert not result.unavailable


def test_overload_is_retried(data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS, overloaded=2)
    result = run(data, tmp_path / "out", endpoint, strategies=("greedy",), concurrency=1)
    assert result.rows[0].questions == 4 and result.rows[0].errors == 0


def test_outputs(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(data, out, FakeEndpoint(SCRIPTS))
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "tiny" and report["questions"] == 4
    assert report["ci_method"].startswith("Wilson")
    assert report["settings"]["ns"] == [2, 4] and "api_key" not in report["settings"]
    assert [r["strategy"] for r in report["rows"]] == [r.strategy for r in result.rows]
    first = report["rows"][0]
    for key in ("accuracy", "ci95", "pass_at_n", "majority_at_n", "selection_efficiency",
                "tokens_per_question", "seconds_per_question", "errors", "unavailable"):
        assert key in first
    lines = (out / "outcomes.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 8  # greedy, sample, 2 × sampling, 2 × 2 self-critic
    assert {"question_id", "run", "correct", "texts", "answers"} <= set(json.loads(lines[0]))
    png = (out / "accuracy_vs_n.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "| strategy |" in (out / "table.md").read_text()


def test_endpoint_model_skips_the_self_critic_alias(data: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint(SCRIPTS, model="smol")
    run(data, tmp_path / "out", endpoint, strategies=("greedy",))
    assert {b["model"] for b in endpoint.requests} == {"smol"}
    endpoint = FakeEndpoint(SCRIPTS)
    run(data, tmp_path / "out", endpoint, strategies=("greedy",), model="given")
    assert {b["model"] for b in endpoint.requests} == {"given"}


def test_command_line(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = FakeEndpoint(SCRIPTS, self_critic=False)

    def client(*args: object, **kwargs: object) -> ChatClient:
        return ChatClient(*args, **{**kwargs, "transport": endpoint.transport})  # type: ignore[arg-type]

    monkeypatch.setattr(policy_module, "ChatClient", client)
    out = tmp_path / "cli"
    code = main(["eval", "policy", "--data", str(data), "--url", "http://fake", "--n", "2",
                      "--k", "1", "--limit", "3", "--output", str(out),
                      "--strategies", "greedy,majority,self-critic-fast"])
    assert code == 0
    table = capsys.readouterr().out
    assert "greedy" in table and "pass@N" in table and "unavailable" in table
    report = json.loads((out / "report.json").read_text())
    assert report["questions"] == 3
    assert main(["eval", "policy", "--data", str(tmp_path / "missing.jsonl"), "--url", "x",
                      "--output", str(out)]) == 1
    with pytest.raises(SystemExit):
        main(["eval", "policy", "--data", str(data), "--strategies", "greedy,best"])


def test_majority_ties_go_to_the_first_occurrence() -> None:
    assert majority_index(["7", "8", "8", "7"]) == 0
    assert majority_index([None, "8", "7", "7"]) == 2
    assert majority_index([None, None]) == 0
    assert set(ALL) <= set(STRATEGIES)


def test_save_candidates_writes_the_greedy_and_sampling_replies(data: Path, tmp_path: Path
                                                               ) -> None:
    from evaluation.candidates import load_candidates

    endpoint = FakeEndpoint(SCRIPTS)
    path = tmp_path / "cands.jsonl"
    run(data, tmp_path / "out", endpoint, strategies=("greedy", "majority", "self-critic-fast"),
        save_candidates=path)
    sets = load_candidates(path)
    assert list(sets) == ["q0", "q1", "q2", "q3"]
    assert sets["q0"].greedy.text == "2"
    assert [c.text for c in sets["q0"].samples] == ["The answer is 2", "3", "2.0", "3"]
    asked = [r for r in endpoint.requests if r.get("logprobs")]
    # greedy and the n=4 sampling request of each question; never n=2, never self-critic
    assert len(asked) == 8 and all(r["top_logprobs"] == 5 for r in asked)
    assert not any("self_critic" in r or r.get("n") == 2 for r in asked)
    with pytest.raises(ValueError, match="add majority or pass@N"):
        run(data, tmp_path / "x", endpoint, strategies=("greedy",), save_candidates=path)
