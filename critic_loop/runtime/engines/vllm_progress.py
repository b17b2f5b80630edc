"""Counts vLLM's engine steps through a stat logger, so the server can tell a busy
engine (steps keep coming) from a hung one (requests waiting, no steps)."""

from __future__ import annotations

from typing import Any

from vllm.v1.metrics.loggers import StatLoggerBase


class StepCounter:
    """How many engine steps have produced output; read by `VLLMEngine.progress`."""

    def __init__(self) -> None:
        self.steps = 0

    def logger_factory(self) -> Any:
        """A per-engine stat logger factory for `AsyncLLM(stat_loggers=[...])`."""
        counter = self

        class _StepLogger(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
                pass

            def record(self, scheduler_stats: Any, iteration_stats: Any,
                       mm_cache_stats: Any = None, engine_idx: int = 0) -> None:
                # vLLM passes iteration stats only for a step whose outputs it received.
                if iteration_stats is not None:
                    counter.steps += 1

            def log_engine_initialized(self) -> None:
                pass

        return _StepLogger
