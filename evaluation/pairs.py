"""Preference pairs from files: what critic training learns from and critic evaluation
judges (the judge prompts GRPO trains on are trainer/data.py's).

Rows come from JSONL, JSON, Parquet or a saved Hugging Face dataset, in one of three
shapes: `question` + `response_1`/`response_2` + `preference` (1 or 2), or `prompt` +
`chosen`/`rejected` (put in a seeded random order with exactly balanced labels), or the
paper's own: `question` (the whole judge prompt, responses included, `<image>` where each
image goes) + `answer` (see `parse_answer`). Any may carry `image` or `images`. The paper's
prompts are used as given.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from critic_loop.verdict import bare_verdict, parse_verdict

logger = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".parquet")


class DataError(ValueError):
    """A data file or one of its rows cannot be used; the message names file, row and field."""


@dataclass(frozen=True)
class PreferencePair:
    """A question, two responses in judge order, and which one is better (1 or 2)."""

    question: str | tuple[dict[str, Any], ...]
    response_1: str
    response_2: str
    label: int
    images: tuple[Any, ...] = ()
    given_prompt: bool = False
    """`question` is the whole judge prompt as the data gave it (the paper's rows), with
    `IMAGE_PLACEHOLDER` where each image goes; the responses are inside it, not apart."""

    def swapped(self) -> PreferencePair:
        """The same pair with the responses (and so the label) in the other order."""
        return PreferencePair(self.question, self.response_2, self.response_1, 3 - self.label,
                              self.images)


@dataclass
class LoadedPairs:
    """The usable pairs of a file and how many rows were skipped (with `skip_invalid`)."""

    pairs: list[PreferencePair]
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def load_pairs(path: str | Path, *, seed: int = 0, skip_invalid: bool = False,
               split: str = "train") -> LoadedPairs:
    """Read preference pairs from `path` (a file, or a `save_to_disk` directory).

    A bad row raises `DataError` naming file, row (1-based) and field; with `skip_invalid`
    it is skipped, counted and logged instead.
    """
    path = Path(path)
    labelled: list[tuple[int, PreferencePair]] = []
    unordered: list[tuple[int, tuple[Any, str, str, tuple[Any, ...]]]] = []
    loaded = LoadedPairs(pairs=[])
    for number, row in _read_rows(path, split):
        try:
            parsed = _parse_row(row, path)
        except DataError as error:
            message = f"{path}, row {number}: {error}"
            if not skip_invalid:
                raise DataError(message) from None
            loaded.skipped += 1
            loaded.errors.append(message)
            continue
        if isinstance(parsed, PreferencePair):
            labelled.append((number, parsed))
        else:
            unordered.append((number, parsed))
    # chosen/rejected rows: a shuffled vector of exactly half 1s and half 2s places the
    # chosen response, so a judge cannot score by always naming one position.
    labels = [1 + (i % 2) for i in range(len(unordered))]
    random.Random(seed).shuffle(labels)
    ordered = [(n, _order(item, label)) for (n, item), label in zip(unordered, labels, strict=True)]
    loaded.pairs = [pair for _, pair in sorted(labelled + ordered, key=lambda x: x[0])]
    if loaded.skipped:
        logger.warning("%s: skipped %d invalid rows (first: %s)", path, loaded.skipped,
                       loaded.errors[0])
    if not loaded.pairs:
        raise DataError(f"{path}: no usable preference pairs")
    logger.info("%s: %d preference pairs", path, len(loaded.pairs))
    return loaded


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of one completion, plain or conversational.

    >>> completion_text([{"role": "assistant", "content": "hi"}])
    'hi'
    """
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        parts.append(content)
    return "".join(parts)


def _read_rows(path: Path, split: str) -> Iterator[tuple[int, Any]]:
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        data = load_from_disk(str(path))
        if isinstance(data, DatasetDict):
            if split not in data:
                raise DataError(f"{path}: no split {split!r} (has {sorted(data)})")
            data = data[split]
        yield from enumerate(data, start=1)
    elif path.suffix == ".jsonl":
        with path.open() as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, _json_row(line, path, number)
    elif path.suffix == ".json":
        data = _json_row(path.read_text(), path, 0)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of rows (or {{\"data\": [...]}})")
        yield from enumerate(data, start=1)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    elif not path.exists():
        raise DataError(f"{path}: no such file or directory")
    else:
        raise DataError(f"{path}: unsupported format; use one of {', '.join(SUFFIXES)} "
                        "or a directory written by datasets' save_to_disk")


def _json_row(text: str, path: Path, number: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f", row {number}" if number else ""
        raise DataError(f"{path}{where}: invalid JSON ({error})") from None


def _parse_row(row: Any, path: Path) -> PreferencePair | tuple[Any, str, str, tuple[Any, ...]]:
    if not isinstance(row, dict):
        raise DataError(f"expected an object, got {type(row).__name__}")
    images = _images(row, path)
    if "answer" in row and not {"response_1", "preference", "chosen"} & set(row):
        return _given_prompt_pair(row, images)
    if "question" in row or "preference" in row:
        question = _question(row, "question")
        preference = row.get("preference")
        if isinstance(preference, str) and preference.strip() in {"1", "2"}:
            preference = int(preference)
        if preference not in (1, 2) or isinstance(preference, bool):
            raise DataError(f"field 'preference' must be 1 or 2, got {preference!r}")
        return PreferencePair(question, _response(row, "response_1"),
                              _response(row, "response_2"), int(preference), images)
    if "prompt" in row or "chosen" in row:
        return (_question(row, "prompt"), _response(row, "chosen"), _response(row, "rejected"),
                images)
    raise DataError("expected fields question/response_1/response_2/preference or "
                    f"prompt/chosen/rejected; got {sorted(row)}")


def _order(item: tuple[Any, str, str, tuple[Any, ...]], label: int) -> PreferencePair:
    question, chosen, rejected, images = item
    first, second = (chosen, rejected) if label == 1 else (rejected, chosen)
    return PreferencePair(question, first, second, label, images)


def _question(row: dict[str, Any], name: str) -> str | tuple[dict[str, Any], ...]:
    value = row.get(name)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m
                                                 for m in value):
        return tuple(dict(m) for m in value)
    raise DataError(f"field {name!r} must be a non-empty string or a list of chat messages, "
                    f"got {_show(value)}")


def _response(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        # conversational preference data: the response is the assistant turn(s)
        value = "\n".join(completion_text([m]) for m in value
                          if m.get("role", "assistant") == "assistant")
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"field {name!r} must be a non-empty string, got {_show(value)}")
    return value


def _images(row: dict[str, Any], path: Path) -> tuple[Any, ...]:
    value = row.get("images", row.get("image"))
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    resolved = []
    for image in values:
        if isinstance(image, str):  # a path: relative to the data file, and it must exist
            image_path = Path(image) if Path(image).is_absolute() else path.parent / image
            if not image_path.is_file():
                raise DataError(f"field 'image': no such file {image_path}")
            image = str(image_path)
        resolved.append(image)
    return tuple(resolved)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


IMAGE_PLACEHOLDER = "<image>"
"""Where an image goes in a given prompt (the paper's rows)."""

_ORDINALS = {"first": 1, "second": 2}


def parse_answer(value: Any) -> int | None:
    r"""The label of a paper row's `answer`: 1 or 2, or None when it names neither.

    Accepted: the numbers 1 and 2; the strings "1", "2", "Response 1", "[[2]]", "(1)",
    "first", "second" (any case, surrounding punctuation ignored); and any text whose
    last `\boxed{}` holds 1 or 2 (a whole judgment, "<think>...</think>\boxed{2}").

    >>> [parse_answer(v) for v in (2, "1", "Response 2.", "[[1]]", "Second", "x \\boxed{2}")]
    [2, 1, 2, 1, 2, 2]
    >>> parse_answer("3") is None and parse_answer(True) is None
    True
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in (1, 2) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    bare = bare_verdict(text)
    if bare is not None:
        return bare
    if text.lower().strip(".") in _ORDINALS:
        return _ORDINALS[text.lower().strip(".")]
    return parse_verdict(text) if "boxed" in text else None


def given_prompt_parts(prompt: str, images: int) -> list[dict[str, Any]]:
    """A given prompt as content parts: `{"type": "image"}` at each `<image>`; with no
    placeholder at all, the images go first (the paper's layout).

    >>> given_prompt_parts("See <image> and <image>.", 2)  # doctest: +NORMALIZE_WHITESPACE
    [{'type': 'text', 'text': 'See '}, {'type': 'image'}, {'type': 'text', 'text': ' and '},
     {'type': 'image'}, {'type': 'text', 'text': '.'}]
    """
    pieces = prompt.split(IMAGE_PLACEHOLDER)
    if len(pieces) == 1:
        return [*({"type": "image"} for _ in range(images)), {"type": "text", "text": prompt}]
    parts: list[dict[str, Any]] = []
    for k, piece in enumerate(pieces):
        if k:
            parts.append({"type": "image"})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def _given_prompt_pair(row: dict[str, Any], images: tuple[Any, ...]) -> PreferencePair:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"field 'question' must be the whole judge prompt as a non-empty "
                        f"string, got {_show(question)}")
    label = parse_answer(row.get("answer"))
    if label is None:
        raise DataError(f"field 'answer' must name response 1 or 2 (1, 2, \"Response 1\", "
                        f"\"\\boxed{{2}}\", ...), got {_show(row.get('answer'))}")
    placeholders = question.count(IMAGE_PLACEHOLDER)
    if placeholders and placeholders != len(images):
        raise DataError(f"field 'question' has {placeholders} {IMAGE_PLACEHOLDER} placeholders "
                        f"but the row has {len(images)} images")
    return PreferencePair(question, "", "", label, images, given_prompt=True)
