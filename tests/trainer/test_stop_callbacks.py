"""Training stops on time and on Ctrl-C/SIGTERM after the current step, with a checkpoint."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest
from transformers import TrainerControl

from trainer.callbacks import StopOnSignal, TimeBudget


def _state(step: int = 3) -> SimpleNamespace:
    return SimpleNamespace(global_step=step)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_step_with_a_checkpoint(number: int) -> None:
    before = signal.getsignal(number)
    callback, control = StopOnSignal(), TrainerControl()
    callback.on_train_begin(None, _state(), control)
    try:
        callback.on_step_end(None, _state(), control)
        assert not control.should_training_stop  # nothing received yet
        os.kill(os.getpid(), number)  # handled, not fatal
        callback.on_step_end(None, _state(), control)
        assert control.should_training_stop and control.should_save
        assert callback.received == number
    finally:
        callback.on_train_end(None, _state(), control)
    assert signal.getsignal(number) is before  # the handler was put back


def test_a_second_ctrl_c_interrupts_at_once() -> None:
    callback = StopOnSignal()
    callback.on_train_begin(None, _state(), TrainerControl())
    try:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        callback.on_train_end(None, _state(), TrainerControl())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_time_budget_stops_with_a_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("trainer.callbacks.time.monotonic", lambda: clock[0])
    budget, control = TimeBudget(minutes=1), TrainerControl()
    budget.on_train_begin(None, _state(), control)
    clock[0] += 59
    budget.on_step_end(None, _state(), control)
    assert not control.should_training_stop
    clock[0] += 1
    budget.on_step_end(None, _state(), control)
    assert control.should_training_stop and control.should_save
