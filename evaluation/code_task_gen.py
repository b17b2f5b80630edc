"""Seeded generator of small programming tasks with tests, for training (never HumanEval).

Each family is a small list, string or number utility whose parameters (a divisor, a
width, a repeat count) come from the seed, stated in prose with example asserts in the
MBPP row shape (`text`, `test_list`, `entry_point`), so `evaluation.dataset` reads it as
a `code` question graded in the sandbox. The families are chosen to be disjoint from
HumanEval's (a test checks the function names against the installed HumanEval): code
questions to train on, while HumanEval stays a test set. As in `evaluation.tasks`, the
split of a problem (family and parameters) is fixed by its hash, whatever the seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation import code_tasks
from evaluation.dataset import Question
from evaluation.tasks import HELDOUT_SHARE, SPLITS

SHOWN_TESTS = 3
"""The first asserts appear in the question (`code_tasks.PROSE_TEMPLATE` shows three);
the rest are hidden tests."""
TESTS = 6
WORDS = ("sun", "river", "apple", "stone", "cloud", "garden", "blue", "tiger", "lamp",
         "orbit", "pixel", "maple", "quiet", "zebra", "honey", "ocean", "mint", "violet")


Made = tuple[str, str, Callable[..., Any], Callable[[random.Random], tuple[Any, ...]]]
"""(function name, task text, reference function, drawer of one call's arguments)"""


@dataclass(frozen=True)
class Family:
    """A function family: `make(rng)` draws parameters and returns (name, text, function,
    input drawer); the reference function computes each assert's expected value."""

    name: str
    make: Callable[[random.Random], Made]


def _ints(rng: random.Random, low: int = -9, high: int = 20, most: int = 7) -> list[int]:
    return [rng.randint(low, high) for _ in range(rng.randint(0, most))]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def _sum_divisible(rng: random.Random) -> Made:
    k = rng.randint(2, 7)
    return (f"sum_divisible_by_{k}",
            f"Write a function sum_divisible_by_{k}(numbers) that returns the sum of the "
            f"integers in the list that are divisible by {k} (0 for none).",
            lambda xs: sum(x for x in xs if x % k == 0), lambda r: (_ints(r),))


def _every_kth(rng: random.Random) -> Made:
    k = rng.randint(2, 4)
    return (f"take_every_{k}",
            f"Write a function take_every_{k}(items) that returns a new list with every "
            f"{k}th element of the list, starting with the first element.",
            lambda xs: xs[::k], lambda r: (_ints(r, most=9),))


def _repeat_chars(rng: random.Random) -> Made:
    k = rng.randint(2, 4)
    return (f"repeat_chars_{k}",
            f"Write a function repeat_chars_{k}(text) that returns the string with every "
            f"character repeated {k} times.",
            lambda s: "".join(c * k for c in s), lambda r: (_word(r),))


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)[: rng.randint(1, 5)]


def _clip(rng: random.Random) -> Made:
    low = rng.randint(0, 4)
    high = low + rng.randint(3, 9)
    return (f"clip_between_{low}_and_{high}",
            f"Write a function clip_between_{low}_and_{high}(numbers) that returns the list "
            f"with every number below {low} replaced by {low} and every number above {high} "
            f"replaced by {high}.",
            lambda xs: [min(max(x, low), high) for x in xs], lambda r: (_ints(r),))


def _count_long_words(rng: random.Random) -> Made:
    k = rng.randint(3, 5)
    return (f"count_words_longer_than_{k}",
            f"Write a function count_words_longer_than_{k}(sentence) that returns how many "
            f"space-separated words of the sentence have more than {k} letters.",
            lambda s: sum(len(w) > k for w in s.split()), lambda r: (_sentence(r),))


def _swap_adjacent(rng: random.Random) -> Made:
    return ("swap_adjacent_pairs",
            "Write a function swap_adjacent_pairs(items) that swaps the first and second "
            "elements, the third and fourth, and so on, and returns the new list (an odd "
            "last element stays in place).",
            lambda xs: [v for i in range(0, len(xs) - 1, 2) for v in (xs[i + 1], xs[i])]
            + (xs[-1:] if len(xs) % 2 else []),
            lambda r: (_ints(r, most=8),))


def _alternating_sum(rng: random.Random) -> Made:
    return ("alternating_sum",
            "Write a function alternating_sum(numbers) that returns the first number minus "
            "the second plus the third minus the fourth, and so on (0 for an empty list).",
            lambda xs: sum(x if i % 2 == 0 else -x for i, x in enumerate(xs)),
            lambda r: (_ints(r),))


def _product_of_digits(rng: random.Random) -> Made:
    return ("product_of_digits",
            "Write a function product_of_digits(n) that returns the product of the decimal "
            "digits of the non-negative integer n.",
            lambda n: _product(int(c) for c in str(n)), lambda r: (r.randint(0, 99999),))


def _product(values: Any) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _indices_of(rng: random.Random) -> Made:
    v = rng.randint(0, 5)
    return (f"indices_of_{v}",
            f"Write a function indices_of_{v}(numbers) that returns the list of positions "
            f"(0-based) at which the number {v} occurs in the list.",
            lambda xs: [i for i, x in enumerate(xs) if x == v],
            lambda r: ([r.randint(0, 6) for _ in range(r.randint(0, 8))],))


def _pad_left(rng: random.Random) -> Made:
    width = rng.randint(4, 8)
    fill = rng.choice("*#.0")
    return (f"pad_left_to_{width}",
            f"Write a function pad_left_to_{width}(text) that adds the character {fill!r} "
            f"to the left of the string until it is {width} characters long (longer strings "
            "are returned unchanged).",
            lambda s: s.rjust(width, fill), lambda r: (r.choice(WORDS)[: r.randint(0, 6)],))


def _count_capitals(rng: random.Random) -> Made:
    return ("count_capital_letters",
            "Write a function count_capital_letters(text) that returns how many characters "
            "of the string are upper-case letters A to Z.",
            lambda s: sum("A" <= c <= "Z" for c in s),
            lambda r: ("".join(c.upper() if r.random() < 0.3 else c for c in _sentence(r)),))


def _last_reversed(rng: random.Random) -> Made:
    k = rng.randint(2, 4)
    return (f"last_{k}_reversed",
            f"Write a function last_{k}_reversed(items) that returns the last {k} elements "
            f"of the list in reverse order (all of them, reversed, if the list is shorter).",
            lambda xs: xs[::-1][:k], lambda r: (_ints(r, most=8),))


def _join_words(rng: random.Random) -> Made:
    sep, name = rng.choice(((" - ", "dashes"), (", ", "commas"), (" / ", "slashes")))
    return (f"join_with_{name}",
            f"Write a function join_with_{name}(words) that joins the list of strings into "
            f"one string with {sep!r} between consecutive words.",
            lambda ws: sep.join(ws),
            lambda r: ([r.choice(WORDS) for _ in range(r.randint(0, 4))],))


FAMILIES = tuple(Family(f.__name__.strip("_"), f) for f in (
    _sum_divisible, _every_kth, _repeat_chars, _clip, _count_long_words, _swap_adjacent,
    _alternating_sum, _product_of_digits, _indices_of, _pad_left, _count_capitals,
    _last_reversed, _join_words))


def split_of(function_name: str) -> str:
    """The split a problem (its family and parameters, which its function name spells) may
    appear in, whatever the seed."""
    digest = hashlib.sha256(f"code|{function_name}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") % HELDOUT_SHARE == 0 else "train"


def generate_code_rows(seed: int, split: str, count: int) -> list[dict[str, Any]]:
    """`count` distinct code problems of `split` as MBPP-style rows, deterministic in
    (seed, split), cycling through the families; fewer when the split runs out of
    distinct problems."""
    return [row for row, _ in generate_code_problems(seed, split, count)]


def generate_code_problems(seed: int, split: str, count: int
                           ) -> list[tuple[dict[str, Any], Callable[..., Any]]]:
    """The rows of `generate_code_rows` with each one's reference function."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rng = random.Random(f"selfcritic-code-tasks:{seed}:{split}")
    problems: list[tuple[dict[str, Any], Callable[..., Any]]] = []
    seen: set[str] = set()
    misses = 0
    while len(problems) < count and misses < 50 * len(FAMILIES):
        family = FAMILIES[(len(problems) + misses) % len(FAMILIES)]
        name, text, function, draw = family.make(rng)
        if name in seen or split_of(name) != split:
            misses += 1
            continue
        seen.add(name)
        tests = _asserts(rng, name, function, draw)
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        problems.append(({"id": f"code-{family.name}-{digest}", "text": text,
                          "test_list": tests, "entry_point": name, "grader": "code",
                          "category": f"code-{family.name}"}, function))
    return problems


def code_questions(seed: int, split: str, count: int) -> list[Question]:
    """The generated problems as `Question`s, read as `evaluation.dataset` reads code rows."""
    return [question_of(row) for row in generate_code_rows(seed, split, count)]


def question_of(row: dict[str, Any]) -> Question:
    task = code_tasks.code_task(row)
    return Question(id=row["id"], question=code_tasks.code_question_text(row),
                    answer=task.tests, grader="code", category=row["category"], code=task)


def write_code_tasks(path: Path, seed: int, split: str, count: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in generate_code_rows(seed, split, count)),
                    encoding="utf-8")
    return path


def _asserts(rng: random.Random, name: str, function: Callable[..., Any],
             draw: Callable[[random.Random], tuple[Any, ...]]) -> list[str]:
    """TESTS distinct asserts; the shown ones first."""
    tests: list[str] = []
    for _ in range(20 * TESTS):
        args = draw(rng)
        line = (f"assert {name}({', '.join(map(repr, args))}) == "
                f"{function(*[_copy(a) for a in args])!r}")
        if line not in tests:
            tests.append(line)
        if len(tests) == TESTS:
            break
    return tests


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
