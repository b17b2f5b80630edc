"""Seeded generator of small verifiable question sets, with disjoint held-out splits.

Questions a 135M chat model gets right sometimes but not always (single- and two-digit
arithmetic, unit conversion, counting, comparison, sequences), so that choosing among
samples has room to help. A set is a pure function of (seed, split); which split a
problem may appear in is fixed by a hash of the problem itself, independent of the seed,
so no seed's train set shares a problem with any seed's held-out set.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

SPLITS = ("train", "heldout")
HELDOUT_SHARE = 3
"""One problem in HELDOUT_SHARE (by hash) belongs to the held-out split."""
SUFFIX = "Answer with just the number."
MAX_DRAWS = 400
"""Draws per question before a category counts as exhausted for this split."""


@dataclass(frozen=True)
class Task:
    """One verifiable question: a JSONL row of `question`/`answer` with its grader."""

    id: str
    question: str
    answer: str
    grader: str
    category: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


Problem = tuple[str, str, str]
"""(canonical key, question text, answer) from one category generator."""


def _arithmetic(rng: random.Random, low: int, high: int, factor_high: int) -> Problem:
    op = rng.choice("+-×")
    a, b = rng.randint(low, high), rng.randint(low, high)
    if op == "-":
        a, b = max(a, b), min(a, b)  # no negative answers
    if op == "×":
        b = rng.randint(2, factor_high)
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return f"{a}{op}{b}", f"What is {a} {op} {b}? {SUFFIX}", str(value)


def arithmetic_1digit(rng: random.Random) -> Problem:
    """Single-digit + − × (e.g. 7 × 8)."""
    return _arithmetic(rng, 0, 9, 9)


def arithmetic_2digit(rng: random.Random) -> Problem:
    """Two-digit + and −; × by a single digit (two-digit × two-digit is out of a 135M
    model's reach, which would leave selection nothing to choose)."""
    return _arithmetic(rng, 10, 99, 9)


UNITS = (("meter", "centimeters", 100), ("kilometer", "meters", 1000), ("hour", "minutes", 60),
         ("minute", "seconds", 60), ("kilogram", "grams", 1000), ("foot", "inches", 12),
         ("week", "days", 7), ("day", "hours", 24), ("dollar", "cents", 100),
         ("liter", "milliliters", 1000), ("year", "months", 12), ("centimeter", "millimeters", 10),
         ("decade", "years", 10), ("century", "years", 100), ("yard", "feet", 3),
         ("pound", "ounces", 16), ("gallon", "quarts", 4), ("dozen", "eggs", 12))
"""(larger unit, singular; smaller unit, plural; how many of the smaller make one larger)"""
PLURALS = {"foot": "feet", "century": "centuries", "dozen": "dozen"}


def unit_conversion(rng: random.Random) -> Problem:
    """1 to 5 of a larger unit in a smaller one (e.g. 3 hours in minutes). Larger amounts
    (9 minutes in seconds) were never right in 16 samples of the default model."""
    big, small, factor = rng.choice(UNITS)
    amount = rng.randint(1, 5)
    name = big if amount == 1 else PLURALS.get(big, big + "s")
    return (f"{amount}{big}>{small}", f"How many {small} are in {amount} {name}? {SUFFIX}",
            str(amount * factor))


WORDS = ("strawberry", "banana", "mississippi", "apple", "letter", "bookkeeper", "coffee",
         "balloon", "committee", "pepper", "cherry", "tomato", "grammar", "success",
         "address", "parallel", "assessment", "occurrence", "necessary", "butterfly",
         "giraffe", "kangaroo", "elephant", "programming", "bubble", "llama", "hippopotamus",
         "tennessee", "referee", "raspberry", "penguin", "alphabet", "rhythm", "summer")


def count_letters(rng: random.Random) -> Problem:
    """Occurrences of a letter of a word in that word (e.g. r in strawberry)."""
    word = rng.choice(WORDS)
    letter = rng.choice(sorted(set(word)))
    return (f"{word}:{letter}",
            f'How many times does the letter "{letter}" appear in the word "{word}"? {SUFFIX}',
            str(word.count(letter)))


ITEMS = ("apple", "pear", "plum", "kiwi", "mango", "grape", "lemon", "peach", "cat", "dog",
         "horse", "mouse", "chair", "table", "lamp", "spoon", "book", "pen", "cup", "hat")


def count_items(rng: random.Random) -> Problem:
    """Length of a short list (2 to 6) of distinct words."""
    items = rng.sample(ITEMS, rng.randint(2, 6))
    listed = ", ".join(items)
    return f"items:{listed}", f"How many items are in this list: {listed}? {SUFFIX}", str(len(items))


def comparison(rng: random.Random) -> Problem:
    """The larger of two numbers: integers, or decimals like 9.11 vs 9.9."""
    if rng.random() < 0.5:
        a, b = rng.sample(range(1, 1000), 2)
        pair, larger = (str(a), str(b)), str(max(a, b))
    else:
        whole, one, two = rng.randint(1, 20), rng.randint(1, 9), rng.randint(10, 99)
        if one * 10 == two:
            two += 1
        x, y = f"{whole}.{one}", f"{whole}.{two}"
        larger = x if float(x) > float(y) else y
        pair = (x, y) if rng.random() < 0.5 else (y, x)
    return (f"max:{pair[0]},{pair[1]}",
            f"Which number is larger, {pair[0]} or {pair[1]}? {SUFFIX}", larger)


def sequence(rng: random.Random) -> Problem:
    """The next term of counting up or down by 1, 2, 3, 4, 5 or 10 from a multiple of the
    step, or of a doubling sequence (steps like 7 from 13 were never right for the default
    model)."""
    if rng.random() < 0.15:
        first = rng.randint(1, 3)
        terms = [first * 2**i for i in range(5)]
    else:
        step = rng.choice((1, 2, 3, 4, 5, 10))
        if rng.random() < 0.7:
            first = rng.randint(0, 9)
            terms = [step * (first + i) for i in range(5)]
        else:
            top = rng.randint(5, 12)
            terms = [step * (top - i) for i in range(5)]
    shown = ", ".join(map(str, terms[:4]))
    return (f"seq:{shown}", f"What number comes next in the sequence {shown}? {SUFFIX}",
            str(terms[4]))


CATEGORIES: dict[str, Callable[[random.Random], Problem]] = {
    "arithmetic-1digit": arithmetic_1digit,
    "arithmetic-2digit": arithmetic_2digit,
    "unit-conversion": unit_conversion,
    "count-letters": count_letters,
    "count-items": count_items,
    "comparison": comparison,
    "sequence": sequence,
}


def split_of(category: str, key: str) -> str:
    """The one split a problem may appear in, whatever the seed."""
    digest = hashlib.sha256(f"{category}|{key}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") % HELDOUT_SHARE == 0 else "train"


def generate_tasks(seed: int, split: str, count: int) -> list[Task]:
    """`count` distinct questions of `split`, cycling through the categories.

    Deterministic in (seed, split); a longer set starts with the shorter one.

    >>> short, long = generate_tasks(0, "heldout", 2), generate_tasks(0, "heldout", 3)
    >>> short == long[:2]
    True
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(f"selfcritic-tasks:{seed}:{split}")
    return list(_draw(rng, split, count))


def _draw(rng: random.Random, split: str, count: int) -> Iterator[Task]:
    seen: set[tuple[str, str]] = set()
    live = list(CATEGORIES)
    made = 0
    while made < count:
        if not live:
            raise ValueError(f"only {made} distinct {split} questions exist; asked for {count}")
        category = live[made % len(live)]
        problem = _fresh(rng, category, split, seen)
        if problem is None:
            live.remove(category)
            continue
        key, question, answer = problem
        seen.add((category, key))
        digest = hashlib.sha256(f"{category}|{key}".encode()).hexdigest()[:10]
        yield Task(f"{category}-{digest}", question, answer, "numeric", category)
        made += 1


def _fresh(rng: random.Random, category: str, split: str,
           seen: set[tuple[str, str]]) -> Problem | None:
    for _ in range(MAX_DRAWS):
        problem = CATEGORIES[category](rng)
        if (category, problem[0]) not in seen and split_of(category, problem[0]) == split:
            return problem
    return None


def write_tasks(out_dir: Path, seed: int, sizes: dict[str, int]) -> dict[str, Path]:
    """Write `SPLIT.jsonl` for each split in `sizes`; return the paths by split."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for split, count in sizes.items():
        path = out_dir / f"{split}.jsonl"
        lines = (json.dumps(t.to_dict(), ensure_ascii=False) + "\n"
                 for t in generate_tasks(seed, split, count))
        path.write_text("".join(lines), encoding="utf-8")
        paths[split] = path
    return paths
