"""Reading a judge's answer: which response it prefers, or an invalid vote.

Real model output is messy: several boxes, `\\boxed{Response 2}`, `**1**`, text after the
box, no box at all. The parser never raises; what it cannot read is `None`, an invalid
vote that callers count and report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_BOXED = re.compile(r"\\boxed\s*\{")
_LONE_DIGIT = re.compile(r"(?<![\d.])([12])(?![\d.])")
_STATED = re.compile(
    r"(?:response|answer|option)\s*(?:#|no\.?|number)?\s*\**\s*([12])\b\**\)?\s*"
    r"(?:is|was|seems|appears)\s+(?:the\s+|a\s+)?(?:better|best|superior|more\s+\w+|correct)",
    re.IGNORECASE,
)
_STATED_ORDINAL = re.compile(
    r"\b(first|second)\s+(?:response|answer|one)\s+(?:is|was|seems|appears)\s+(?:the\s+|a\s+)?"
    r"(?:better|best|superior|more\b|correct)", re.IGNORECASE)
_ANSWER_IS = re.compile(
    r"\b(?:answer|choice|response)\b[^.\n]{0,80}?\bis:?[ \t]*\**(?:response[ \t]*)?([12])\**"
    r"[ \t]*[.!]?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_LEADING = re.compile(r"^\s*\**([12])\**\.?[ \t]*(?:\n|$)")
_CONDITIONAL = re.compile(r"(?:\\boxed\s*\{\s*[12]\s*\}\s*)?\bif\s+response\s*[12]\s+is\s+better",
                          re.IGNORECASE)
"""The prompt's own instruction ("Answer \\boxed{1} if Response 1 is better, ...") echoed back."""
_REVISION = re.compile(r"\b(?:no,?\s+wait|wait|actually|on\s+(?:second\s+thought|reflection)|"
                       r"correction|i\s+mean)\b", re.IGNORECASE)
_BARE = re.compile(r"^\W*(?:response\s*)?([12])\W*$", re.IGNORECASE)
_FORMAT = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)


def boxed_contents(text: str) -> list[str]:
    """Every `\\boxed{...}` body in order, with nested braces balanced.

    >>> boxed_contents(r"a \\boxed{1} b \\boxed{\\text{2}}")
    ['1', '\\\\text{2}']
    """
    found: list[str] = []
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start:i])
                    break
    return found


def verdict_from_box(content: str) -> int | None:
    """1 or 2 when a box holds exactly one of them (`1`, `Response 2`, `\\text{1}`).

    >>> verdict_from_box("Response 2"), verdict_from_box("1 or 2"), verdict_from_box("3")
    (2, None, None)
    """
    digits = set(_LONE_DIGIT.findall(content))
    if len(digits) != 1:
        return None
    # Any LaTeX command (\text, \textbf, \mathbf, ...) is formatting around the digit.
    stripped = re.sub(r"\\[a-zA-Z]+\s*|[{}*\s.$]|response|answer", "", content,
                      flags=re.IGNORECASE)
    return int(digits.pop()) if stripped in {"1", "2"} else None


def bare_verdict(text: str) -> int | None:
    """1 or 2 when the whole text is just that choice: "2", "Response 1", "[[2]]", "(1).".

    >>> bare_verdict(" Response 2. "), bare_verdict("[[1]]"), bare_verdict("2 is better")
    (2, 1, None)
    """
    bare = _BARE.match(text.strip())
    return int(bare.group(1)) if bare else None


def parse_verdict(text: str) -> int | None:
    """The preferred response (1 or 2) in a judge's output, or None for an invalid vote.

    The last box that names one response decides. Without a box, a bare digit or a
    sentence such as "Response 2 is better" (the last one) is accepted.

    >>> parse_verdict(r"<think>2 is wrong</think> \\boxed{1}")
    1
    >>> parse_verdict(r"\\boxed{2} ... on reflection \\boxed{Response 1}.")
    1
    >>> parse_verdict("Response 2 is better.")
    2
    >>> parse_verdict("Both are fine.") is None
    True
    """
    text = _CONDITIONAL.sub(" ", text)
    for content in reversed(boxed_contents(text)):
        verdict = verdict_from_box(content)
        if verdict is not None:
            return verdict
    if boxed_contents(text):
        return None
    bare = bare_verdict(text)
    if bare is not None:
        return bare
    stated = sorted(
        [(m.start(), int(m.group(1))) for m in _STATED.finditer(text)]
        + [(m.start(), 1 if m.group(1).lower() == "first" else 2)
           for m in _STATED_ORDINAL.finditer(text)]
        + [(m.start(1), int(m.group(1))) for m in _ANSWER_IS.finditer(text)])
    leading = _LEADING.match(text)
    if leading:  # the single digit asked for, then more text that must not contradict it
        stated.insert(0, (leading.start(1), int(leading.group(1))))
    if not stated:
        return None
    last_at, last = stated[-1]
    if any(v != last for _, v in stated) and not _REVISION.search(text, 0, last_at):
        return None  # it names both responses and never says it changed its mind
    return last


def boxed_verdict(text: str) -> int | None:
    """The verdict in the last `\\boxed{}` (1 or 2), or None: the strict reading training uses.

    The paper's accuracy reward is "the boxed content equals the label", so only the last
    box counts: no box, or a last box that names no single response, is no verdict, even
    when an earlier box or a sentence names one. The prompt's own instruction echoed back
    ("\\boxed{1} if Response 1 is better") is not a box of the judge's. Serving keeps the
    lenient `parse_verdict`.

    >>> boxed_verdict(r"<think>2 is wrong</think> \\boxed{1}")
    1
    >>> boxed_verdict(r"\\boxed{2} ... on reflection \\boxed{Response 1}.")
    1
    >>> boxed_verdict("Response 2 is better.") is None, boxed_verdict("2") is None
    (True, True)
    >>> boxed_verdict(r"\\boxed{1} hmm, \\boxed{1 or 2}") is None
    True
    """
    boxes = boxed_contents(_CONDITIONAL.sub(" ", text))
    return verdict_from_box(boxes[-1]) if boxes else None


def follows_reason_format(text: str) -> bool:
    """Whether output is `<think>...</think>...\\boxed{...}...` (the paper's format reward).

    >>> follows_reason_format(r"<think>hm</think> so \\boxed{2}")
    True
    >>> follows_reason_format(r"\\boxed{2}")
    False
    """
    return _FORMAT.fullmatch(text.strip()) is not None


def probabilities_from_logprobs(
        logprobs: Mapping[str, float],
        choices: tuple[str, str] = ("1", "2")) -> tuple[float, float] | None:
    """Normalised probabilities of the two choices from their logprobs (None if unusable).

    >>> [round(p, 6) for p in probabilities_from_logprobs({"1": math.log(0.3),
    ...                                                    "2": math.log(0.1)})]
    [0.75, 0.25]
    """
    values = [logprobs.get(c) for c in choices]
    if any(v is None or math.isnan(v) for v in values):
        return None
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return None
    top = max(finite)
    weights = [0.0 if v == -math.inf else math.exp(v - top) for v in values]
    total = sum(weights)
    return (weights[0] / total, weights[1] / total)
