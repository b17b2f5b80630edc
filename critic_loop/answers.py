"""One answer extractor and its graders: the final answer a response gives, and whether it is right.

Answer-aware selection (`self_critic.merge: "answer"`, the vote and confidence selectors)
and the evaluation harness read answers here, so both agree on what a response said.
The convention is that the final answer comes *last* (the last `\\boxed{}`, the last number,
the last stated choice): chatty models restate the question's numbers before answering.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from decimal import Context, Decimal
from fractions import Fraction

from critic_loop.verdict import boxed_contents

FORMATS = ("auto", "number", "boxed", "choice")
"""'auto': the last box if any, else the last number; 'number': the last number; 'boxed':
the last box; 'choice': a multiple-choice letter A–E."""

_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−])?\$?"  # not the tail of a word ("x2") or of a decimal
    r"(?P<whole>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<decimals>\d+))?"
    r"(?:/(?P<denominator>\d+))?")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([-−]?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LONE_NUMBER = re.compile(r"(?:[A-Za-z]\w*\s*=\s*)?(?P<number>\S+?)\s*%?(?:\s+[A-Za-z][A-Za-z ]*)?\.?")
"""A box or regex group holding one number: optional `x =`, `%`, unit words, final period."""
_CHOICE_STATED = re.compile(
    r"\b(?:answer|option|choice)\b\s*(?:is|would\s+be|should\s+be|:)\s*:?\s*"
    r"(?:option\s+|choice\s+)?[*(\[]*\s*([A-E])\b", re.IGNORECASE)
_CHOICE_PAREN = re.compile(r"\(([A-E])\)")
_CHOICE_LINE = re.compile(r"^[\s*(\[]*([A-E])[\s*)\].:]*$", re.MULTILINE)
_CHOICE_LEAD = re.compile(r"\s*\**\(?([A-E])[).:]\**(?:\s|$)")
_ANSWER_TAIL = re.compile(r"\banswer\b\s*(?:is|:)\s*:?\s*([^\n]+?)\s*(?:[.!](?:\s|$)|\n|$)",
                          re.IGNORECASE)
_CHOICE_REFERENCE = re.compile(r"[\s(\[*]*([A-Ea-e])\b")
_MAX_PATTERN = 500
_MAX_DIGITS = 200
"""Longer numbers stay as text: Python refuses to parse ints past 4300 digits."""


def extract_answer(text: str, fmt: str = "auto", pattern: str | None = None) -> str | None:
    """The normalised final answer of `text`, or None when it gives none.

    Numbers are canonical: thousands commas, `$`, `%` and a trailing `.0` dropped, `−` read
    as minus, and fractions reduced, written as decimals when exact (`1/2` → `0.5`) and as
    `p/q` otherwise. A `pattern` (a regular expression) overrides `fmt`: its last match,
    group 1 if it has groups, else the whole match.

    >>> extract_answer("17 * 3 = 51. So the answer is 51.")
    '51'
    >>> extract_answer("The total is $1,234.50, i.e. 50% more", "number")
    '50'
    >>> extract_answer(r"We get \\boxed{\\frac{2}{4}} apples. Check: 3 + 4 = 7", "auto")
    '0.5'
    >>> extract_answer("Answer: (C) 12", "choice"), extract_answer("no idea") is None
    ('C', True)
    >>> extract_answer("Final: 0042 m", pattern=r"Final: (\\d+)")
    '42'
    """
    if pattern is not None:
        found = list(compile_pattern(pattern).finditer(text))
        if not found:
            return None
        last = found[-1]
        return _clean(last.group(1) if last.re.groups and last.group(1) is not None
                      else last.group(0))
    if fmt == "number":
        return last_number(text)
    if fmt == "boxed":
        boxes = boxed_contents(text)
        return _clean(boxes[-1]) if boxes else None
    if fmt == "choice":
        return choice_letter(text)
    if fmt == "auto":
        boxes = boxed_contents(text)
        return _clean(boxes[-1]) if boxes else last_number(text)
    raise ValueError(f"answer format must be one of {_listed(FORMATS)}, got {fmt!r}")


def last_number(text: str) -> str | None:
    """The last number in `text`, canonical (see `extract_answer`).

    >>> last_number("There are 3 boxes of 12 eggs, so 3 × 12 = 36 eggs.")
    '36'
    >>> last_number("It drops from 5 to −2.50 degrees"), last_number("v2 of H2O") is None
    ('-2.5', True)
    """
    found = list(_NUMBER.finditer(_FRAC.sub(r"\1/\2", text)))
    return _canonical_text(found[-1]) if found else None


def choice_letter(text: str) -> str | None:
    """The multiple-choice letter (A–E, upper case) that `text` settles on.

    The last boxed letter (`\\boxed{B}`) wins; else the last stated answer ("Answer: C",
    "the answer is (b)"); else the last parenthesised capital "(B)"; else the last line
    holding only the letter; else a letter opening the response ("B) 12").

    >>> choice_letter("(A) 3 (B) 4 (C) 5. The answer is b"), choice_letter("**D**")
    ('B', 'D')
    >>> choice_letter("The answer is a number between 1 and 10.") is None
    True
    """
    boxed = [letter for box in boxed_contents(text) if (letter := _boxed_letter(box))]
    if boxed:
        return boxed[-1]
    # A lower-case letter counts only at the end of its clause: "the answer is a number".
    stated = [m.group(1).upper() for m in _CHOICE_STATED.finditer(text)
              if m.group(1).isupper() or not re.match(r"\s*[A-Za-z]", text[m.end(1):])]
    if stated:
        return stated[-1]
    for regex in (_CHOICE_PAREN, _CHOICE_LINE):
        found = regex.findall(text)
        if found:
            return found[-1]
    lead = _CHOICE_LEAD.match(text)
    return lead.group(1) if lead else None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled, or a ValueError that says what is wrong with it."""
    if len(pattern) > _MAX_PATTERN:
        raise ValueError(f"answer_pattern may hold at most {_MAX_PATTERN} characters")
    return _compiled(pattern)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"answer_pattern is not a valid regular expression: {exc}") from None


# -- graders ---------------------------------------------------------------------------
Grader = Callable[..., bool]
"""`(response, answer, *, pattern=None) -> bool`; a `pattern` replaces the extraction."""


def numeric(response: str, answer: str, *, pattern: str | None = None,
            rel_tol: float = 1e-6) -> bool:
    """The final number ('auto': last box, else last number) equals `answer` within rel_tol.

    >>> numeric("So she pays $1,234.", "1234"), numeric(r"\\boxed{0.3333333}", "1/3")
    (True, True)
    >>> numeric("She has 5 apples and eats 2, so 3 remain... no wait, 4.", "3")
    False
    """
    got, want = _number_of(extract_answer(response, "auto", pattern)), _number_of(answer)
    if got is None or want is None:
        return False
    # Exact fractions: no float overflow; abs 1e-9 so that answers near zero can match.
    tolerance = max(Fraction(rel_tol) * max(abs(got), abs(want)), Fraction(1, 10**9))
    return abs(got - want) <= tolerance


def exact(response: str, answer: str, *, pattern: str | None = None) -> bool:
    """The final answer equals `answer` up to case, whitespace and closing punctuation.

    The final answer is the last box, else what follows the last "answer is"/"Answer:",
    else the whole response.

    >>> exact("The capital of France is Paris. The answer is: paris.", "Paris")
    True
    >>> exact(r"\\boxed{ Blue  Whale }", "blue whale"), exact("I think London", "Paris")
    (True, False)
    """
    if pattern is not None:
        got = extract_answer(response, pattern=pattern)
    elif boxes := boxed_contents(response):
        got = _clean(boxes[-1])
    elif tails := _ANSWER_TAIL.findall(response):
        got = tails[-1]
    else:
        got = response
    return got is not None and _fold(got) == _fold(answer)


def choice(response: str, answer: str, *, pattern: str | None = None) -> bool:
    """The chosen letter is `answer`'s ("B", "(b)" and "B) 12" all name B).

    >>> choice("Let me think. (A) is wrong, so the answer is (C).", "C")
    True
    """
    got = extract_answer(response, pattern=pattern) if pattern else choice_letter(response)
    want = _CHOICE_REFERENCE.match(answer)
    return got is not None and want is not None and got.upper() == want.group(1).upper()


def regex(response: str, answer: str, *, pattern: str | None = None) -> bool:
    """`pattern` extracts the answer (last match; group 1 or the whole match), then `exact`.

    >>> regex("Result: 7 apples. Result: 9 pears", "9", pattern=r"Result: (\\d+)")
    True
    """
    if pattern is None:
        raise ValueError("the 'regex' grader needs a pattern")
    return exact(response, answer, pattern=pattern)


GRADERS: dict[str, Grader] = {"numeric": numeric, "exact": exact, "choice": choice,
                              "regex": regex}
CODE_GRADER = "code"
"""Runs the program an answer gives against the problem's tests (critic_loop.code). It
needs a sandbox and runs processes, so it is no text grader: `grade` refuses it, and
callers grade code with `critic_loop.code.grader.CodeGrader` off the event loop."""
GRADER_NAMES = (*GRADERS, CODE_GRADER)


def get_grader(name: str) -> Grader:
    """The grader called `name`; a ValueError lists the allowed names.

    >>> get_grader("fuzzy")
    Traceback (most recent call last):
    ValueError: unknown grader 'fuzzy'; allowed: 'numeric', 'exact', 'choice', 'regex', 'code'
    """
    if name == CODE_GRADER:
        raise ValueError("the 'code' grader runs programs: grade code answers with "
                         "critic_loop.code.grader.CodeGrader")
    try:
        return GRADERS[name]
    except KeyError:
        raise ValueError(f"unknown grader {name!r}; allowed: {_listed(GRADER_NAMES)}") from None


def grade(response: str, answer: str, grader: str | Grader = "numeric", *,
          pattern: str | None = None) -> bool:
    """Whether `response` gets `answer` right by `grader` (a name or a grader function).

    >>> grade("The answer is 1,234.", "1234"), grade("Answer: B", "b", "choice")
    (True, True)
    """
    judge = get_grader(grader) if isinstance(grader, str) else grader
    return judge(response, answer, pattern=pattern)


# -- normalisation ---------------------------------------------------------------------
def _value(found: re.Match[str]) -> Fraction | None:
    """The number a `_NUMBER` match denotes; None past `_MAX_DIGITS` digits."""
    whole, decimals = found.group("whole").replace(",", ""), found.group("decimals") or "0"
    if len(whole) + len(decimals) > _MAX_DIGITS:
        return None
    value = Fraction(f"{whole}.{decimals}")
    denominator = int(found.group("denominator") or 1)
    if denominator:  # "1/0" is not a fraction: keep the numerator
        value /= denominator
    return -value if found.group("sign") else value


def _canonical_text(found: re.Match[str]) -> str:
    value = _value(found)
    return found.group(0).replace(",", "") if value is None else _canonical(value)


def _canonical(value: Fraction) -> str:
    """Integers as integers, exact decimals as decimals, other fractions as `p/q`."""
    if value.denominator == 1:
        return str(value.numerator)
    rest = value.denominator
    for factor in (2, 5):
        while rest % factor == 0:
            rest //= factor
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    exact_decimal = Context(prec=100).divide(Decimal(value.numerator), Decimal(value.denominator))
    return format(exact_decimal.normalize(), "f")


def _clean(answer: str) -> str | None:
    """A box's or regex group's text: LaTeX wrappers off, canonical if it is one number."""
    text = _LATEX_WRAPPER.sub(r"\1", answer)
    text = text.replace("\\%", "%").replace("\\$", "$").replace("\\!", "").replace("\\,", "")
    text = " ".join(_FRAC.sub(r"\1/\2", text).split())
    lone = _LONE_NUMBER.fullmatch(text)
    if lone and (number := _NUMBER.fullmatch(lone.group("number"))):
        return _canonical_text(number)
    return text or None


def _number_of(answer: str | None) -> Fraction | None:
    """A canonical or raw answer as a number, None when it is not one number."""
    clean = None if answer is None else _clean(answer)
    number = _NUMBER.fullmatch(clean) if clean else None
    return None if number is None else _value(number)


def _boxed_letter(box: str) -> str | None:
    letter = _CHOICE_LINE.fullmatch(_LATEX_WRAPPER.sub(r"\1", box).strip())
    return letter.group(1) if letter else None


def _fold(text: str) -> str:
    clean = _clean(text) or ""
    return " ".join(clean.casefold().split()).strip(" .,;:!?\"'*`")


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)
