"""`--exec-grouping` on the scripted engine: code candidates grouped by what they return on
the question's own doctests (a real HumanEval prompt), and a server that refuses to start
without a sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from critic_loop.code.sandbox import Sandbox
from critic_loop.engine import GenerationRequest
from critic_loop.runtime.engines.scripted import ScriptedEngine
from evaluation.code_tasks import code_question_text, humaneval_rows
from server.app import create_app
from server.exec_grouping import ExecGroupingUnavailable
from server.settings import ServerSettings

WRONG = "```python\ndef add(x: int, y: int):\n    return x * y + 1\n```"
"""add(2, 3) == 7, add(5, 7) == 36: contradicts both stated outputs."""
RIGHT = "```python\ndef add(x: int, y: int):\n    return y + x\n```"
CANDIDATES = [WRONG, RIGHT, WRONG, WRONG]
"""The majority text group contradicts the examples; one candidate passes them."""


@pytest.fixture(scope="module")
def add_question() -> str:
    (row,) = [r for r in humaneval_rows() if r["task_id"] == "HumanEval/53"]
    return code_question_text(row)


def responder(request: GenerationRequest, index: int) -> str:
    return "1" if request.sampling.choices else CANDIDATES[index]


@pytest.fixture
def serve(sandbox: Sandbox) -> Iterator:
    clients: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        engine = ScriptedEngine(responder, model_name="tiny")
        client = TestClient(create_app(ServerSettings(**settings), engine=engine,
                                       sandbox=sandbox), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def ask(client: TestClient, question: str, **self_critic: object) -> dict:
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": question}],
        "temperature": 0.8, "max_tokens": 64,
        "self_critic": {"candidates": 4, "judge": "fast", "include_greedy": False,
                        **self_critic}})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_candidate_that_passes_the_examples_beats_the_majority(serve, add_question) -> None:
    body = ask(serve(exec_grouping=True), add_question, select="vote", return_trace=True)
    assert body["choices"][0]["message"]["content"] == RIGHT
    report = body["self_critic"]
    assert report["grouping"] == "behaviour"
    assert report["behaviour"] == {"examples": 2, "entry_point": "add"}
    groups = report["trace"]["selection"]["groups"]
    assert groups[0]["members"] == [1] and groups[0].get("voteless") is None
    # the three contradicting candidates have no vote: each stands alone, ranked last
    assert all(g["voteless"] for g in groups[1:]) and len(groups) == 4


def test_a_knockout_that_merges_answers_never_lets_a_contradiction_win(serve,
                                                                      add_question) -> None:
    body = ask(serve(exec_grouping=True), add_question, select="knockout", merge="answer",
               return_trace=True)
    assert body["choices"][0]["message"]["content"] == RIGHT
    walkovers = [w for r in body["self_critic"]["trace"]["rounds"] for w in r.get("walkovers", [])]
    assert {"winner": 1, "loser": walkovers[0]["loser"], "reason": "voteless"} in walkovers


def test_without_the_flag_candidates_group_by_answer_text(serve, add_question) -> None:
    body = ask(serve(), add_question, select="vote")
    assert body["choices"][0]["message"]["content"] == WRONG
    assert "grouping" not in body["self_critic"]


def test_a_question_without_examples_groups_by_answer(serve, add_question) -> None:
    no_examples = add_question.split(">>>")[0] + '"""\n```'
    body = ask(serve(exec_grouping=True), no_examples, select="vote")
    assert body["choices"][0]["message"]["content"] == WRONG
    assert body["self_critic"]["grouping"] == "answer"


def test_a_strategy_that_does_not_group_runs_no_code(serve, add_question) -> None:
    body = ask(serve(exec_grouping=True), add_question, select="knockout")
    assert body["self_critic"]["grouping"] == "text"


def test_start_up_refuses_when_no_sandbox_works() -> None:
    failing = Sandbox(probe=lambda tier: False)
    app = create_app(ServerSettings(exec_grouping=True),
                     engine=ScriptedEngine(responder, model_name="tiny"), sandbox=failing)
    with pytest.raises(ExecGroupingUnavailable, match="needs a sandbox"), TestClient(app):
        pass


def test_start_up_refuses_a_sandbox_that_runs_unconfined() -> None:
    unconfined = Sandbox(probe=lambda tier: False, allow_unsandboxed=True)
    app = create_app(ServerSettings(exec_grouping=True),
                     engine=ScriptedEngine(responder, model_name="tiny"), sandbox=unconfined)
    with pytest.raises(ExecGroupingUnavailable, match="unconfined"), TestClient(app):
        pass
