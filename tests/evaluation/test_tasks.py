"""The question generator: deterministic per (seed, split), disjoint splits, right answers,
and the committed default set is what the generator makes."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from critic_loop.answers import grade
from evaluation.dataset import load_questions
from evaluation.tasks import CATEGORIES, PLURALS, UNITS, generate_tasks, write_tasks
from selfcritic.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_same_seed_and_split_same_questions() -> None:
    assert generate_tasks(3, "train", 50) == generate_tasks(3, "train", 50)
    assert generate_tasks(3, "train", 50) != generate_tasks(4, "train", 50)
    assert generate_tasks(3, "train", 20) == generate_tasks(3, "train", 50)[:20]


def test_splits_share_no_question_whatever_the_seeds() -> None:
    train = {t.question for seed in range(3) for t in generate_tasks(seed, "train", 300)}
    heldout = {t.question for seed in range(3) for t in generate_tasks(seed, "heldout", 150)}
    assert not train & heldout
    tasks = generate_tasks(0, "heldout", 300)
    assert len({t.question for t in tasks}) == len({t.id for t in tasks}) == 300


def test_categories_are_balanced_and_answers_right() -> None:
    tasks = generate_tasks(1, "train", 140)
    counts = Counter(t.category for t in tasks)
    assert set(counts) == set(CATEGORIES) and set(counts.values()) == {20}
    for task in tasks:
        assert grade(task.answer, task.answer, task.grader)
        if task.category.startswith("arithmetic"):
            a, op, b = re.match(r"What is (\d+) (.) (\d+)\?", task.question).groups()
            expected = {"+": int(a) + int(b), "-": int(a) - int(b), "×": int(a) * int(b)}[op]
            assert task.answer == str(expected)
        if task.category == "count-letters":
            letter, word = re.search(r'"(.)" appear in the word "(\w+)"', task.question).groups()
            assert task.answer == str(word.count(letter))
        if task.category == "sequence":
            terms = [int(t) for t in re.search(r"sequence ([\d, ]+)\?", task.question)
                     .group(1).split(", ")]
            steps = {b - a for a, b in itertools.pairwise(terms)}
            expected = terms[-1] * 2 if len(steps) > 1 else terms[-1] + steps.pop()
            assert len(terms) == 4 and task.answer == str(expected)
            assert len(steps) <= 1 or all(b == 2 * a for a, b in itertools.pairwise(terms))
        if task.category == "unit-conversion":
            small, amount, big = re.match(r"How many (\w+) are in (\d) (\w+)\?",
                                          task.question).groups()
            factor = {(b, s): f for b, s, f in UNITS}[(big if amount == "1" else
                                                       _singular(big), small)]
            assert task.answer == str(int(amount) * factor)
        if task.category == "comparison":
            x, y = re.search(r"larger, ([\d.]+) or ([\d.]+)\?", task.question).groups()
            assert float(task.answer) == max(float(x), float(y))


def _singular(plural: str) -> str:
    return {v: k for k, v in PLURALS.items()}.get(plural, plural.removesuffix("s"))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        generate_tasks(0, "test", 1)
    with pytest.raises(ValueError, match="count"):
        generate_tasks(0, "train", -1)


def test_make_tasks_command(tmp_path: Path) -> None:
    assert main(["eval", "make-tasks", "--out", str(tmp_path), "--seed", "5", "--train", "30",
                      "--heldout", "10"]) == 0
    questions = load_questions(tmp_path / "train.jsonl")
    assert len(questions) == 30 and all(q.grader == "numeric" for q in questions)
    assert len(load_questions(tmp_path / "heldout.jsonl")) == 10


def test_committed_default_set_is_the_generators(tmp_path: Path) -> None:
    """data/tasks/ is `selfcritic eval make-tasks --out data/tasks --seed 0 --train 200
    --heldout 100`; regenerate it if the generator changes."""
    paths = write_tasks(tmp_path, 0, {"train": 200, "heldout": 100})
    for split, path in paths.items():
        committed = REPO / "data" / "tasks" / f"{split}.jsonl"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), split
        rows = [json.loads(line) for line in committed.read_text().splitlines()]
        assert set(rows[0]) == {"id", "question", "answer", "grader", "category"}
