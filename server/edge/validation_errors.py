"""Pydantic validation errors in the client's terms: field paths as the client wrote them
(`self_critic.judge`, not `self_critic.bool` or `self_critic.SelfCriticOptions.judge`) and
messages free of our class names. Unions are the culprit: pydantic tries each member,
names it in the error's location, and reports every miss."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_INSTANCE_OF = re.compile(r"dictionary or instance of [A-Za-z_][A-Za-z0-9_]*")
_LAST_IS_THEIRS = frozenset({"missing", "extra_forbidden"})
"""Error types whose last location element is a field name, present in the body or not."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the request: where (as a dotted path) and what."""

    param: str | None
    message: str


@dataclass(frozen=True)
class _Located:
    path: tuple[str, ...]
    wrong_type: bool
    """The value is not of the type tried (one union member's miss; others may fit)."""
    message: str


def _client_path(error: Mapping[str, Any], body: Any) -> tuple[str, ...]:
    """The error's location, walked through the body the client sent: keys and indices
    found there are the client's; the rest are pydantic's names for union members."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "json_invalid" or not loc:  # its loc is a character offset
        return ()
    if loc[0] != "body":
        return tuple(str(p) for p in loc)
    path: list[str] = []
    node = body
    for i, part in enumerate(loc[1:], start=1):
        if _holds(node, part):
            node = node[part]
        elif not (i == len(loc) - 1 and error.get("type") in _LAST_IS_THEIRS):
            continue
        path.append(str(part))
    return tuple(path)


def _holds(node: Any, part: object) -> bool:
    if isinstance(node, Mapping):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def client_problems(errors: Iterable[Mapping[str, Any]], body: Any = None) -> list[Problem]:
    """The errors as the client should read them, one per path. Where one union member got
    further than "wrong type" (an object with a bad `judge`), only its errors are kept."""
    located = [_Located(_client_path(e, body), _is_wrong_type(e), _message(e)) for e in errors]
    paths = {item.path for item in located}
    by_path: dict[tuple[str, ...], list[_Located]] = {}
    for item in located:
        deeper = any(p[: len(item.path)] == item.path and p != item.path for p in paths)
        if item.wrong_type and deeper:
            continue
        by_path.setdefault(item.path, []).append(item)
    problems = []
    for path, items in by_path.items():
        if not all(i.wrong_type for i in items):
            items = [i for i in items if not i.wrong_type]
        messages = list(dict.fromkeys(i.message for i in items))
        problems.append(Problem(".".join(path) or None, "; or ".join(messages)))
    return problems


def _is_wrong_type(error: Mapping[str, Any]) -> bool:
    kind = str(error.get("type", ""))
    return kind.endswith(("_type", "_parsing")) or kind == "union_tag_invalid"


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON: {error.get('ctx', {}).get('error', error.get('msg'))}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return _INSTANCE_OF.sub("object", message)
