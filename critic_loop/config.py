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

SELF_CRITIC_SUFFIX = ":self-critic"
"""A served model name with this suffix (`MODEL:self-critic`) turns self-critic on for
every request to it: the server's naming rule, which the evaluation's clients read too."""
JUDGE_SUFFIX = ":judge"
"""A served model name with this suffix (`MODEL:judge`) runs a plain completion with the
model's judge adapter (`critic_loop.runtime.judge_adapter`), where it has one: how an
engine in front of other servers (`--upstream`, the calibration) reaches the trained judge.
A vLLM server reaches it with `--lora-modules MODEL:judge=EXPORT/judge-adapter`."""
ALIAS_SUFFIXES = (SELF_CRITIC_SUFFIX, JUDGE_SUFFIX)
"""The suffixes of a model's aliases: names listed beside `MODEL` that are not models of
their own (what a client looking for the model skips)."""
MAX_CANDIDATES = 128
"""The paper's largest N (best-of-128)."""
MAX_COMPARISONS = 64
SCHEDULES = ("rounds", "pipelined")
MERGES = ("text", "answer")
SELECTS = ("knockout", "league", "vote", "confidence", "hybrid")
"""Selection strategies (`critic_loop.selection.registry`)."""
DEFAULT_SELECT = "knockout"
"""The strategy a `SelfCriticConfig` that names none runs (the library's; the server's
default is `ServerSettings.select`, or the served model's calibration)."""
MAX_LEAGUE_CANDIDATES = 16
"""A league judges every pair of entrants, U(U−1)/2 matches: 120 at 16 candidates."""
DEFAULT_JUDGE_WEIGHT = 0.5
"""Hybrid's say for a judge whose reliability was not measured: half of a perfect one's."""
ADAPTIVE = ("off", "agreement", "confidence")


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
    select: str = field(default=DEFAULT_SELECT, metadata={
        "help": "How the winner is chosen (critic_loop.selection): 'knockout' (the bracket); "
                "'league' (every pair of entrants, ranked by win rate; at most "
                f"{MAX_LEAGUE_CANDIDATES} candidates); 'vote' (the answer most candidates "
                "gave); 'confidence' (the answer with the most DeepConf confidence); "
                "'hybrid' (vote and confidence rank, the judge weighs in on the top two)."})
    include_greedy: bool = field(default=False, metadata={
        "help": "Make candidate 0 the greedy (temperature 0) decode, the other N−1 sampled, "
                "so the pool always holds the answer greedy decoding would give."})
    judge_weight: float = field(default=DEFAULT_JUDGE_WEIGHT, metadata={
        "help": "Hybrid: the judge's reliability in [0, 1] (2·p_comp − 1: 0 a coin, 1 always "
                "right), the weight of its verdict between the top two; 0 never calls it."})
    adaptive: str = field(default="off", metadata={
        "help": "'off': every candidate runs to its end; 'agreement': stop the running "
                "candidates once the leading answer group cannot be overtaken by them "
                "(critic_loop.adaptive); 'confidence': also stop a candidate whose "
                "sliding-window confidence falls below a threshold set from the first "
                "finished ones (DeepConf online). Stopped candidates are not ranked."})
    adaptive_wave: int = field(default=0, metadata={
        "help": "With adaptive: sample this many candidates at a time and draw another wave "
                "only while the answer is unsettled, up to N; 0: all N at once."})
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
        if self.adaptive not in ADAPTIVE:
            allowed = ", ".join(repr(v) for v in ADAPTIVE)
            raise ValueError(f"adaptive must be one of {allowed}, got {self.adaptive!r}")
        _check_int("adaptive_wave", self.adaptive_wave, 0, self.candidates)
        if self.adaptive_wave and self.adaptive == "off":
            raise ValueError("adaptive_wave needs adaptive 'agreement' or 'confidence'")
        if self.adaptive != "off" and self.include_greedy:
            # The greedy candidate is a request of its own; adaptive sampling streams one.
            raise ValueError("include_greedy cannot be combined with adaptive sampling yet")
        if self.answer_pattern is not None:
            if not isinstance(self.answer_pattern, str):
                raise ValueError(f"answer_pattern must be a string, got {self.answer_pattern!r}")
            compile_pattern(self.answer_pattern)
        if self.select not in SELECTS:
            allowed = ", ".join(repr(s) for s in SELECTS)
            raise ValueError(f"select must be one of {allowed}, got {self.select!r}")
        if self.select == "league" and self.candidates > MAX_LEAGUE_CANDIDATES:
            raise ValueError(f"select 'league' judges every pair of candidates, so it takes at "
                             f"most {MAX_LEAGUE_CANDIDATES} candidates, got {self.candidates}; "
                             "use 'knockout' or 'hybrid' for more")
        if not isinstance(self.include_greedy, bool):
            raise ValueError(f"include_greedy must be true or false, got {self.include_greedy!r}")
        weight = self.judge_weight
        if (isinstance(weight, bool) or not isinstance(weight, (int, float))
                or not 0 <= weight <= 1):
            raise ValueError(f"judge_weight must be a number in [0, 1], got {weight!r}")
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
    def max_matches(self) -> int:
        """Matches judged at most: N−1 in a knockout, every pair in a league, the final
        between the top two in a hybrid (none when its judge has no weight), none in a vote."""
        n = self.candidates
        if self.select == "knockout":
            return n - 1
        if self.select == "league":
            return n * (n - 1) // 2
        if self.select == "hybrid":
            return int(n > 1 and self.judge_weight > 0)
        return 0

    @property
    def peak_judge_sequences(self) -> int:
        """The most judgments in flight at once: every distinct judgment of every
        first-round match (a league plays all its matches at once)."""
        matches = (self.candidates // 2) if self.select == "knockout" else self.max_matches
        return matches * self.distinct_comparisons

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
        """Judgments generated at most for `candidates` distinct candidates: `max_matches`
        ((N−1) in a knockout) of `distinct_comparisons`, plus the extra one per match when
        allowed."""
        return self.max_matches * (self.distinct_comparisons + int(self.extra_judgment))

    @property
    def max_judge_calls(self) -> int:
        """Judge calls at most for `candidates` distinct candidates: `max_matches`·K
        ((N−1)·K in a knockout), plus one per match when `extra_judgment` holds (every
        match could split)."""
        return self.max_matches * (self.comparisons + int(self.extra_judgment))

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "judge": self.mode.value,
                "comparisons": self.comparisons, "judge_max_tokens": self.judge_max_tokens,
                "judge_temperature": self.judge_temperature, "return_trace": self.return_trace,
                "seed": self.seed, "schedule": self.schedule, "merge": self.merge,
                "answer_format": self.answer_format, "answer_pattern": self.answer_pattern,
                "select": self.select, "include_greedy": self.include_greedy,
                "judge_weight": self.judge_weight,
                "adaptive": self.adaptive, "adaptive_wave": self.adaptive_wave,
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
