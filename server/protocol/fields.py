"""Field types for values the engine would refuse or crash on, checked at the HTTP
boundary so they are a 400 naming the field, never a 500 from deep inside vLLM."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
"""vLLM's own server takes seeds in the signed 64-bit range; past 2**64 - 1 its engine
cannot even transport the number (it crashed with a 500)."""


def _valid_unicode(text: str) -> str:
    """JSON can carry a lone UTF-16 surrogate (`"\\ud800"`); tokenizers and vLLM's
    transport both refuse it, so it is bad input, not a crash."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"contains a lone surrogate ({text[exc.start]!r} at character "
                         f"{exc.start}), which is not valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]
"""Text that reaches the tokenizer or the engine."""

StopText = Annotated[str, Field(min_length=1), AfterValidator(_valid_unicode)]
"""A stop sequence: vLLM refuses an empty one ("stop cannot contain an empty string")."""

Seed = Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX)]
