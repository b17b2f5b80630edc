"""On-policy pair mining on a scripted sampler: only discordant questions give pairs, train
and held-out questions are disjoint, every pair says where it came from, and the rows load
as the trainer's chosen/rejected pairs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from evaluation.dataset import Question
from evaluation.pairs import load_pairs
from trainer.pairs import (
    MiningConfig,
    grade_samples,
    mine_pairs,
    split_of_question,
    write_mining,
)
from trainer.pairs_job import PairsJob, training_questions


class ScriptedSampler:
    """Answers question i with the script's texts for its id; records every call."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: list[tuple[list[str], int]] = []

    async def sample(self, questions: Sequence[Question], n: int) -> list[list[str]]:
        self.calls.append(([q.id for q in questions], n))
        return [self.script[q.id][:n] for q in questions]


def _questions(count: int) -> list[Question]:
    return [Question(f"q{i}", f"What is {i} + {i}?", str(2 * i), "numeric") for i in range(count)]


def _script(questions: list[Question]) -> dict[str, list[str]]:
    """q0: all right; q1: all wrong; every other question: 2 right, 2 wrong (one repeated)."""
    script = {}
    for k, q in enumerate(questions):
        right, wrong = f"It is {q.answer}.", f"It is {int(q.answer) + 1}."
        if k == 0:
            script[q.id] = [right, f"The answer is {q.answer}", right, right]
        elif k == 1:
            script[q.id] = [wrong, "no idea", wrong, f"{int(q.answer) - 1}"]
        else:
            script[q.id] = [wrong, right, f"So {q.answer}.", wrong]
    return script


def _mine(questions: list[Question], config: MiningConfig):
    sampler = ScriptedSampler(_script(questions))
    return asyncio.run(mine_pairs(questions, sampler, config, batch=5)), sampler


def test_only_discordant_questions_give_pairs_of_a_right_and_a_wrong_answer() -> None:
    questions = _questions(12)
    result, sampler = _mine(questions, MiningConfig(samples=4, pairs_per_question=3))
    rows = result.pairs["train"] + result.pairs["heldout"]
    ids = {r["provenance"]["question_id"] for r in rows}
    assert ids == {q.id for q in questions[2:]}  # q0 all right, q1 all wrong: no pair
    by_id = {q.id: q for q in questions}
    for row in rows:
        question = by_id[row["provenance"]["question_id"]]
        assert grade_samples(question, [row["chosen"]]).correct == (True,)
        assert grade_samples(question, [row["rejected"]]).correct == (False,)
    # the repeated wrong answer is one answer: 2 right × 1 distinct wrong = 2 pairs, not 3
    assert all(sum(r["provenance"]["question_id"] == q for r in rows) == 2 for q in ids)
    summary = result.summary()
    assert (summary["discordant"], summary["all_right"], summary["all_wrong"]) == (10, 1, 1)
    assert [n for _, n in sampler.calls] == [4, 4, 4] and len(sampler.calls[0][0]) == 5


def test_train_and_heldout_come_from_disjoint_questions_whatever_the_seed() -> None:
    questions = _questions(60)
    splits = []
    for seed in (0, 1):
        result, _ = _mine(questions, MiningConfig(samples=4, heldout_share=0.3, seed=seed))
        train = {r["provenance"]["question_id"] for r in result.pairs["train"]}
        heldout = {r["provenance"]["question_id"] for r in result.pairs["heldout"]}
        assert train and heldout and not train & heldout
        splits.append((train, heldout))
    assert splits[0] == splits[1]  # the split is the question's, not the run's
    assert all(split_of_question(q, 0.3) == "heldout" for q in splits[0][1])


def test_every_pair_carries_its_provenance() -> None:
    questions = _questions(6)
    script = _script(questions)
    result, _ = _mine(questions, MiningConfig(samples=4, pairs_per_question=2, model="m"))
    for row in result.pairs["train"] + result.pairs["heldout"]:
        p = row["provenance"]
        texts = script[p["question_id"]]
        assert texts[p["chosen_index"]] == row["chosen"]
        assert texts[p["rejected_index"]] == row["rejected"]
        assert p["chosen_result"].startswith("right") and p["rejected_result"].startswith("wrong")
        assert (p["grader"], p["model"], p["samples"], p["right"]) == ("numeric", "m", 4, 2)
        assert p["reference"] == next(q.answer for q in questions if q.id == p["question_id"])


def test_written_rows_load_as_balanced_chosen_rejected_pairs(tmp_path: Path) -> None:
    questions = _questions(20)
    config = MiningConfig(samples=4, pairs_per_question=2, heldout_share=0.25)
    result, _ = _mine(questions, config)
    paths = write_mining(result, tmp_path, config)
    pairs = load_pairs(paths["train"]).pairs
    assert len(pairs) == len(result.pairs["train"])
    assert sorted(p.label for p in pairs) == sorted([1, 2] * (len(pairs) // 2)
                                                    + [1] * (len(pairs) % 2))
    samples = [json.loads(line) for line in paths["samples"].read_text().splitlines()]
    assert len(samples) == 20 and {s["split"] for s in samples} == {"train", "heldout"}
    summary = json.loads(paths["summary"].read_text())
    assert summary["pairs"] == {s: len(result.pairs[s]) for s in ("train", "heldout")}


def test_code_questions_are_graded_by_the_code_grader_only() -> None:
    from critic_loop.code.tests_runner import CodeTask

    task = CodeTask(tests="assert f(1) == 2\n", entry_point="f")
    question = Question("c1", "Write f.", task.tests, "code", code=task)
    with pytest.raises(ValueError, match="code grader"):
        grade_samples(question, ["def f(x): return 2"])
    graded = grade_samples(question, ["good", "bad"],
                           lambda text, q: (text == "good", "passed" if text == "good"
                                            else "failed: AssertionError"))
    assert graded.correct == (True, False) and graded.results[1] == "failed: AssertionError"


def test_training_questions_are_seeded_train_splits_and_refuse_test_sets(tmp_path: Path) -> None:
    from evaluation.tasks import generate_tasks

    job = PairsJob(tasks=5, code_tasks=3)
    questions = training_questions(job)
    assert [q.id for q in questions[:5]] == [t.id for t in generate_tasks(0, "train", 5)]
    assert [q.grader for q in questions[5:]] == ["code"] * 3
    assert questions == training_questions(job)
    with pytest.raises(ValueError, match="test set"):
        training_questions(PairsJob(tasks=0, questions=("humaneval",)))
    humaneval_like = tmp_path / "q.jsonl"
    humaneval_like.write_text(json.dumps({"id": "HumanEval/3", "question": "?", "answer": "1",
                                          "grader": "numeric"}) + "\n")
    with pytest.raises(ValueError, match="HumanEval"):
        training_questions(PairsJob(tasks=0, questions=(str(humaneval_like),)))


@pytest.mark.parametrize("bad", [{"samples": 1}, {"heldout_share": 1.0}, {"engine": "tgi"},
                                 {"temperature": 0.0}])
def test_bad_job_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        PairsJob(**bad)
    with pytest.raises(ValueError, match="unknown pairs field"):
        PairsJob.from_dict({"sample": 4})
