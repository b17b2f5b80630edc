"""Hung-engine detection: an engine with work in flight that produces nothing for
`stall_s` seconds is stalled (its process may be alive, but it serves nobody)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from critic_loop.engine import Engine, ReportsProgress


class StallDetector:
    """Samples the engine's progress; stalled while requests are in flight and its output
    counter has not moved for `stall_s`. Idle is never stalled. Off when `stall_s` is 0 or
    the engine does not report progress."""

    def __init__(self, engine: Engine, stall_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine if isinstance(engine, ReportsProgress) else None
        self.stall_s = stall_s
        self._clock = clock
        self._outputs = -1
        self._busy = False
        self._since = clock()
        """When the engine last produced output, or last turned busy."""

    @property
    def enabled(self) -> bool:
        return self._engine is not None and self.stall_s > 0

    def stalled_for(self) -> float:
        """Seconds without progress on in-flight work (0 while idle or progressing)."""
        if self._engine is None or self.stall_s <= 0:
            return 0.0
        progress = self._engine.progress()
        now = self._clock()
        busy = progress.in_flight > 0
        if not busy or not self._busy or progress.outputs != self._outputs:
            self._since = now
        self._busy, self._outputs = busy, progress.outputs
        return now - self._since

    def stalled(self) -> bool:
        return self.enabled and self.stalled_for() >= self.stall_s


@dataclass
class EngineHealth:
    """Whether the engine serves: not dead (the watchdog saw it stop), not stalled, and
    healthy by its own account. `/health` and admission ask the same question here."""

    engine: Engine
    stall: StallDetector | None = None
    dead: bool = False

    def stalled(self) -> bool:
        return self.stall is not None and self.stall.stalled()

    async def serving(self) -> bool:
        """Whether the engine can take work now."""
        if self.dead or self.stalled():
            return False
        return await self.engine.is_healthy()
