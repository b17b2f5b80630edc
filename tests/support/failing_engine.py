"""A scripted engine whose every generation raises a given exception, for error paths."""

from __future__ import annotations

from critic_loop.engine import GenerationRequest
from critic_loop.runtime.engines.scripted import ScriptedEngine


def failing_engine(exc: Exception) -> ScriptedEngine:
    def responder(request: GenerationRequest, index: int) -> str:
        raise exc
    return ScriptedEngine(responder, model_name="tiny")
