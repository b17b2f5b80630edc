"""A vision-language critic end to end on the CPU: a tiny random LLaVA-architecture model
trains 2 GRPO steps on image rows (both the pairwise shape and the paper's whole-prompt
shape), is exported with its processor, and transformers runs the export on a rendered
judge prompt with its images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from critic_loop.images import images_of
from critic_loop.judge_prompt import judge_messages
from evaluation.pairs import load_pairs
from tests.support.tiny_vlm import IMAGE_TOKEN, IMAGE_TOKENS, build_tiny_vlm
from trainer.data import to_grpo_dataset

REPO = Path(__file__).resolve().parents[2]
COLOURS = ["red", "blue", "green", "white"]


def write_image_rows(directory: Path) -> Path:
    """Two pairwise rows with `image`, and two of the paper's rows: the whole judge prompt
    with `<image>` placeholders, `image`, and `answer` in two spellings."""
    for colour in COLOURS:
        Image.new("RGB", (32, 32), colour).save(directory / f"{colour}.png")
    rows = [{"question": "What colour is this?", "image": f"{c}.png", "response_1": c,
             "response_2": "purple", "preference": 1} for c in COLOURS[:2]]
    rows += [{"question": f"<image>\nWhat colour is this?\n[Response 1]\nblack\n[Response 2]\n"
                          f"{c}\nWhich is better? Answer in \\boxed{{}}.",
              "image": f"{c}.png", "answer": answer}
             for c, answer in zip(COLOURS[2:], ["2", "\\boxed{2}"], strict=True)]
    path = directory / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


def test_paper_rows_keep_their_prompt_and_images_in_place(tmp_path: Path) -> None:
    pairs = load_pairs(write_image_rows(tmp_path)).pairs
    paper = [p for p in pairs if p.given_prompt]
    assert [p.label for p in paper] == [2, 2]
    dataset = to_grpo_dataset(pairs, "fast")
    assert len(dataset) == 2 * 2 + 2  # pairwise rows in both orders, paper rows as given
    row = dataset[-1]
    assert row["judge_mode"] == "reason" and len(row["images"]) == 1
    parts = row["prompt"][0]["content"]
    assert parts[0]["type"] == "image" and parts[1]["text"].startswith("\nWhat colour")


def test_a_vision_critic_trains_exports_and_runs(tmp_path: Path, vlm_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from trainer.export import PROCESSOR_FILES, export_checkpoint
    from trainer.recipe import load_recipe
    from trainer.train import train

    data = write_image_rows(tmp_path)
    recipe = load_recipe(REPO / "recipes" / "cpu-demo.yaml", [
        "max_steps=2", "num_generations=4", "per_device_train_batch_size=4",
        "max_completion_length=8", "save_steps=2", "logging_steps=1", f"model={vlm_dir}",
        f"train_data={data}", f"output_dir={tmp_path / 'run'}"])
    result = train(recipe)
    assert result.steps == 2
    again = export_checkpoint(tmp_path / "run" / "checkpoint-2", tmp_path / "export-only",
                              metadata={}, base_dir=vlm_dir)  # what --export-only runs

    for export in (result.export_dir, again):
        assert any((export / f).is_file() for f in PROCESSOR_FILES)
        processor = AutoProcessor.from_pretrained(export)
        model = AutoModelForImageTextToText.from_pretrained(export)
        images = [Image.new("RGB", (50, 40), "red"), Image.new("RGB", (20, 30), "blue")]
        question = [{"role": "user", "content": [
            {"type": "image", "image": images[0]}, {"type": "text", "text": "Which is red,"},
            {"type": "image", "image": images[1]}, {"type": "text", "text": "or the first?"}]}]
        messages = judge_messages(question, "The first.", "The second.", "reason")
        text = processor.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=True)
        assert text.count(IMAGE_TOKEN) == len(images_of(messages)) == 2
        inputs = processor(text=text, images=list(images_of(messages)), return_tensors="pt")
        assert (inputs["input_ids"] == model.config.image_token_index).sum() == 2 * IMAGE_TOKENS
        logits = model(**inputs).logits
        assert logits.shape[1] == inputs["input_ids"].shape[1]


@pytest.mark.parametrize("row, problem", [
    ({"question": "<image> <image> Which?", "image": "red.png", "answer": 1}, "2 <image>"),
    ({"question": "<image> Which?", "image": "red.png", "answer": "maybe"}, "'answer'"),
])
def test_bad_paper_rows_name_their_field(tmp_path: Path, row: dict, problem: str) -> None:
    from evaluation.pairs import DataError

    Image.new("RGB", (4, 4), "red").save(tmp_path / "red.png")
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=problem):
        load_pairs(path)


def test_the_heldout_curve_refuses_whole_prompt_rows_and_says_what_measures_them(
        tmp_path: Path) -> None:
    from trainer.recipe import Recipe, RecipeError
    from trainer.train import heldout_curve

    recipe = Recipe(judge_mode="fast", eval_data=str(write_image_rows(tmp_path)))
    with pytest.raises(RecipeError, match="selfcritic eval critic --judge reason"):
        heldout_curve(recipe, tmp_path, tmp_path / "metrics.jsonl")
