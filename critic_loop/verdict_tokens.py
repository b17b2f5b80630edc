"""The token ids a fast verdict may be spelled with, found once per tokenizer.

A tokenizer can spell "1" as several single tokens ("1", " 1", "▁1", a full-width digit):
the fast judge allows every one and sums their probabilities per choice, so the verdict
does not depend on which spelling the model happens to prefer. A tokenizer with no
single-token spelling of a choice cannot judge fast; that is said once, at start-up.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any


class NoVerdictTokenError(ValueError):
    """The tokenizer has no single token for a fast-verdict choice."""


def spelled(token_text: str) -> str:
    """What a token says once spacing and width are normalised ("１" -> "1", " 2" -> "2").

    >>> spelled(" 1"), spelled("１"), spelled("▁2"), spelled("12")
    ('1', '1', '2', '12')
    """
    return unicodedata.normalize("NFKC", token_text).replace("▁", " ").strip()


def verdict_token_ids(tokenizer: Any, choices: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Every single-token spelling of each choice, by choice, in id order.

    Raises `NoVerdictTokenError` naming the choice when one has no single-token spelling.
    """
    wanted = {spelled(c): c for c in choices}
    found: dict[str, list[int]] = {c: [] for c in choices}
    special = set(getattr(tokenizer, "all_special_ids", ()))
    for token_id in range(len(tokenizer)):
        if token_id in special:
            continue
        choice = wanted.get(spelled(tokenizer.decode([token_id])))
        if choice is not None:
            found[choice].append(token_id)
    missing = [c for c, ids in found.items() if not ids]
    if missing:
        raise NoVerdictTokenError(
            f"this model's tokenizer has no single token for {missing[0]!r}, so it cannot "
            "give fast (one-token) verdicts; serve it with --judge reason")
    return {c: tuple(ids) for c, ids in found.items()}
