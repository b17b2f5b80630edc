"""Trainer fixtures: a tiny random model for fast training tests, and a real critic
export (the default model trained 2 GRPO steps on the demo data) for integration tests.

`trained_critic_dir` is the directory `selfcritic serve --model DIR` should serve; the
server integration test can take it as a fixture from any test under tests/trainer/, or
call `train_demo_critic(out_dir)` directly.
"""

from __future__ import annotations

import os

from critic_loop.builtin_models import TEST_MODEL

# Before torch loads: idle OpenMP threads must not spin on a small shared CPU (see cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_TRAIN = REPO / "data" / "demo" / "train.jsonl"

E2E_OVERRIDES = [
    "max_steps=2", "num_generations=4", "per_device_train_batch_size=4",
    "max_completion_length=32", "max_train_pairs=8", "save_steps=2", "logging_steps=1",
]
"""The end-to-end run: 2 steps of 4 completions × ≤32 tokens on 8 demo pairs."""


def train_demo_critic(out_dir: Path, model: str = TEST_MODEL,
                      extra: list[str] | None = None) -> Path:
    """Train `model` for 2 GRPO steps on the demo pairs with the CPU recipe; return the
    export directory."""
    from trainer.recipe import load_recipe
    from trainer.train import train

    recipe = load_recipe(REPO / "recipes" / "cpu-demo.yaml", [
        *E2E_OVERRIDES, f"model={model}", f"train_data={DEMO_TRAIN}",
        f"output_dir={out_dir}", *(extra or [])])
    return train(recipe).export_dir


@pytest.fixture(scope="session")
def train_critic() -> Callable[..., Path]:
    """`train_demo_critic` as a fixture: (out_dir, model=TEST_MODEL, extra=[...]) -> export."""
    return train_demo_critic


@pytest.fixture(scope="session")
def trained_critic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model after 2 GRPO steps, exported (bf16, servable). ~1-3 min once."""
    return train_demo_critic(tmp_path_factory.mktemp("critic-run"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the default model's tokenizer and chat template:
    real code paths, a fraction of a second per training step."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from critic_loop.runtime.model_store import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TEST_MODEL).path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
