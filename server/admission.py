"""Admission control: a bound on the sequences in flight (running or queued).

A plain request costs `n` sequences, a self-critic request its candidates plus its first
round of judgments (they overlap when pipelined), a critique its first round. Past the
bound a request is refused at once with 429 and `Retry-After` instead of queueing
without limit; with the engine down it is 503.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from server.errors import APIError


class AdmissionController:
    """Counts admitted sequences; `admit` raises 429 when `cost` does not fit."""

    def __init__(self, max_sequences: int, retry_after_s: int = 1) -> None:
        self.max_sequences = max_sequences
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    @contextmanager
    def admit(self, cost: int) -> Iterator[None]:
        """Hold `cost` sequences for the duration of the block."""
        release = self.acquire(cost)
        try:
            yield
        finally:
            release()

    def acquire(self, cost: int) -> Callable[[], None]:
        """Take `cost` sequences; return the (idempotent) function that gives them back."""
        if cost > self.max_sequences:
            raise APIError(400, f"This request needs {cost} sequences (n, or self-critic "
                           "candidates plus their first round of judgments) but the server "
                           f"admits at most {self.max_sequences} at once; lower n, candidates "
                           "or comparisons.",
                           param="n", code="too_many_sequences")
        if self.in_flight + cost > self.max_sequences:
            raise APIError(429, "The server is at capacity "
                           f"({self.in_flight}/{self.max_sequences} sequences in flight); "
                           "retry shortly.", code="overloaded",
                           headers={"Retry-After": str(self.retry_after_s)})
        self.in_flight += cost
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= cost

        return release
