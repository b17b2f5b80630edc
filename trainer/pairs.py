"""On-policy preference pairs: the choice the judge faces at test time, two of its own answers.

A sampler draws N answers from the model to each verifiable training question; each is
graded by the shared graders (`critic_loop.answers`; `code` in the sandbox); a question
whose samples are all right or all wrong gives nothing, a discordant one gives up to
`pairs_per_question` (right, wrong) pairs of distinct texts. Pairs are written in the
trainer's chosen/rejected row shape with their provenance (question id, sample indices,
grader results), train and held-out from disjoint questions (split by a hash of the
question id, so no seed or sample count moves a question across).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from critic_loop.answers import CODE_GRADER, extract_answer, grade
from evaluation.dataset import Question

logger = logging.getLogger(__name__)

PAIR_SPLITS = ("train", "heldout")


class Sampler(Protocol):
    """Draws `n` answers to each question, in question order."""

    async def sample(self, questions: Sequence[Question], n: int) -> list[list[str]]:
        ...


CodeGrade = Callable[[str, Question], tuple[bool, str]]
"""`(answer, question) -> (passed, result)` for code questions (the sandboxed grader)."""


@dataclass(frozen=True)
class MiningConfig:
    """How many samples per question, how many pairs from each, and the split."""

    samples: int = 8
    pairs_per_question: int = 2
    heldout_share: float = 0.25
    """Share of the questions (by hash of their id) whose pairs go to the held-out split."""
    seed: int = 0
    model: str = ""
    """Recorded in each pair's provenance."""

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2 (a pair needs two answers), got {self.samples}")
        if self.pairs_per_question < 1:
            raise ValueError(f"pairs_per_question must be >= 1, got {self.pairs_per_question}")
        if not 0 <= self.heldout_share < 1:
            raise ValueError(f"heldout_share must be in [0, 1), got {self.heldout_share}")


@dataclass(frozen=True)
class GradedSamples:
    """One question's samples, each graded."""

    question: Question
    texts: tuple[str, ...]
    correct: tuple[bool, ...]
    results: tuple[str, ...]
    """Per sample: the grader's reading ('right: 12', 'wrong: 13', 'no answer', or the code
    grader's 'passed' / 'failed: ...' / 'timed out')."""

    @property
    def discordant(self) -> bool:
        return any(self.correct) and not all(self.correct)

    def to_dict(self) -> dict[str, Any]:
        return {"question_id": self.question.id, "category": self.question.category,
                "grader": self.question.grader, "texts": list(self.texts),
                "correct": list(self.correct), "results": list(self.results)}


@dataclass
class MiningResult:
    """The pairs by split, every question's graded samples, and the counts."""

    pairs: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {s: [] for s in PAIR_SPLITS})
    samples: list[GradedSamples] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        graded = self.samples
        by_split = {s: sorted({p["provenance"]["question_id"] for p in self.pairs[s]})
                    for s in PAIR_SPLITS}
        return {"questions": len(graded),
                "discordant": sum(g.discordant for g in graded),
                "all_right": sum(all(g.correct) for g in graded),
                "all_wrong": sum(not any(g.correct) for g in graded),
                "sample_accuracy": (sum(sum(g.correct) for g in graded)
                                    / max(1, sum(len(g.correct) for g in graded))),
                "pairs": {s: len(self.pairs[s]) for s in PAIR_SPLITS},
                "pair_questions": {s: len(v) for s, v in by_split.items()}}


def split_of_question(question_id: str, heldout_share: float) -> str:
    """'heldout' for a fixed `heldout_share` of question ids (by hash), else 'train'.

    >>> split_of_question("q1", 0.0), split_of_question("q1", 0.999)
    ('train', 'heldout')
    """
    digest = hashlib.sha256(f"selfcritic-pairs|{question_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_share else "train"


def grade_samples(question: Question, texts: Sequence[str],
                  code_grade: CodeGrade | None = None) -> GradedSamples:
    """Grade each sample with the question's grader (`code` needs `code_grade`)."""
    correct, results = [], []
    for text in texts:
        if question.grader == CODE_GRADER:
            if code_grade is None:
                raise ValueError(f"{question.id} is a code question: grading it needs the "
                                 "sandboxed code grader")
            passed, result = code_grade(text, question)
        else:
            passed = grade(text, question.answer, question.grader,
                           pattern=question.answer_pattern)
            answer = extract_answer(text, question.vote_format, question.answer_pattern)
            result = ("right" if passed else "wrong") + (f": {answer}" if answer else "")
            if answer is None and not passed:
                result = "no answer"
        correct.append(passed)
        results.append(result)
    return GradedSamples(question, tuple(texts), tuple(correct), tuple(results))


def pairs_of(graded: GradedSamples, config: MiningConfig) -> list[dict[str, Any]]:
    """Up to `pairs_per_question` (right, wrong) rows of distinct texts; none unless the
    question is discordant. Which combinations are taken is seeded by question id."""
    if not graded.discordant:
        return []
    right = _distinct([i for i, ok in enumerate(graded.correct) if ok], graded.texts)
    wrong = _distinct([i for i, ok in enumerate(graded.correct) if not ok], graded.texts)
    combos = [(r, w) for r in right for w in wrong
              if graded.texts[r].strip() != graded.texts[w].strip()]
    random.Random(f"{config.seed}:{graded.question.id}").shuffle(combos)
    # answers not yet used first, so the pairs of a question cover as many answers as they can
    fresh, used = [], set()
    for combo in combos:
        if not used & set(combo):
            fresh.append(combo)
            used.update(combo)
    combos = fresh + [c for c in combos if c not in fresh]
    split = split_of_question(graded.question.id, config.heldout_share)
    question = graded.question
    rows = []
    for chosen, rejected in combos[:config.pairs_per_question]:
        rows.append({
            "prompt": question.question, "chosen": graded.texts[chosen],
            "rejected": graded.texts[rejected],
            "provenance": {
                "question_id": question.id, "category": question.category,
                "grader": question.grader, "split": split, "model": config.model,
                "samples": len(graded.texts), "right": sum(graded.correct),
                "chosen_index": chosen, "rejected_index": rejected,
                "chosen_result": graded.results[chosen],
                "rejected_result": graded.results[rejected],
                "reference": None if question.grader == CODE_GRADER else question.answer}})
    return rows


async def mine_pairs(questions: Sequence[Question], sampler: Sampler, config: MiningConfig,
                     code_grade: CodeGrade | None = None, *, batch: int = 16) -> MiningResult:
    """Sample, grade and pair every question (`batch` questions per sampler call)."""
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids must be unique: they decide the split")
    result = MiningResult()
    for start in range(0, len(questions), batch):
        chunk = list(questions[start:start + batch])
        texts = await sampler.sample(chunk, config.samples)
        if len(texts) != len(chunk) or any(len(t) != config.samples for t in texts):
            raise RuntimeError(f"the sampler returned {[len(t) for t in texts]} answers for "
                               f"{len(chunk)} questions × {config.samples}")
        graded = await asyncio.gather(*(asyncio.to_thread(grade_samples, q, t, code_grade)
                                        for q, t in zip(chunk, texts, strict=True)))
        for g in graded:
            result.samples.append(g)
            for row in pairs_of(g, config):
                result.pairs[row["provenance"]["split"]].append(row)
        logger.info("mined %d/%d questions: %d train, %d held-out pairs",
                    len(result.samples), len(questions), len(result.pairs["train"]),
                    len(result.pairs["heldout"]))
    return result


def write_mining(result: MiningResult, out_dir: Path, config: MiningConfig,
                 extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """train.jsonl, heldout.jsonl (pairs), samples.jsonl (every graded sample, with its
    question's split) and summary.json under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {split: out_dir / f"{split}.jsonl" for split in PAIR_SPLITS}
    for split, path in paths.items():
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                for r in result.pairs[split]), encoding="utf-8")
    paths["samples"] = out_dir / "samples.jsonl"
    paths["samples"].write_text("".join(
        json.dumps({**g.to_dict(), "split": split_of_question(g.question.id,
                                                              config.heldout_share)},
                   ensure_ascii=False) + "\n" for g in result.samples), encoding="utf-8")
    paths["summary"] = out_dir / "summary.json"
    paths["summary"].write_text(json.dumps(
        {**result.summary(), "config": asdict(config), **(extra or {})}, indent=2) + "\n")
    return paths


def _distinct(indices: list[int], texts: Sequence[str]) -> list[int]:
    """The first index of each distinct (whitespace-normalised) text."""
    seen: set[str] = set()
    out = []
    for i in indices:
        key = " ".join(texts[i].split())
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out
