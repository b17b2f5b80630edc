"""`SelfCriticConfig`: how many candidates, how they are judged, and how the bracket runs.

One frozen dataclass for best-of-N and for ranking given responses, validated on
construction so the server can turn a `ValueError` into a 400 with the allowed values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from critic_loop.answers import FORMATS, compile_pattern
from critic_loop.judge_prompt import JudgeMode

MAX_CANDIDATES = 128
"""The paper's largest N (best-of-128)."""
MAX_COMPARISONS = 64
SCHEDULES = ("rounds", "pipelined")
MERGES = ("text", "answer")


@dataclass(frozen=True)
class SelfCriticConfig:
    """Settings of one self-critic run. `judge` is normalised to a `JudgeMode`."""

    candidates: int = field(default=4, metadata={
        "help": f"N, the candidates sampled and judged (1 to {MAX_CANDIDATES})."})
    judge: JudgeMode | str = field(default=JudgeMode.REASON, metadata={
        "help": "'reason': think, then \\boxed{1|2} (the paper's); "
                "'fast': one token restricted to '1'/'2', its probabilities are the verdict."})
    comparisons: int = field(default=2, metadata={
        "help": "K, judgments per match, alternating the order of the two responses; "
                "even K cancels position bias."})
    judge_max_tokens: int = field(default=512, metadata={
        "help": "Token budget of one reason-mode judgment (fast mode decodes one token)."})
    judge_temperature: float = field(default=0.0, metadata={
        "help": "Reason-mode sampling temperature. 0 (greedy, as the paper evaluates its "
                "critic) skips the tie-break judgment when it would repeat a prompt."})
    return_trace: bool = field(default=False, metadata={
        "help": "Report the candidates and every match with its judgments."})
    seed: int | None = field(default=None, metadata={
        "help": "Seeds byes, coins and judge sampling; None draws a fresh seed per run."})
    schedule: str = field(default="rounds", metadata={
        "help": "'rounds': all judgments of a round in one engine call; 'pipelined': judge "
                "a pair as soon as both its candidates are finished (same bracket)."})
    merge: str = field(default="text", metadata={
        "help": "'text': candidates identical up to whitespace are judged once; 'answer': "
                "candidates with the same extracted answer form one entrant, only distinct "
                "entrants are judged, and vote counts settle splits (runs as 'rounds')."})
    answer_format: str = field(default="auto", metadata={
        "help": "How merge='answer' reads an answer (critic_loop.answers): 'auto' (last "
                "\\boxed{}, else last number), 'number', 'boxed' or 'choice' (a letter A–E)."})
    answer_pattern: str | None = field(default=None, metadata={
        "help": "A regular expression that reads the answer instead (its last match; group "
                "1 if it has groups, else the whole match)."})
    calibrate_position: bool = field(default=True, metadata={
        "help": "Fast mode: decide a match by the judge's content preference with its "
                "position bias removed (each order's log-odds averaged, then their half "
                "difference; critic_loop.match.content_preference). false: the raw votes, "
                "then the raw summed probabilities (the same winner at K=2 when both "
                "orders are valid; position decides at odd K for a judge that always "
                "says 1)."})
    position_prior: float | None = field(default=None, metadata={
        "help": "The fast judge's position bias, logit P('1') with no content preference, "
                "as measured for the model; corrects matches judged in one order only. "
                "None: 0 (matches judged in both orders need no prior)."})

    def __post_init__(self) -> None:
        _check_int("candidates", self.candidates, 1, MAX_CANDIDATES)
        try:
            object.__setattr__(self, "judge", JudgeMode(self.judge))
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in JudgeMode)
            raise ValueError(f"judge must be one of {allowed}, got {self.judge!r}") from None
        _check_int("comparisons", self.comparisons, 1, MAX_COMPARISONS)
        _check_int("judge_max_tokens", self.judge_max_tokens, 1, None)
        temperature = self.judge_temperature
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not math.isfinite(temperature) or not 0 <= temperature <= 2):
            raise ValueError(f"judge_temperature must be a number in [0, 2], got {temperature!r}")
        if not isinstance(self.return_trace, bool):
            raise ValueError(f"return_trace must be true or false, got {self.return_trace!r}")
        if self.seed is not None:
            _check_int("seed", self.seed, None, None)
        if self.schedule not in SCHEDULES:
            allowed = ", ".join(repr(s) for s in SCHEDULES)
            raise ValueError(f"schedule must be one of {allowed}, got {self.schedule!r}")
        for name, allowed_values in (("merge", MERGES), ("answer_format", FORMATS)):
            value = getattr(self, name)
            if value not in allowed_values:
                allowed = ", ".join(repr(v) for v in allowed_values)
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.answer_pattern is not None:
            if not isinstance(self.answer_pattern, str):
                raise ValueError(f"answer_pattern must be a string, got {self.answer_pattern!r}")
            compile_pattern(self.answer_pattern)
        if not isinstance(self.calibrate_position, bool):
            raise ValueError("calibrate_position must be true or false, got "
                             f"{self.calibrate_position!r}")
        prior = self.position_prior
        if prior is not None and (isinstance(prior, bool) or not isinstance(prior, (int, float))
                                  or not math.isfinite(prior)):
            raise ValueError(f"position_prior must be a finite number or null, got {prior!r}")

    @property
    def mode(self) -> JudgeMode:
        return JudgeMode(self.judge)

    @property
    def extra_judgment(self) -> bool:
        """Whether a split reason-mode match takes one more judgment before the coin.

        At temperature 0 that judgment would repeat one of the K prompts verbatim and so
        add cost but no information; only K == 1 leaves an order still unasked."""
        return self.mode is JudgeMode.REASON and (self.judge_temperature > 0
                                                  or self.comparisons == 1)

    @property
    def greedy_judge(self) -> bool:
        """Whether a judgment is a function of its prompt: fast mode decodes greedily, and
        so does reason mode at temperature 0."""
        return self.mode is JudgeMode.FAST or self.judge_temperature == 0

    @property
    def distinct_comparisons(self) -> int:
        """Judgments per match actually generated: a greedy judge answers each order once
        (its verdict counts K/2 times per order), a sampling judge K times."""
        return min(self.comparisons, 2) if self.greedy_judge else self.comparisons

    @property
    def peak_judge_sequences(self) -> int:
        """The most judgments in flight at once: every distinct judgment of every
        first-round match."""
        return (self.candidates // 2) * self.distinct_comparisons

    @property
    def peak_sequences(self) -> int:
        """The most sequences of a best-of-N run in flight at once. In rounds, candidates
        finish before the first round; pipelined, a finished pair's judgments replace its two
        candidates, so the peak is the same except for a bye still generating."""
        judging = self.peak_judge_sequences
        if self.schedule == "pipelined" and self.merge == "text":
            judging += self.candidates % 2
        return max(self.candidates, judging)

    @property
    def judge_generations(self) -> int:
        """Judgments generated at most for `candidates` distinct candidates: (N−1) matches
        of `distinct_comparisons`, plus the extra one per match when allowed."""
        return (self.candidates - 1) * (self.distinct_comparisons + int(self.extra_judgment))

    @property
    def max_judge_calls(self) -> int:
        """Judge calls at most for `candidates` distinct candidates: (N−1)·K, plus one per
        match when `extra_judgment` holds (every match could split)."""
        return (self.candidates - 1) * (self.comparisons + int(self.extra_judgment))

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "judge": self.mode.value,
                "comparisons": self.comparisons, "judge_max_tokens": self.judge_max_tokens,
                "judge_temperature": self.judge_temperature, "return_trace": self.return_trace,
                "seed": self.seed, "schedule": self.schedule, "merge": self.merge,
                "answer_format": self.answer_format, "answer_pattern": self.answer_pattern,
                "calibrate_position": self.calibrate_position,
                "position_prior": self.position_prior}


def _check_int(name: str, value: Any, low: int | None, high: int | None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = ("an integer" if low is None else
                  f"an integer >= {low}" if high is None else f"an integer from {low} to {high}")
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
