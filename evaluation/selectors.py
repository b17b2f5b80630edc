"""The selection strategies `eval select` compares, named `<select>[-<judge>][-answer]`.

`<select>` is a `critic_loop.selection` strategy; those that call the judge (knockout,
league, hybrid) name its mode (`fast` or `reason`), those that do not (vote, confidence)
take none; `-answer` makes a knockout or league judge distinct answers (`merge: "answer"`).
Each becomes the `SelfCriticConfig` a request with the same `self_critic` fields gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from critic_loop.config import DEFAULT_JUDGE_WEIGHT, SELECTS, SelfCriticConfig
from critic_loop.judge_prompt import JudgeMode
from evaluation.dataset import Question

JUDGED = ("knockout", "league", "hybrid")
"""Strategies that call the pairwise judge."""
DEFAULT_SELECTORS = ("knockout-fast", "league-fast", "vote", "confidence", "hybrid-fast")


@dataclass(frozen=True)
class SelectSettings:
    """What every strategy of one `eval select` run shares."""

    n: int = 8
    include_greedy: bool = False
    comparisons: int = 2
    judge_max_tokens: int = 256
    judge_weight: float = DEFAULT_JUDGE_WEIGHT
    """Hybrid's say for its judge (2·p_comp − 1)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"--n must be >= 1, got {self.n}")
        if self.include_greedy and self.n < 2:
            raise ValueError("--include-greedy needs --n >= 2 (the greedy decode and a sample)")


@dataclass(frozen=True)
class Selector:
    """One strategy as `eval select` runs it."""

    select: str
    judge: str | None = None
    merge: str | None = None

    @property
    def name(self) -> str:
        return "-".join(p for p in (self.select, self.judge, self.merge) if p)

    @property
    def judged(self) -> bool:
        return self.select in JUDGED

    def config(self, settings: SelectSettings, question: Question,
               seed: int) -> SelfCriticConfig:
        """The config the server would run for this strategy on `question`."""
        return SelfCriticConfig(
            candidates=settings.n, judge=self.judge or JudgeMode.FAST,
            comparisons=settings.comparisons, judge_max_tokens=settings.judge_max_tokens,
            judge_temperature=0.0, seed=seed, schedule="rounds", merge=self.merge or "text",
            answer_format=question.vote_format, answer_pattern=question.answer_pattern,
            select=self.select, include_greedy=settings.include_greedy,
            judge_weight=settings.judge_weight)


def parse_selector(name: str) -> Selector:
    """`knockout-fast` → Selector('knockout', 'fast'); ValueError saying what is allowed.

    >>> parse_selector("league-reason-answer").merge, parse_selector("vote").judge
    ('answer', None)
    """
    select, *rest = name.strip().split("-")
    merge = "answer" if rest[-1:] == ["answer"] else None
    if merge:
        rest = rest[:-1]
    if select not in SELECTS:
        raise ValueError(f"unknown strategy {name!r}: it must start with one of "
                         f"{', '.join(SELECTS)}")
    modes = [m.value for m in JudgeMode]
    if select in JUDGED:
        if len(rest) != 1 or rest[0] not in modes:
            raise ValueError(f"strategy {name!r}: {select} calls the judge, so name its mode: "
                             f"{select}-fast or {select}-reason")
        if merge and select == "hybrid":
            raise ValueError(f"strategy {name!r}: hybrid groups answers already; drop "
                             "'-answer'")
        return Selector(select, rest[0], merge)
    if rest or merge:
        raise ValueError(f"strategy {name!r}: {select} calls no judge and groups answers "
                         f"already; write just {select!r}")
    return Selector(select)


def parse_selectors(text: str) -> tuple[Selector, ...]:
    """Comma-separated strategy names, each once."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("name at least one strategy")
    selectors = tuple(parse_selector(n) for n in names)
    seen = [s.name for s in selectors]
    if len(set(seen)) != len(seen):
        raise ValueError(f"a strategy is named twice in {text!r}")
    return selectors
