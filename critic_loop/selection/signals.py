"""Per-candidate confidence read from the log-probabilities the engine returned while sampling.

Nearly free: the engine reports each generated token's logprob and its top-k alternatives
(`SamplingOptions.logprobs = k`), and these are functions of that list alone. DeepConf (Fu
et al., arXiv 2508.15260; facebookresearch/deepconf `utils.compute_confidence`,
`compute_least_grouped`, `calculate_tail_confidence`) defines, for token i with top-k
logprobs log P_i(1..k):

    token confidence  C_i = -(1/k) · Σ_j log P_i(j)      (high: a peaked distribution)
    group confidence  the mean of C_i over a sliding window of `window` tokens
    lowest group confidence  the least of those means (the whole answer's mean when it is
                      shorter than the window, as DeepConf's `compute_least_grouped` does)
    tail confidence   the mean of C_i over the last `tail` tokens

Self-certainty (Kang et al., arXiv 2502.18581) is the KL divergence of the full next-token
distribution from uniform, -log V - (1/V)·Σ_{j=1..V} log p_j, and so needs all V logprobs;
vLLM and OpenAI-style engines return only the top k. It is NOT computed: restricted to the
top k it becomes C_i - log k, DeepConf's token confidence shifted by a constant, which would
add a number but no information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from critic_loop.engine import TokenLogprob

TOP_LOGPROBS = 20
"""Alternatives per token requested when a strategy needs confidence: DeepConf's k (its
`logprobs=20`), which is also vLLM's default `max_logprobs`."""
GROUP_WINDOW = 32
"""Tokens per sliding window. DeepConf uses 2048 for reasoning traces of ~10k tokens; answers
here are tens to hundreds of tokens, so a window of a sentence or a line of code."""
TAIL_TOKENS = 32
LOGPROB_FLOOR = -100.0
"""A -inf alternative (a token the sampler had ruled out) counts as this, so a confidence
stays a finite number the trace can carry as JSON."""


@dataclass(frozen=True)
class CandidateSignals:
    """One candidate's confidence signals; the DeepConf ones are None when the engine
    returned no alternatives (top-k) for some token."""

    tokens: int
    """Generated tokens that carried a logprob."""
    mean_logprob: float
    """Mean logprob of the tokens sampled (length-normalised sequence log-likelihood)."""
    mean_confidence: float | None
    lowest_group_confidence: float | None
    tail_confidence: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 6)
        return {"tokens": self.tokens, "mean_logprob": rounded(self.mean_logprob),
                "mean_confidence": rounded(self.mean_confidence),
                "lowest_group_confidence": rounded(self.lowest_group_confidence),
                "tail_confidence": rounded(self.tail_confidence)}


def token_confidence(token: TokenLogprob) -> float | None:
    """C_i, minus the mean of the top-k logprobs at this position; None without top-k.

    The one definition both offline selection and online stopping (`critic_loop.stopping`)
    use. A token without alternatives has no confidence (DeepConf skips such a position):
    the chosen token's own -logprob would rank backwards, high where the model was unsure.

    >>> top = (("a", -0.1), ("b", -2.5), ("c", -3.0))
    >>> round(token_confidence(TokenLogprob("a", -0.1, top)), 6)
    1.866667
    """
    if not token.top:
        return None
    return -math.fsum(max(lp, LOGPROB_FLOOR) for _, lp in token.top) / len(token.top)


def lowest_group_confidence(confidences: Sequence[float], window: int = GROUP_WINDOW) -> float:
    """The least mean of `window` consecutive confidences (all of them if fewer).

    >>> lowest_group_confidence([3.0, 1.0, 2.0, 4.0], window=2)
    1.5
    """
    if not confidences:
        raise ValueError("no token confidences")
    if len(confidences) <= window:
        return math.fsum(confidences) / len(confidences)
    total = math.fsum(confidences[:window])
    lowest = total
    for i in range(window, len(confidences)):
        total += confidences[i] - confidences[i - window]
        lowest = min(lowest, total)
    return lowest / window


def candidate_signals(logprobs: Sequence[TokenLogprob] | None, *, window: int = GROUP_WINDOW,
                      tail: int = TAIL_TOKENS) -> CandidateSignals | None:
    """The signals of one candidate's tokens; None when it has no logprobs at all."""
    if not logprobs:
        return None
    mean_logprob = math.fsum(max(t.logprob, LOGPROB_FLOOR) for t in logprobs) / len(logprobs)
    confidences = [token_confidence(t) for t in logprobs]
    if any(c is None for c in confidences):
        return CandidateSignals(len(logprobs), mean_logprob, None, None, None)
    known = [c for c in confidences if c is not None]
    return CandidateSignals(len(logprobs), mean_logprob, math.fsum(known) / len(known),
                            lowest_group_confidence(known, window),
                            math.fsum(known[-tail:]) / len(known[-tail:]))
