"""The judge prompts GRPO trains on, built from preference pairs (evaluation/pairs.py).

Training shows labelled pairs in both orders, so position carries no information about the
label; their prompts are built by `critic_loop.judge_prompt`, the same function the server
judges with. The paper's prompts (given whole in the data) are used as given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from critic_loop.judge_prompt import JudgeMode, judge_messages
from evaluation.pairs import PreferencePair, given_prompt_parts


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


def _question_arg(question: str | tuple[dict[str, Any], ...]) -> str | list[dict[str, Any]]:
    return question if isinstance(question, str) else list(question)


def _image_value(part: dict[str, Any]) -> Any:
    if part.get("type") == "image_url":
        url = part.get("image_url")
        return url.get("url") if isinstance(url, dict) else url
    return part.get("image")


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
