"""Every strategy on the same candidates of each question: the pool the server would build,
`critic_loop.selection.registry.select` with a `PairJudge`, and each winner graded.

This is the server's own selection code (`best_of_n` after sampling), so a strategy's
accuracy here is what a `self_critic` request with the same fields would score on these
candidates, and the strategies' figures are paired: they differ only in how they choose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from critic_loop.answers import extract_answer
from critic_loop.engine import Completion, Engine
from critic_loop.pairwise import PairJudge
from critic_loop.report import TokenUsage
from critic_loop.selection.base import Pool, Selection
from critic_loop.selection.registry import select
from critic_loop.selection.signals import candidate_signals
from critic_loop.tournament import draw_seed
from evaluation.candidate_grader import CandidateGrader, grader_for
from evaluation.candidates import CandidateSet
from evaluation.dataset import Question
from evaluation.selectors import Selector, SelectSettings
from evaluation.strategies import CodeScoring, question_seed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    """One strategy's choice on one question, what it cost, and how its judge did."""

    strategy: str
    winner: int
    correct: bool
    judge_calls: int = 0
    judge_tokens: int = 0
    invalid_votes: int = 0
    differing_matches: int = 0
    """Judged matches whose two sides give different answers."""
    agreeing_matches: int = 0
    """Of those, matches where every judgment agreed (both orders, for K = 2)."""
    right_wrong_matches: int = 0
    """Judged matches between a right and a wrong candidate."""
    right_won: int = 0
    """Of those, matches the right candidate won (their share estimates p_comp)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class QuestionPicks:
    """One question: its pool graded, and every strategy's pick."""

    question_id: str
    category: str | None
    correct: tuple[bool, ...]
    """Each pool candidate graded (index 0 is greedy with include_greedy)."""
    sampled: tuple[int, ...]
    """The pool indices that were sampled (all but the greedy one)."""
    greedy_correct: bool | None
    """The file's greedy candidate graded; None when the file has none."""
    answers: tuple[str | None, ...]
    picks: tuple[Pick, ...]

    @property
    def pass_at_n(self) -> bool:
        return any(self.correct)

    @property
    def sample_accuracy(self) -> float:
        """The share of sampled candidates that are right: unbiased pass@1."""
        return sum(self.correct[i] for i in self.sampled) / len(self.sampled)

    def to_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "category": self.category,
                "correct": list(self.correct), "greedy_correct": self.greedy_correct,
                "answers": list(self.answers),
                "picks": {p.strategy: {k: v for k, v in p.to_dict().items() if k != "strategy"}
                          for p in self.picks}}


async def select_question(engine: Engine, question: Question, messages: Sequence[Mapping[str, Any]],
                          candidates: CandidateSet, selectors: Sequence[Selector],
                          settings: SelectSettings,
                          graders: Mapping[str, CandidateGrader] | None = None,
                          code: CodeScoring | None = None) -> QuestionPicks:
    """Build the pool, grade it, and run every strategy on it (one after another, so a
    replaying engine answers a judgment it has seen from its first run)."""
    pool_completions = candidates.pool(settings.n, settings.include_greedy)
    grader = grader_for(question, graders)
    texts = [c.text for c in pool_completions]
    greedy = candidates.greedy
    extra = [] if greedy is None or settings.include_greedy else [greedy.text]
    graded = await asyncio.to_thread(lambda: [grader(t, question) for t in texts + extra])
    correct = tuple(graded[:len(texts)])
    greedy_correct = (None if greedy is None else correct[0] if settings.include_greedy
                      else graded[-1])
    group_by = None
    if code is not None and code.group_by_behaviour and question.code is not None:
        task = question.code
        keys = await code.grader.run_async(code.grader.vote_keys, task.prompt or "", texts,
                                           task.entry_point)
        group_by = lambda _completions: keys  # noqa: E731 - the keys are computed already
    pool = Pool(pool_completions, tuple(candidate_signals(c.logprobs) for c in pool_completions),
                group_by)
    answers = tuple(extract_answer(t, question.vote_format, question.answer_pattern)
                    for t in texts)
    seed = question_seed(settings.seed, question.id)
    picks = []
    for selector in selectors:
        config = selector.config(settings, question, seed)
        judge = PairJudge(engine, list(messages), config,
                          request_id=f"{question.id}-{selector.name}", seed=draw_seed(seed))
        selection = await select(pool, judge, config)
        picks.append(_pick(selector.name, selection, correct, pool_completions, answers))
    return QuestionPicks(question.id, question.category, correct,
                         tuple(range(int(settings.include_greedy), settings.n)), greedy_correct,
                         answers, tuple(picks))


def _pick(name: str, selection: Selection, correct: Sequence[bool],
          completions: Sequence[Completion], answers: Sequence[str | None]) -> Pick:
    played = selection.played
    differing = agreeing = right_wrong = right_won = 0
    for match in played.matches:
        a, b = match.pair
        if _answer_key(answers, completions, a) != _answer_key(answers, completions, b):
            differing += 1
            agreeing += match.outcome == "consistent"
        if correct[a] != correct[b]:
            right_wrong += 1
            right_won += correct[match.winner]
    return Pick(name, selection.winner, correct[selection.winner], played.judge_calls,
                TokenUsage.of_judgments(played.judgments).total_tokens, played.invalid_votes,
                differing, agreeing, right_wrong, right_won)


def _answer_key(answers: Sequence[str | None], completions: Sequence[Completion],
                index: int) -> str:
    """A candidate's extracted answer, or its whitespace-normalised text when it has none."""
    found = answers[index]
    return f"answer:{found}" if found is not None else " ".join(completions[index].text.split())
