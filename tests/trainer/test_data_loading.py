"""Preference data: every file format, both row shapes, balanced ordering, bad rows, and
training on every pair in both orders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from critic_loop.judge_prompt import judge_messages
from evaluation.pairs import DataError, PreferencePair, load_pairs
from trainer.data import in_both_orders, judge_prompt, to_grpo_dataset

ROWS = [
    {"question": "What is 2 + 2?", "response_1": "4.", "response_2": "5.", "preference": 1},
    {"question": "Capital of France?", "response_1": "Lyon.", "response_2": "Paris.",
     "preference": 2},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "disk", "disk_dict"])
def test_every_format_loads_the_same_pairs(tmp_path: Path, fmt: str) -> None:
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    elif fmt == "json":
        path = tmp_path / "p.json"
        path.write_text(json.dumps(ROWS))
    else:
        from datasets import Dataset, DatasetDict

        data = Dataset.from_list(ROWS)
        if fmt == "parquet":
            path = tmp_path / "p.parquet"
            data.to_parquet(str(path))
        else:
            path = tmp_path / "saved"
            (DatasetDict({"train": data}) if fmt == "disk_dict" else data).save_to_disk(str(path))
    pairs = load_pairs(path).pairs
    assert pairs == [PreferencePair("What is 2 + 2?", "4.", "5.", 1),
                     PreferencePair("Capital of France?", "Lyon.", "Paris.", 2)]


def test_chosen_rejected_rows_get_exactly_balanced_seeded_labels(tmp_path: Path) -> None:
    rows = [{"prompt": f"Q{i}?", "chosen": f"right {i}", "rejected": f"wrong {i}"}
            for i in range(31)]
    path = write_jsonl(tmp_path / "cr.jsonl", rows)
    pairs = load_pairs(path, seed=3).pairs
    counts = Counter(p.label for p in pairs)
    assert abs(counts[1] - counts[2]) <= 1  # 31 rows: 16/15
    for i, pair in enumerate(pairs):  # row order kept; the chosen one sits where the label says
        chosen = pair.response_1 if pair.label == 1 else pair.response_2
        assert (pair.question, chosen) == (f"Q{i}?", f"right {i}")
    assert [p.label for p in load_pairs(path, seed=3).pairs] == [p.label for p in pairs]
    assert [p.label for p in load_pairs(path, seed=4).pairs] != [p.label for p in pairs]


def test_conversational_chosen_rejected(tmp_path: Path) -> None:
    row = {"prompt": [{"role": "user", "content": "Hi?"}],
           "chosen": [{"role": "assistant", "content": "Hello!"}],
           "rejected": [{"role": "assistant", "content": "Go away."}]}
    pair = load_pairs(write_jsonl(tmp_path / "c.jsonl", [row, row])).pairs[0]
    assert {pair.response_1, pair.response_2} == {"Hello!", "Go away."}
    assert pair.question == ({"role": "user", "content": "Hi?"},)


@pytest.mark.parametrize(("row", "field"), [
    ({"question": "Q", "response_1": "a", "response_2": "b", "preference": 3}, "preference"),
    ({"question": "Q", "response_1": "a", "preference": 1}, "response_2"),
    ({"question": "", "response_1": "a", "response_2": "b", "preference": 1}, "question"),
    ({"prompt": "Q", "chosen": "a", "rejected": None}, "rejected"),
    ({"text": "nothing useful"}, "question/response_1"),
])
def test_a_bad_row_names_file_row_and_field(tmp_path: Path, row: dict, field: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], row])
    with pytest.raises(DataError) as error:
        load_pairs(path)
    message = str(error.value)
    assert str(path) in message and "row 2" in message and field in message


def test_invalid_json_line_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"broken.jsonl, row 2: invalid JSON"):
        load_pairs(path)
    other = tmp_path / "x.csv"
    other.write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported format"):
        load_pairs(other)


def test_skip_invalid_counts_and_keeps_the_good_rows(tmp_path: Path) -> None:
    bad = {"question": "Q", "response_1": "a", "response_2": "b", "preference": "first"}
    path = write_jsonl(tmp_path / "mixed.jsonl", [ROWS[0], bad, ROWS[1], bad])
    loaded = load_pairs(path, skip_invalid=True)
    assert len(loaded.pairs) == 2 and loaded.skipped == 2
    assert "row 2" in loaded.errors[0] and "row 4" in loaded.errors[1]


def test_image_paths_resolve_relative_to_the_data_file(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"\x89PNG")
    row = {**ROWS[0], "image": "cat.png"}
    pair = load_pairs(write_jsonl(tmp_path / "img.jsonl", [row])).pairs[0]
    assert pair.images == (str(tmp_path / "cat.png"),)
    with pytest.raises(DataError, match="no such file"):
        load_pairs(write_jsonl(tmp_path / "img2.jsonl", [{**ROWS[0], "image": "dog.png"}]))


def test_training_prompt_is_the_servers_judge_prompt() -> None:
    """The trainer's prompt is exactly what the server's judge sends (one source)."""
    pair = PreferencePair("What is 2 + 2?", "4.", "5.", 1)
    dataset = to_grpo_dataset([pair], both_orders=False)
    assert dataset[0]["prompt"] == judge_messages("What is 2 + 2?", "4.", "5.", "reason")
    assert dataset["label"] == [1] and dataset["judge_mode"] == ["reason"]
    assert "images" not in dataset.column_names
    fast = to_grpo_dataset([pair], "fast")  # the fast judge's prompt, for judge_mode: fast
    assert fast[0]["prompt"] == judge_messages("What is 2 + 2?", "4.", "5.", "fast")
    assert fast[1]["prompt"] == judge_messages("What is 2 + 2?", "5.", "4.", "fast")
    assert fast["label"] == [1, 2] and fast["judge_mode"] == ["fast", "fast"]


def test_a_position_biased_file_trains_on_both_orders(tmp_path: Path) -> None:
    """Labelled rows keep the file's order when loaded (evaluation judges both orders
    itself); the training set shows each pair as given and swapped, so a file whose better
    response is almost always first cannot teach "answer 1"."""
    rows = [{"question": f"Q{i}?", "response_1": f"right {i}", "response_2": f"wrong {i}",
             "preference": 1} for i in range(9)]
    rows.append({"question": "Q9?", "response_1": "wrong 9", "response_2": "right 9",
                 "preference": 2})
    pairs = load_pairs(write_jsonl(tmp_path / "biased.jsonl", rows)).pairs
    assert Counter(p.label for p in pairs) == {1: 9, 2: 1}  # as the file has them
    dataset = to_grpo_dataset(pairs)
    assert len(dataset) == 2 * len(pairs)
    assert Counter(dataset["label"]) == {1: 10, 2: 10}  # exactly balanced
    seen = Counter()
    for prompt, label in zip(dataset["prompt"], dataset["label"], strict=True):
        text = prompt[0]["content"]
        question = text.split("[Question]\n")[1].split("\n")[0]
        first = text.split("[Response 1]\n")[1].split("\n")[0]
        assert first.startswith("right" if label == 1 else "wrong")  # the label follows
        seen[question, label] += 1
    # every question once with the better response first, once with it second
    assert seen == {(f"Q{i}?", label): 1 for i in range(10) for label in (1, 2)}


def test_in_both_orders_keeps_each_pair_beside_its_swap() -> None:
    pairs = [PreferencePair("Q", "a", "b", 2, images=("IMG",)),
             PreferencePair(({"role": "user", "content": "Hi"},), "c", "d", 1)]
    shown = in_both_orders(pairs)
    assert shown == [pairs[0], pairs[0].swapped(), pairs[1], pairs[1].swapped()]
    assert shown[1] == PreferencePair("Q", "b", "a", 1, images=("IMG",))


def test_images_come_back_where_judge_messages_puts_them() -> None:
    """TRL re-inserts image placeholders before the text of the first user turn, which is
    the layout `judge_messages` produces with images."""
    from trl.data_utils import prepare_multimodal_messages

    pair = PreferencePair("What is shown?", "A cat.", "A dog.", 1, images=("IMG",))
    prompt, images = judge_prompt(pair)
    assert images == ["IMG"]
    rebuilt = prepare_multimodal_messages(prompt, images)
    expected = judge_messages("What is shown?", "A cat.", "A dog.", "reason", images=["IMG"])
    assert rebuilt == expected
