"""What the engine can take on: measured throughput, the backlog ahead, and a concurrency
limit that backs off on queueing delay. Pure arithmetic over an injected clock, so admission
(server/load/admission.py) is unit-testable without an engine or real time.

The model: a request's cost is its peak sequences and its work in tokens (completion budgets
plus discounted prompt tokens). The engine drains admitted work at a rate measured from
finished requests (charged tokens per busy second, blended with a conservative prior that
fades; admission plans with some headroom over it while no queue stands); the backlog is
the admitted work not yet drained. A request is refused when it would finish later than
its share of the deadline, or when its sequences do not fit under the limit; the
limit shrinks by target/delay when the smallest queueing delay of an interval exceeds the
target (CoDel's standing-queue test, Envoy's gradient) and grows by a step when below.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFILL_DISCOUNT = 8.0
"""Prompt tokens are computed in parallel: one counts as this fraction of a decoded token."""
PRIOR_TOKENS_PER_S = 50.0
"""Throughput assumed before anything is measured: low, so a cold server admits cautiously."""
PRIOR_WEIGHT_S = 5.0
"""How many busy seconds of evidence the prior is worth at first (it fades like the rest)."""
HALF_LIFE_S = 30.0
"""Measurements lose half their weight every this many busy seconds."""
RETRY_SPREAD = 0.5
"""`Retry-After-Ms` is the estimated wait times a uniform draw from [1, 1 + this]: clients
refused at the same moment (as a flood's are) come back spread out, not as one burst."""
PROBE_HEADROOM = 0.5
"""While no queue stands, admission plans with this much more throughput than measured:
a batching engine drains faster with more work in flight, which it can only show if it
gets that work. The deadline share (half) leaves room for the probe to be wrong."""


@dataclass(frozen=True)
class WorkCost:
    """What one request asks of the engine."""

    sequences: int
    """The most sequences it keeps running or queued at once."""
    tokens: float
    """Its work: completion budgets plus prompt tokens / PREFILL_DISCOUNT."""


def work_tokens(prompt_tokens: float, completion_tokens: float, copies: int = 1) -> float:
    """Work of `copies` generations of one prompt (the prompt is computed once per copy)."""
    return copies * (prompt_tokens / PREFILL_DISCOUNT + completion_tokens)


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str = ""
    """Why it was refused: 'capacity' (sequences over the limit) or 'deadline'."""
    retry_after_s: int = 0
    predicted_s: float = 0.0
    """When the request would finish, seconds from now, by the current estimate."""
    retry_after_ms: int = 0
    """The same wait in milliseconds, spread by `RETRY_SPREAD` (OpenAI's SDKs read the
    `Retry-After-Ms` header before `Retry-After`)."""


class Capacity:
    """The estimator and limiter; `decide`, then `start` and (once) `finish` each request."""

    def __init__(self, *, max_sequences: int, deadline_s: float,
                 clock: Callable[[], float] = time.monotonic, deadline_share: float = 0.5,
                 queue_target_s: float = 2.0, interval_s: float = 5.0,
                 prior_tokens_per_s: float = PRIOR_TOKENS_PER_S,
                 probe_headroom: float = PROBE_HEADROOM,
                 draw: Callable[[], float] = random.random) -> None:
        self.max_sequences = max_sequences
        self.budget_s = deadline_share * deadline_s
        self.deadline_s = deadline_s
        self.queue_target_s = queue_target_s
        self.interval_s = interval_s
        self.prior_tokens_per_s = prior_tokens_per_s
        self.probe_headroom = probe_headroom
        self.clock = clock
        self.draw = draw
        """Uniform in [0, 1): the spread of `Retry-After-Ms` (injected for tests)."""
        self.limit = max_sequences
        self.min_limit = min(8, max_sequences)
        self.step = max(1, max_sequences // 32)
        self.in_flight_sequences = 0
        self.in_flight_tokens = 0.0
        self.backlog = 0.0
        self.queue_delay_s: float | None = None
        """The smallest queueing delay of the last full interval (None: no sample)."""
        self._drained = 0.0  # charged tokens of finished requests (decayed)
        self._busy = 0.0  # seconds with work in flight up to the last finish (decayed alike)
        self._busy_pending = 0.0  # busy seconds since: counted once their work finishes
        self._prior_weight = PRIOR_WEIGHT_S
        self._now = clock()
        self._interval_start = self._now
        self._interval_min: float | None = None

    # -- estimates -------------------------------------------------------------------------
    @property
    def tokens_per_s(self) -> float:
        """Measured drain rate, blended with the prior by their weights in busy seconds."""
        return ((self._drained + self.prior_tokens_per_s * self._prior_weight)
                / (self._busy + self._prior_weight))

    @property
    def planning_tokens_per_s(self) -> float:
        """The throughput admission plans with: the measured one, plus the probe's headroom
        unless the last interval showed a standing queue."""
        standing = self.queue_delay_s is not None and self.queue_delay_s > self.queue_target_s
        return self.tokens_per_s * (1.0 if standing else 1.0 + self.probe_headroom)

    def predicted_s(self, cost: WorkCost) -> float:
        """When `cost` would finish if admitted now: after the backlog ahead and itself."""
        self._advance()
        return (self.backlog + cost.tokens) / self.planning_tokens_per_s

    # -- the request's life ----------------------------------------------------------------
    def decide(self, cost: WorkCost) -> Decision:
        """Admit or refuse; an idle engine admits anything (that is how it learns)."""
        predicted = self.predicted_s(cost)
        if self.in_flight_sequences == 0:
            return Decision(True, predicted_s=predicted)
        drain = self.tokens_per_s  # how fast the backlog is modelled to shrink
        if self.in_flight_sequences + cost.sequences > self.limit:
            excess = self.in_flight_sequences + cost.sequences - self.limit
            share = min(1.0, excess / self.in_flight_sequences)
            return self._refusal("capacity", share * self.backlog / drain, predicted)
        if predicted > self.budget_s:
            # Retry once enough backlog has drained; a request too big to share the engine
            # within its budget waits for the engine to empty.
            room = self.budget_s * self.planning_tokens_per_s
            excess = (self.backlog + cost.tokens - room if cost.tokens <= room
                      else self.backlog)
            return self._refusal("deadline", excess / drain, predicted)
        return Decision(True, predicted_s=predicted)

    def start(self, cost: WorkCost) -> None:
        self._advance()
        self.in_flight_sequences += cost.sequences
        self.in_flight_tokens += cost.tokens
        self.backlog += cost.tokens

    def finish(self, cost: WorkCost) -> None:
        """A request ended (done, failed or cancelled): its charge counts as drained."""
        self._advance()
        self.in_flight_sequences = max(0, self.in_flight_sequences - cost.sequences)
        self.in_flight_tokens = max(0.0, self.in_flight_tokens - cost.tokens)
        self.backlog = min(self.backlog, self.in_flight_tokens)
        # Busy time is committed only with finished work, so a long request in flight does
        # not read as a slow engine before it finishes.
        decay = 0.5 ** (self._busy_pending / HALF_LIFE_S)
        self._drained = self._drained * decay + cost.tokens
        self._busy = self._busy * decay + self._busy_pending
        self._prior_weight *= decay
        self._busy_pending = 0.0

    def record_queue_delay(self, seconds: float) -> None:
        """A sample of how long engine work waited before it was scheduled."""
        self._advance()
        if self._interval_min is None or seconds < self._interval_min:
            self._interval_min = seconds

    # -- time ------------------------------------------------------------------------------
    def _advance(self) -> None:
        now = self.clock()
        dt, self._now = max(0.0, now - self._now), now
        if self.in_flight_sequences > 0 and dt > 0:
            self.backlog = max(0.0, self.backlog - self.tokens_per_s * dt)
            self._busy_pending += dt
        if now - self._interval_start >= self.interval_s:
            self._end_interval(now)

    def _end_interval(self, now: float) -> None:
        """CoDel's test: if even the smallest delay of an interval is over the target, a
        queue is standing; shrink the limit by target/delay (at most by half). Below the
        target, grow it by one step, up to the hard ceiling."""
        delay, self._interval_min, self._interval_start = self._interval_min, None, now
        self.queue_delay_s = delay
        if delay is None:
            return
        if delay > self.queue_target_s:
            gradient = max(0.5, self.queue_target_s / delay)
            self.limit = max(self.min_limit, math.floor(self.limit * gradient))
        else:
            self.limit = min(self.max_sequences, self.limit + self.step)

    def _refusal(self, reason: str, wait_s: float, predicted_s: float) -> Decision:
        """A refusal whose client should come back after `wait_s` (at least 1 s, at most
        the deadline): `Retry-After` in whole seconds, `Retry-After-Ms` spread out."""
        wait_s = max(1.0, min(wait_s, self.deadline_s))
        spread_ms = round(1000 * wait_s * (1 + RETRY_SPREAD * self.draw()))
        return Decision(False, reason, math.ceil(wait_s), predicted_s, spread_ms)
