"""Sampling options built from a request and checked by the engine before any work (token
ids in its vocabulary, grammars it can compile), so a bad value is a 400 naming it.
Shared by the chat and completions endpoints."""

from __future__ import annotations

from collections.abc import Callable

from critic_loop.engine import Engine, InvalidRequestError, SamplingChecker, SamplingOptions
from server.edge.errors import bad_request


def checked_sampling(engine: Engine, build: Callable[[], SamplingOptions]) -> SamplingOptions:
    """`build()`'s options if the engine accepts them, else a 400."""
    try:
        sampling = build()
        if isinstance(engine, SamplingChecker):
            engine.check_sampling(sampling)
    except InvalidRequestError as exc:
        raise bad_request(str(exc), param=exc.param) from exc
    except ValueError as exc:  # e.g. min_tokens above the max_tokens that fits
        raise bad_request(str(exc)) from exc
    return sampling
