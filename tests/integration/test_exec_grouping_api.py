"""`serve --exec-grouping` on the real engine, through the openai client: code candidates
for a real HumanEval prompt are grouped by what they return on its doctests, and every
candidate that contradicts a stated output ranks below every one that does not. Which
candidate is right is checked here by running the stated examples in the sandbox, apart
from the server's own example parsing."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from critic_loop.code.extract import program_for
from critic_loop.code.sandbox import Sandbox
from evaluation.code_tasks import code_question_text, humaneval_rows
from tests.support.live_server import API_KEY, MODEL

TASK = "HumanEval/53"
STATED = "assert add(2, 3) == 5\nassert add(5, 7) == 12\n"
"""The outputs HumanEval/53's docstring states (`>>> add(2, 3)` → 5, `>>> add(5, 7)` → 12)."""


@pytest.fixture(scope="module")
def exec_client(launch_server, sandbox: Sandbox) -> Iterator[openai.OpenAI]:
    server = launch_server(["--api-key", API_KEY, "--exec-grouping",
                            "--request-timeout-s", "300"])
    yield openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0,
                        timeout=600)
    server.stop()  # free its memory for the modules after this one


def test_candidates_that_contradict_the_doctests_rank_last(exec_client: openai.OpenAI,
                                                           sandbox: Sandbox) -> None:
    (row,) = [r for r in humaneval_rows() if r["task_id"] == TASK]
    assert ">>> add(2, 3)" in row["prompt"] and ">>> add(5, 7)" in row["prompt"]
    completion = exec_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": code_question_text(row)}],
        max_tokens=96, temperature=1.0, seed=5, stop=["\n```\n"],
        extra_body={"self_critic": {"candidates": 6, "select": "vote",
                                    "include_greedy": True, "return_trace": True}})
    report = completion.model_extra["self_critic"]
    assert report["grouping"] == "behaviour"
    assert report["behaviour"] == {"examples": 2, "entry_point": "add"}
    texts = [c["text"] for c in report["trace"]["candidates"]]
    passes = [sandbox.run(program_for(t, row["prompt"], "add") + "\n" + STATED).passed
              for t in texts]
    groups = report["trace"]["selection"]["groups"]
    voted = sorted(m for g in groups if not g.get("voteless") for m in g["members"])
    if any(passes):  # the fewest contradictions is none: exactly the passing ones vote
        assert voted == [i for i, ok in enumerate(passes) if ok]
    else:  # every candidate contradicts an example: the fewest contradictions still vote
        assert voted
    ranking = report["trace"]["ranking"]
    last_voted = max(ranking.index(i) for i in voted)
    assert all(ranking.index(i) > last_voted for i in range(len(texts)) if i not in voted)
    assert completion.choices[0].message.content == texts[ranking[0]]
    assert ranking[0] in voted
