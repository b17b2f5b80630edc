"""How good a critic is: judge accuracy on held-out pairs, in both orders.

Each pair is judged twice through `critic_loop`'s `PairJudge` (the server's judging
path), once as given and once swapped, greedily. A row that gives the whole judge prompt
(the paper's data: responses inside the prompt) cannot be swapped: it is judged once, as
given, with the same sampling and verdict reading. The report gives accuracy (an invalid
vote counts as wrong) with a 95% CI over pairs, accuracy per order, position
consistency, the invalid-verdict rate and how often the judge names Response 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine
from critic_loop.judge_prompt import JudgeMode
from critic_loop.match import Judgment, MatchResult
from critic_loop.pairwise import Pairing, PairJudge, judge_given_prompts
from evaluation.pairs import PreferencePair, given_prompt_parts
from evaluation.stats import mean_ci95

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairVerdicts:
    """What the judge said about one pair: the preferred response (1, 2 or None for an
    invalid vote) as given and when swapped, and the right answer."""

    label: int
    as_given: int | None
    swapped: int | None
    texts: tuple[str, str]
    probabilities: tuple[float | None, float | None]
    """Fast mode: the probability given to the right response in each order."""
    orders: int = 2
    """2, or 1 for a given judge prompt, judged only as given (`swapped` is None)."""


@dataclass(frozen=True)
class CriticReport:
    """Judge quality on `pairs` pairs (2 judgments each, 1 for a given judge prompt)."""

    model: str
    mode: str
    pairs: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    accuracy_as_given: float
    accuracy_swapped: float | None
    """Over the pairs judged in both orders (None: no such pair)."""
    consistency: float | None
    """Share of pairs judged in both orders whose two votes were valid and agreed."""
    consistent_accuracy: float | None
    """Share of pairs judged in both orders that were judged right in both."""
    invalid_rate: float
    first_position_rate: float
    """Share of valid votes that named Response 1 (0.5 = no position bias)."""
    valid_accuracy: float | None
    """Accuracy over valid votes only (None when every vote was invalid)."""
    match_accuracy: float = 0.0
    """How often a K=2 match over the pair picks the right response, deciding as the
    knockout does: the majority of the two votes, a split by the summed probabilities
    (fast mode), else a fair coin (counted as a half)."""
    given_prompts: int = 0
    """Pairs whose data gave the whole judge prompt: judged once, as given."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        low, high = self.accuracy_ci95
        shown = (f"{self.pairs} pairs × 2 orders" if not self.given_prompts else
                 f"{self.pairs} pairs ({self.given_prompts} given judge prompts, judged once)")
        return (f"{self.model} [{self.mode}] {shown}: "
                f"accuracy {self.accuracy:.1%} (95% CI {low:.1%}–{high:.1%}; "
                f"as given {self.accuracy_as_given:.1%}, swapped {_share(self.accuracy_swapped)}), "
                f"consistency {_share(self.consistency)}, "
                f"both right {_share(self.consistent_accuracy)}, "
                f"invalid {self.invalid_rate:.1%}, says 1 {self.first_position_rate:.1%}; "
                f"K=2 match accuracy {self.match_accuracy:.1%}")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


async def judge_pairs(engine: Engine, pairs: Sequence[PreferencePair], *,
                      mode: JudgeMode | str = JudgeMode.FAST, max_tokens: int = 512,
                      seed: int = 0, chunk: int = 64) -> list[PairVerdicts]:
    """Judge every pair in both orders (a given judge prompt once, as given); `chunk`
    pairs are in flight at once. Verdicts come back in the order of `pairs`."""
    config = SelfCriticConfig(judge=mode, comparisons=2, judge_max_tokens=max_tokens,
                              judge_temperature=0.0, seed=seed)
    if config.mode is JudgeMode.FAST and any(p.given_prompt for p in pairs):
        logger.warning("fast mode reads the first token of a given judge prompt's answer as "
                       "the verdict; the data's wording may ask for reasoning first (use "
                       "--judge reason to follow it)")
    verdicts: list[PairVerdicts] = []
    for start in range(0, len(pairs), chunk):
        batch = pairs[start:start + chunk]
        given = [i for i, pair in enumerate(batch) if pair.given_prompt]
        judged = dict(zip(given, await judge_given_prompts(
            engine, [_given_conversation(batch[i]) for i in given], config,
            [f"eval-{start + i}" for i in given]), strict=True))
        matches = await asyncio.gather(*(_play(engine, pair, config, start + i, seed)
                                         for i, pair in enumerate(batch)
                                         if not pair.given_prompt))
        played = iter(matches)
        verdicts.extend(_given_verdicts(pair, judged[i]) if pair.given_prompt
                        else _verdicts(pair, next(played)) for i, pair in enumerate(batch))
    return verdicts


def score(verdicts: Sequence[PairVerdicts], *, model: str, mode: str) -> CriticReport:
    """Aggregate pair verdicts into a `CriticReport`."""
    if not verdicts:
        raise ValueError("no pairs to score")
    n = len(verdicts)
    given = [float(v.as_given == v.label) for v in verdicts]
    both = [v for v in verdicts if v.orders == 2]
    swapped = [float(v.swapped == v.label) for v in both]
    per_pair = [(a + float(v.swapped == v.label)) / 2 if v.orders == 2 else a
                for v, a in zip(verdicts, given, strict=True)]
    votes = [(said, shown_first) for v in verdicts
             for said, shown_first in ((v.as_given, 1), (v.swapped, 2))[:v.orders]]
    valid = [(said, first) for said, first in votes if said is not None]
    right = sum(given) + sum(swapped)
    accuracy = sum(per_pair) / n

    def over_both(values: Sequence[float]) -> float | None:
        return sum(values) / len(both) if both else None

    return CriticReport(
        model=model, mode=mode, pairs=n, accuracy=accuracy,
        accuracy_ci95=mean_ci95(per_pair),
        accuracy_as_given=sum(given) / n, accuracy_swapped=over_both(swapped),
        consistency=over_both([float(v.as_given is not None and v.as_given == v.swapped)
                               for v in both]),
        consistent_accuracy=over_both([float(v.as_given == v.label == v.swapped)
                                       for v in both]),
        invalid_rate=1 - len(valid) / len(votes),
        # a vote names Response 1 when it prefers whichever response was shown first
        first_position_rate=(sum(said == first for said, first in valid) / len(valid)
                             if valid else 0.0),
        valid_accuracy=right / len(valid) if valid else None,
        match_accuracy=sum(match_score(v) for v in verdicts) / n,
        given_prompts=n - len(both),
    )


def match_score(verdict: PairVerdicts) -> float:
    """1, 0 or 0.5 (a coin) for the K=2 match over one pair, decided as the knockout does.

    >>> match_score(PairVerdicts(1, 1, 2, ("", ""), (0.9, 0.3)))  # split; 0.9 + 0.3 > 1
    1.0
    >>> match_score(PairVerdicts(1, 2, None, ("", ""), (None, None)))  # one wrong vote
    0.0
    >>> match_score(PairVerdicts(1, 1, 2, ("", ""), (None, None)))  # split: a coin
    0.5
    """
    votes = [said == verdict.label for said in (verdict.as_given, verdict.swapped)
             if said is not None]
    wrong = len(votes) - sum(votes)
    if sum(votes) != wrong:
        return float(sum(votes) > wrong)
    given, swapped = verdict.probabilities
    if given is not None and swapped is not None and given + swapped != 1.0:
        return float(given + swapped > 1.0)
    return 0.5


async def _play(engine: Engine, pair: PreferencePair, config: SelfCriticConfig, index: int,
                seed: int) -> MatchResult:
    question: Any = pair.question if isinstance(pair.question, str) else list(pair.question)
    if pair.images:  # images given apart from the question ride along as image parts
        parts = [{"type": "image", "image": image} for image in pair.images]
        question = [{"role": "user", "content": [*parts, {"type": "text", "text": question}]}] \
            if isinstance(question, str) else question
    judge = PairJudge(engine, question, config, request_id=f"eval-{index}", seed=seed)
    pairing = Pairing(a=1, b=2, text_a=pair.response_1, text_b=pair.response_2, key=f"p{index}")
    (match,) = await judge.play([pairing])
    return match


def _verdicts(pair: PreferencePair, match: MatchResult) -> PairVerdicts:
    # PairJudge alternates orders: judgment 0 shows (1, 2) as given, judgment 1 swaps them.
    first, second = match.judgments[0], match.judgments[1]
    return PairVerdicts(
        label=pair.label, as_given=first.verdict, swapped=second.verdict,
        texts=(first.text, second.text),
        probabilities=(first.weight(pair.label) if first.probabilities else None,
                       second.weight(pair.label) if second.probabilities else None))


def _given_conversation(pair: PreferencePair) -> list[dict[str, Any]]:
    """A given judge prompt as one user turn, each image in its placeholder's place."""
    if not pair.images:
        return [{"role": "user", "content": pair.question}]
    images = iter(pair.images)
    parts = [{**part, "image": next(images)} if part["type"] == "image" else part
             for part in given_prompt_parts(str(pair.question), len(pair.images))]
    return [{"role": "user", "content": parts}]


def _given_verdicts(pair: PreferencePair, judgment: Judgment) -> PairVerdicts:
    return PairVerdicts(
        label=pair.label, as_given=judgment.verdict, swapped=None, texts=(judgment.text, ""),
        probabilities=(judgment.weight(pair.label) if judgment.probabilities else None, None),
        orders=1)
