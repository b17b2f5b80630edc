"""The candidates file: the lead's format and the task sets' ids, the pool with and without
the greedy candidate, logprobs as signals, and rows that are refused with their place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.selection.signals import candidate_signals
from evaluation.candidate_recorder import CandidateRecorder
from evaluation.candidates import CandidatesError, load_candidates, record_of_choice
from evaluation.client import ChatReply
from evaluation.dataset import Question
from evaluation.strategies import Run


def cand(text: str, top: float = -1.0, finish: str = "stop") -> dict:
    return {"text": text, "finish_reason": finish,
            "logprobs": [[-0.1, [-0.1, top]], [-0.2, [-0.2, top]]]}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_generation_scripts_rows_load_with_their_logprobs(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", [
        {"task_id": "HumanEval/0", "greedy": cand("g"), "samples": [cand("a"), cand("b")],
         "usage": {"greedy": 2, "samples": 4}},
        {"id": "arith-3", "greedy": None, "samples": [{"text": "7"}]}])
    sets = load_candidates(path)
    assert list(sets) == ["HumanEval/0", "arith-3"]
    greedy = sets["HumanEval/0"].greedy
    assert greedy is not None and greedy.text == "g"
    assert [(t.logprob, [lp for _, lp in t.top]) for t in greedy.logprobs] == [
        (-0.1, [-0.1, -1.0]), (-0.2, [-0.2, -1.0])]
    # DeepConf's token confidence is minus the mean top-k logprob: (0.1 + 1) / 2, (0.2 + 1) / 2
    signals = candidate_signals(greedy.logprobs)
    assert signals is not None and signals.lowest_group_confidence == pytest.approx(0.575)
    assert sets["arith-3"].greedy is None and sets["arith-3"].samples[0].logprobs is None


def test_include_greedy_puts_greedy_first_then_the_first_n_minus_one_samples(tmp_path: Path
                                                                            ) -> None:
    path = write(tmp_path / "c.jsonl", [{"task_id": "q", "greedy": cand("g"),
                                         "samples": [cand(s) for s in "abcd"]}])
    found = load_candidates(path)["q"]
    assert [c.text for c in found.pool(3, include_greedy=True)] == ["g", "a", "b"]
    assert [c.text for c in found.pool(3, include_greedy=False)] == ["a", "b", "c"]
    assert [c.index for c in found.pool(3, include_greedy=True)] == [0, 1, 2]
    with pytest.raises(CandidatesError, match="a pool of 6 needs 6 samples"):
        found.pool(6, include_greedy=False)


@pytest.mark.parametrize(("row", "message"), [
    ({"samples": []}, "task_id"),
    ({"task_id": "q", "samples": [{"text": 3}]}, "samples\\[0\\]: a candidate needs"),
    ({"task_id": "q", "samples": [{"text": "a", "logprobs": [[-1, "x"]]}]}, "logprobs\\[0\\]"),
    ({"task_id": "q", "samples": "abc"}, "'samples' must be a list"),
])
def test_bad_rows_are_refused_with_their_line(tmp_path: Path, row: dict, message: str) -> None:
    path = write(tmp_path / "c.jsonl", [row])
    with pytest.raises(CandidatesError, match=f"c.jsonl:1: .*{message}"):
        load_candidates(path)


def test_a_pool_with_greedy_needs_a_greedy_candidate(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", [{"task_id": "q", "samples": [cand("a"), cand("b")]}])
    with pytest.raises(CandidatesError, match="needs a greedy candidate"):
        load_candidates(path)["q"].pool(2, include_greedy=True)


def test_the_recorder_writes_what_eval_select_reads(tmp_path: Path) -> None:
    choice = {"index": 0, "message": {"content": "4"}, "finish_reason": "stop",
              "logprobs": {"content": [{"token": "4", "logprob": -0.5,
                                        "top_logprobs": [{"logprob": -0.5}, {"logprob": -2.0}]}]}}
    assert record_of_choice(choice) == {"text": "4", "finish_reason": "stop",
                                        "logprobs": [[-0.5, [-0.5, -2.0]]]}
    recorder = CandidateRecorder(tmp_path / "out.jsonl", n=2)
    question = Question("q1", "2+2?", "4")
    greedy_body = recorder.request(Run("greedy"), {"model": "m"})
    assert greedy_body["logprobs"] is True and greedy_body["top_logprobs"] == 5
    assert "logprobs" not in recorder.request(Run("sampling", 4), {"model": "m"})
    recorder.record(Run("greedy"), question, ChatReply({"choices": [choice]}, 0.1))
    recorder.record(Run("sampling", 2), question,
                    ChatReply({"choices": [{**choice, "index": 1}, choice]}, 0.1))
    found = load_candidates(recorder.write([question]))["q1"]
    assert found.greedy is not None and found.greedy.text == "4"
    assert len(found.samples) == 2 and found.samples[0].logprobs is not None
