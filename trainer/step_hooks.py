"""A callback that acts at step 0, every `every` optimiser steps, and at the end of training.

The measurements taken while a critic trains (the policy curve, the best-model keeper; the
held-out judge curve has the same rhythm) share it, so they all see the same steps.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class AtSteps(TrainerCallback):
    """Calls `at_step(state, model)` before the first step, every `every` steps and at the
    end, on the main process only, until it returns True for that step (it may wait for
    figures another callback writes at the end)."""

    every = 1

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self._maybe(state, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            self._maybe(state, model)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None,
                     **kwargs: Any) -> None:
        self._maybe(state, model)

    def at_step(self, state: Any, model: Any) -> bool:
        """Act on this step; True when done with it."""
        raise NotImplementedError

    def _maybe(self, state: Any, model: Any) -> None:
        if model is None or not state.is_world_process_zero:
            return
        if getattr(self, "_done_step", None) == state.global_step:
            return
        if self.at_step(state, model):
            self._done_step = state.global_step
