"""Make the demo preference pairs: short questions with one right and one wrong answer.

Every label is verifiable (arithmetic, unit conversion, facts with a wrong twin, ...), the
two answers share one shape so only correctness separates them, and the whole output is a
function of the seed. Train and held-out share no question.

    python scripts/make_demo_data.py --out data/demo --train 400 --heldout 200 --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger("make_demo_data")

Pair = tuple[str, str, str, str]
"""(category, question, right answer, wrong answer)."""

CAPITALS = [
    ("France", "Paris", "Lyon"), ("Germany", "Berlin", "Munich"), ("Italy", "Rome", "Milan"),
    ("Spain", "Madrid", "Barcelona"), ("Japan", "Tokyo", "Osaka"), ("China", "Beijing", "Shanghai"),
    ("Canada", "Ottawa", "Toronto"), ("Australia", "Canberra", "Sydney"),
    ("Brazil", "Brasilia", "Rio de Janeiro"), ("Russia", "Moscow", "Saint Petersburg"),
    ("India", "New Delhi", "Mumbai"), ("Egypt", "Cairo", "Alexandria"),
    ("Turkey", "Ankara", "Istanbul"), ("Portugal", "Lisbon", "Porto"),
    ("Greece", "Athens", "Thessaloniki"), ("Poland", "Warsaw", "Krakow"),
    ("Norway", "Oslo", "Bergen"), ("Sweden", "Stockholm", "Gothenburg"),
    ("Kenya", "Nairobi", "Mombasa"), ("Mexico", "Mexico City", "Guadalajara"),
    ("Argentina", "Buenos Aires", "Cordoba"), ("Ireland", "Dublin", "Cork"),
    ("Austria", "Vienna", "Salzburg"), ("Switzerland", "Bern", "Zurich"),
    ("Netherlands", "Amsterdam", "Rotterdam"), ("South Korea", "Seoul", "Busan"),
    ("Vietnam", "Hanoi", "Ho Chi Minh City"), ("Morocco", "Rabat", "Casablanca"),
    ("Nigeria", "Abuja", "Lagos"), ("Peru", "Lima", "Cusco"), ("Chile", "Santiago", "Valparaiso"),
    ("Finland", "Helsinki", "Tampere"), ("Denmark", "Copenhagen", "Aarhus"),
    ("Belgium", "Brussels", "Antwerp"), ("Hungary", "Budapest", "Debrecen"),
    ("Thailand", "Bangkok", "Chiang Mai"), ("Pakistan", "Islamabad", "Karachi"),
    ("New Zealand", "Wellington", "Auckland"), ("Scotland", "Edinburgh", "Glasgow"),
    ("Colombia", "Bogota", "Medellin"),
]
FACTS = [
    ("How many legs does a spider have?", "A spider has 8 legs.", "A spider has 6 legs."),
    ("How many days are in a leap year?", "A leap year has 366 days.", "A leap year has 365 days."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees Celsius.",
     "90 degrees Celsius."),
    ("Which planet is closest to the Sun?", "Mercury.", "Venus."),
    ("What is the largest planet in the solar system?", "Jupiter.", "Saturn."),
    ("What gas do plants absorb from the air?", "Carbon dioxide.", "Oxygen."),
    ("How many continents are there?", "There are 7 continents.", "There are 5 continents."),
    ("What is the freezing point of water in Celsius?", "0 degrees Celsius.",
     "10 degrees Celsius."),
    ("How many sides does a hexagon have?", "A hexagon has 6 sides.", "A hexagon has 8 sides."),
    ("How many sides does a triangle have?", "A triangle has 3 sides.", "A triangle has 4 sides."),
    ("What is the chemical symbol for gold?", "Au.", "Ag."),
    ("What is the chemical symbol for water?", "H2O.", "CO2."),
    ("Which animal is known as the king of the jungle?", "The lion.", "The elephant."),
    ("How many hours are in a day?", "A day has 24 hours.", "A day has 12 hours."),
    ("What color do you get by mixing blue and yellow?", "Green.", "Purple."),
    ("What color do you get by mixing red and white?", "Pink.", "Orange."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", "Charles Dickens."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean.", "The Atlantic Ocean."),
    ("How many months have 28 days in every year?", "All 12 months.", "Only February."),
    ("What do bees make?", "Honey.", "Milk."),
    ("Which organ pumps blood through the body?", "The heart.", "The liver."),
    ("How many wheels does a bicycle have?", "Two wheels.", "Three wheels."),
    ("What is the opposite of hot?", "Cold.", "Warm."),
    ("Which is the smallest prime number?", "2.", "1."),
    ("In which direction does the Sun rise?", "In the east.", "In the west."),
    ("How many minutes are in an hour?", "60 minutes.", "100 minutes."),
    ("How many players are on a soccer team on the field?", "11 players.", "9 players."),
    ("What is the square root of 81?", "9.", "8."),
    ("What is the tallest animal?", "The giraffe.", "The horse."),
    ("Which metal is liquid at room temperature?", "Mercury.", "Iron."),
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
UNITS = [  # (big unit, small unit, factor, a tempting wrong factor)
    ("meters", "centimeters", 100, 10), ("kilometers", "meters", 1000, 100),
    ("hours", "minutes", 60, 100), ("minutes", "seconds", 60, 100),
    ("kilograms", "grams", 1000, 100), ("days", "hours", 24, 12), ("weeks", "days", 7, 5),
    ("dollars", "cents", 100, 10), ("feet", "inches", 12, 10), ("dozens", "eggs", 12, 10),
    ("liters", "milliliters", 1000, 100), ("years", "months", 12, 10),
]
WORDS = ["apple", "table", "river", "garden", "pencil", "orange", "window", "yellow", "cat",
         "house", "planet", "guitar", "mountain", "sun", "banana", "school", "tiger", "book"]


def _near_miss(rng: random.Random, value: int) -> int:
    """A plausible wrong result: off by one, two or ten."""
    wrong = value + rng.choice([-10, -2, -1, 1, 2, 10])
    return wrong if wrong != value else value + 1


def arithmetic(rng: random.Random) -> Pair:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        value = a * b
    else:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        a, b = (max(a, b), min(a, b)) if op == "-" else (a, b)
        value = a + b if op == "+" else a - b
    wrong = _near_miss(rng, value)
    return "arithmetic", f"What is {a} {op} {b}?", f"{a} {op} {b} = {value}.", \
        f"{a} {op} {b} = {wrong}."


def unit_conversion(rng: random.Random) -> Pair:
    big, small, factor, tempting = rng.choice(UNITS)
    n = rng.randint(2, 9)
    wrong = n * tempting if rng.random() < 0.5 else _near_miss(rng, n * factor)
    return "units", f"How many {small} are in {n} {big}?", f"{n * factor} {small}.", \
        f"{wrong} {small}."


def capital(rng: random.Random) -> Pair:
    country, right, wrong = rng.choice(CAPITALS)
    return "capitals", f"What is the capital of {country}?", \
        f"The capital of {country} is {right}.", f"The capital of {country} is {wrong}."


def fact(rng: random.Random) -> Pair:
    question, right, wrong = rng.choice(FACTS)
    return "facts", question, right, wrong


def comparison(rng: random.Random) -> Pair:
    a, b = rng.sample(range(2, 999), 2)
    return "comparison", f"Which number is larger, {a} or {b}?", \
        f"{max(a, b)} is larger.", f"{min(a, b)} is larger."


def sequence(rng: random.Random) -> Pair:
    names = rng.choice([WEEKDAYS, MONTHS])
    kind = "day" if names is WEEKDAYS else "month"
    i = rng.randrange(len(names))
    right, wrong = names[(i + 1) % len(names)], names[(i + 2) % len(names)]
    if rng.random() < 0.5:
        wrong = names[i - 1]
    return "sequence", f"Which {kind} comes right after {names[i]}?", f"{right}.", f"{wrong}."


def parity(rng: random.Random) -> Pair:
    n = rng.randint(11, 999)
    right, wrong = ("even", "odd") if n % 2 == 0 else ("odd", "even")
    return "parity", f"Is {n} even or odd?", f"{n} is {right}.", f"{n} is {wrong}."


def letters(rng: random.Random) -> Pair:
    word = rng.choice(WORDS)
    wrong = len(word) + rng.choice([-1, 1, 2])
    return "letters", f"How many letters are in the word \"{word}\"?", \
        f"It has {len(word)} letters.", f"It has {wrong} letters."


GENERATORS: list[Callable[[random.Random], Pair]] = [
    arithmetic, arithmetic, unit_conversion, capital, fact, comparison, sequence, parity,
    letters]


def unique_pairs(rng: random.Random) -> Iterator[Pair]:
    """Pairs with a question never seen before (so train and held-out cannot overlap)."""
    seen: set[str] = set()
    for _ in range(100_000):
        pair = rng.choice(GENERATORS)(rng)
        if pair[1] not in seen:
            seen.add(pair[1])
            yield pair


def make_rows(pairs: list[Pair], rng: random.Random) -> list[dict[str, object]]:
    """Rows with exactly balanced labels: a shuffled vector of half 1s and half 2s."""
    labels = [1 + (i % 2) for i in range(len(pairs))]
    rng.shuffle(labels)
    rows = []
    for (category, question, right, wrong), label in zip(pairs, labels, strict=True):
        first, second = (right, wrong) if label == 1 else (wrong, right)
        rows.append({"question": question, "response_1": first, "response_2": second,
                     "preference": label, "category": category})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    logger.info("wrote %d rows to %s", len(rows), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.add_argument("--train", type=int, default=400, help="train pairs")
    parser.add_argument("--heldout", type=int, default=200, help="held-out pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = random.Random(args.seed)
    share = args.heldout / (args.train + args.heldout)
    train: list[Pair] = []
    heldout: list[Pair] = []
    for pair in unique_pairs(rng):  # interleaved, so both splits draw from every category
        wants_heldout = len(heldout) < args.heldout and rng.random() < share
        (heldout if wants_heldout or len(train) >= args.train else train).append(pair)
        if len(train) >= args.train and len(heldout) >= args.heldout:
            break
    write_jsonl(args.out / "train.jsonl", make_rows(train, rng))
    write_jsonl(args.out / "heldout.jsonl", make_rows(heldout, rng))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
