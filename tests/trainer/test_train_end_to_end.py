"""End to end: the default model trains 2 GRPO steps on the CPU and exports a critic that
loads as an ordinary Hugging Face model (the server test serves the same fixture)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from critic_loop.builtin_models import TEST_MODEL
from trainer.export import METADATA_FILE


@pytest.mark.integration
def test_default_model_trains_and_exports(trained_critic_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from critic_loop.judge_prompt import judge_messages

    out = trained_critic_dir
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["steps"] == 2 and meta["base_model"] == TEST_MODEL
    assert meta["recipe"]["grpo"]["num_generations"] == 4
    assert "rewards/preference_reward/mean" in meta["reward_stats"]
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"

    run = out.parent
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "kl" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for key in ("rewards/preference_reward/mean", "rewards/format_reward/mean",
                "completions/mean_length", "kl"):
        assert key in steps[0], key
    assert "step 2/2" in (run / "train.log").read_text()

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    prompt = tokenizer.apply_chat_template(judge_messages("What is 2 + 2?", "4.", "5.", "fast"),
                                           add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.integration
def test_lora_run_exports_merged_weights(train_critic: Callable[..., Path],
                                         tiny_model_dir: Path, tmp_path: Path) -> None:
    out = train_critic(tmp_path / "lora", model=str(tiny_model_dir),
                            extra=["lora=true", "lora_r=4", "learning_rate=1e-3"])
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / METADATA_FILE).read_text())["recipe"]["lora"] is True
