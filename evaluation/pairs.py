"""Preference pairs from files, and the judge prompts GRPO trains on.

Rows come from JSONL, JSON, Parquet or a saved Hugging Face dataset, in one of three
shapes: `question` + `response_1`/`response_2` + `preference` (1 or 2), or `prompt` +
`chosen`/`rejected` (put in a seeded random order with exactly balanced labels), or the
paper's own: `question` (the whole judge prompt, responses included, `<image>` where each
image goes) + `answer` (see `parse_answer`). Any may carry `image` or `images`. Training
shows the first two shapes in both orders, so position carries no information about the
label; their prompts are built by `critic_loop.judge_prompt`, the same function the server
judges with. The paper's prompts are used as given.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from critic_loop.judge_prompt import JudgeMode, judge_messages
from critic_loop.verdict import parse_verdict
from trainer.rewards import completion_text

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


def judge_prompt(pair: PreferencePair, mode: JudgeMode | str = JudgeMode.REASON
                 ) -> tuple[list[dict[str, Any]], list[Any]]:
    """The judge conversation for `pair` with its image parts lifted out into a list.

    TRL keeps images in their own column and puts an image placeholder before the text of
    the first user turn, which restores exactly what `judge_messages` returns. A given
    prompt (the paper's rows) keeps `{"type": "image"}` parts where its placeholders are.
    """
    if pair.given_prompt:
        return [{"role": "user", "content": given_prompt_parts(str(pair.question),
                                                               len(pair.images))}], \
            list(pair.images)
    messages = judge_messages(_question_arg(pair.question), pair.response_1, pair.response_2,
                              mode, pair.images)
    images: list[Any] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            images.extend(_image_value(p) for p in content if p.get("type") != "text")
            message["content"] = "".join(p["text"] for p in content if p.get("type") == "text")
    return messages, images


def in_both_orders(pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
    """Each pair followed by its swap: labels exactly balanced, and every question seen
    with its better response in either position, so a judge cannot score by position.

    Needed for labelled rows, which keep the file's order (a file whose better response
    is mostly first would otherwise teach "answer 1"); harmless for chosen/rejected rows.
    A given prompt (the paper's rows) cannot be reordered and is shown once, as given.

    >>> pair = PreferencePair("Q?", "right", "wrong", 1)
    >>> [(p.response_1, p.label) for p in in_both_orders([pair])]
    [('right', 1), ('wrong', 2)]
    """
    return [shown for pair in pairs
            for shown in ((pair,) if pair.given_prompt else (pair, pair.swapped()))]


def to_grpo_dataset(pairs: Sequence[PreferencePair],
                    mode: JudgeMode | str = JudgeMode.REASON, *, both_orders: bool = True) -> Any:
    """A `datasets.Dataset` of judge tasks: a conversational `prompt`, the `label`, the
    `judge_mode` the rewards read verdicts in, `pair_id` (the same for both orders of one
    pair, which are adjacent rows), and `images` when any pair has some.

    With `both_orders` (the default) every pair is shown as given and swapped
    (`in_both_orders`), so the dataset has two rows per pair.
    """
    from datasets import Dataset, Image
    from datasets import Sequence as SequenceFeature

    mode = JudgeMode(mode).value
    rows = []
    shown = _numbered(pairs) if both_orders else enumerate(pairs)
    for pair_id, pair in shown:
        prompt, images = judge_prompt(pair, mode)
        # a given prompt is the paper's: it asks for \boxed{}, so it is read as reason mode
        rows.append({"prompt": prompt, "label": pair.label,
                     "judge_mode": JudgeMode.REASON.value if pair.given_prompt else mode,
                     "pair_id": pair_id, "images": images})
    if any(pair.given_prompt and pair.images for pair in pairs):
        # Arrow needs one shape: every prompt as parts, its image placeholders in place
        for row in rows:
            row["prompt"] = _as_parts(row["prompt"], len(row["images"]))
    if not any(row["images"] for row in rows):
        return Dataset.from_list([{k: v for k, v in r.items() if k != "images"} for r in rows])
    return Dataset.from_list(rows).cast_column("images", SequenceFeature(Image()))


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


def _question_arg(question: str | tuple[dict[str, Any], ...]) -> str | list[dict[str, Any]]:
    return question if isinstance(question, str) else list(question)


def _image_value(part: dict[str, Any]) -> Any:
    if part.get("type") == "image_url":
        url = part.get("image_url")
        return url.get("url") if isinstance(url, dict) else url
    return part.get("image")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


IMAGE_PLACEHOLDER = "<image>"
"""Where an image goes in a given prompt (the paper's rows)."""

_ANSWER = re.compile(r"^\W*(?:response\s*)?([12])\W*$", re.IGNORECASE)
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
    match = _ANSWER.match(text)
    if match:
        return int(match.group(1))
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


def _as_parts(prompt: list[dict[str, Any]], images: int) -> list[dict[str, Any]]:
    """Messages with string content as parts; the first user turn gets the image
    placeholders in front, where TRL would have put them."""
    out, placed = [], False
    for message in prompt:
        content = message["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
            if message["role"] == "user" and not placed:
                parts = [*({"type": "image"} for _ in range(images)), *parts]
            content = parts
        placed = placed or message["role"] == "user"
        out.append({**message, "content": content})
    return out


def _numbered(pairs: Sequence[PreferencePair]) -> Iterator[tuple[int, PreferencePair]]:
    """(pair id, shown pair) for `in_both_orders`: a pair and its swap share an id."""
    for pair_id, pair in enumerate(pairs):
        for shown in in_both_orders([pair]):
            yield pair_id, shown
