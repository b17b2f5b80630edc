"""The worked examples a code prompt shows (`>>> f(1)` then `2`, or `f(1) == 2`): pure parsing.

Execution-based grouping runs candidates on these inputs only, what the request itself
shows, never a benchmark's hidden tests. An example states its output only where the
prompt gives a Python literal (`19 - 5 - 6 = 8` states 8; `true` or `'No' (because ...)`
state nothing), so that prose never marks a right program as contradicting it; a stated
output is compared by value (`'a'` equals `"a"`, floats to 1e-6). Calls on names the
prompt does not define (`is_happy(a)`, `tri(n)`) are prose too, and are dropped.
"""

from __future__ import annotations

import ast
import builtins
import math
import re
from dataclasses import dataclass

_PROMPT = re.compile(r"^\s*>>>\s?(.*)$")
_CONTINUATION = re.compile(r"^\s*\.\.\.\s?(.*)$")
_ARROW = re.compile(r"\s*(?:==>|=>|➞|->|==|\s=\s|\bshould return\b|\breturns?\b)\s*", re.IGNORECASE)
_NOT_SHOWN = object()


@dataclass(frozen=True)
class Example:
    """One input expression and the output the prompt states for it (None: not stated)."""

    call: str
    expected: str | None = None


def parse_examples(prompt: str, entry_point: str | None = None) -> list[Example]:
    """The prompt's doctest examples, else its `entry_point(...) == value` style lines.

    >>> parse_examples('def inc(x):\\n    \"\"\"\\n    >>> inc(1)\\n    2\\n    >>> inc(-1)\\n'
    ...                '    0\\n    \"\"\"\\n')
    [Example(call='inc(1)', expected='2'), Example(call='inc(-1)', expected='0')]
    >>> parse_examples('def f(s):\\n    \"\"\"f("ab") ➞ "ba"\\n    f("") == ""\\n    \"\"\"', 'f')
    [Example(call='f("ab")', expected='"ba"'), Example(call='f("")', expected='""')]
    >>> parse_examples("def g(n):\\n  '''g(3) -> 3 - 1 = 2\\n  g(1) -> true\\n  g(n) -> n'''", "g")
    [Example(call='g(3)', expected='2'), Example(call='g(1)', expected=None)]
    """
    known = _defined_names(prompt) | {entry_point or ""} | set(dir(builtins))
    examples = _doctests(prompt) or (_stated_calls(prompt, entry_point) if entry_point else [])
    return [e for e in examples if _free_names(e.call) <= known]


def same_output(expected: str, got: str) -> bool:
    """Whether a candidate's `repr` output `got` matches the stated `expected` by value.

    >>> same_output("'abc'", '"abc"'), same_output("0.5", "0.5000000001"), same_output("[1, 2]", "[1,2]")
    (True, True, True)
    >>> same_output("True", "False"), same_output("3", "!ValueError")
    (False, False)
    """
    want, have = _value(expected), _value(got)
    if want is _NOT_SHOWN or have is _NOT_SHOWN:
        return " ".join(expected.split()) == " ".join(got.split())
    return _close(want, have)


def _doctests(prompt: str) -> list[Example]:
    examples: list[Example] = []
    lines = prompt.splitlines()
    i = 0
    while i < len(lines):
        start = _PROMPT.match(lines[i])
        i += 1
        if not start:
            continue
        source = [start.group(1)]
        while i < len(lines) and (more := _CONTINUATION.match(lines[i])):
            source.append(more.group(1))
            i += 1
        shown: list[str] = []
        while i < len(lines) and lines[i].strip() and not _PROMPT.match(lines[i]) \
                and '"""' not in lines[i] and "'''" not in lines[i]:
            shown.append(lines[i].strip())
            i += 1
        call = "\n".join(source).strip()
        if call and _is_expression(call):
            examples.append(Example(call, _stated(" ".join(shown))))
    return examples


def _stated_calls(prompt: str, entry_point: str) -> list[Example]:
    examples = []
    for line in prompt.splitlines():
        at = line.find(f"{entry_point}(")
        if at < 0 or line[:at].rstrip().endswith("def"):
            continue
        text = line[at:].strip()
        for arrow in _ARROW.finditer(text):
            call, expected = text[:arrow.start()].strip(), text[arrow.end():].strip().rstrip(".,;")
            if _is_expression(call) and expected:
                examples.append(Example(call, _stated(expected)))
                break
    return examples


def _stated(shown: str) -> str | None:
    """The literal an example's shown output states: all of it, else what follows its
    last `=` (a worked sum, `1 + 9 = 10`); None when neither is a Python literal."""
    for text in (shown, shown.rpartition("=")[2] if "=" in shown else ""):
        text = text.strip()
        if text and _value(text) is not _NOT_SHOWN:
            return text
    return None


def _defined_names(prompt: str) -> set[str]:
    """Top-level functions, classes, imports and assignments of a prompt that parses."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _free_names(call: str) -> set[str]:
    """Names `call` reads that it does not bind itself (comprehension and lambda vars)."""
    tree = ast.parse(call, mode="eval")
    bound = {n.id for node in ast.walk(tree) if isinstance(node, ast.comprehension)
             for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    bound |= {a.arg for node in ast.walk(tree) if isinstance(node, ast.Lambda)
              for a in node.args.args}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def _is_expression(source: str) -> bool:
    try:
        ast.parse(source, mode="eval")
    except SyntaxError:
        return False
    return True


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_SHOWN


def _close(want: object, have: object) -> bool:
    if isinstance(want, float) or isinstance(have, float):
        return (isinstance(want, (int, float)) and isinstance(have, (int, float))
                and not isinstance(want, bool) and not isinstance(have, bool)
                and math.isclose(want, have, rel_tol=1e-6, abs_tol=1e-9))
    if isinstance(want, (list, tuple)) and isinstance(have, (list, tuple)):
        return (type(want) is type(have) and len(want) == len(have)
                and all(_close(w, h) for w, h in zip(want, have, strict=True)))
    return bool(want == have) and type(want) is type(have)
