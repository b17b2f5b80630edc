"""The KL term is on, and computed against the right reference, under LoRA.

With a LoRA adapter TRL builds no reference model: it scores the reference with the
adapters disabled (`GRPOTrainer._generate_and_score_completions`, `use_adapter(model,
None)`). Parity: the reference log-probabilities our trainer computes equal TRL's own
computation on a separately loaded base model, differ from the adapted policy's, and the
logged KL is TRL's k3 estimator over exactly those two.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluation.pairs import load_pairs
from trainer.data import to_grpo_dataset
from trainer.loop_recipe import load_loop_recipe
from trainer.train import fast_verdict_token_ids, grpo_config, lora_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo" / "train.jsonl"
GENERATIONS = 4


@pytest.fixture(scope="module")
def lora_trainer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from trl import GRPOTrainer  # noqa: F401  (imported first: TRL patches the model class)

    from trainer.one_token_grpo import OneTokenGRPOTrainer
    from trainer.rewards import get_rewards

    recipe = load_loop_recipe(REPO / "recipes" / "cpu-onpolicy.yaml", [
        f"model={tiny_model_dir}", "bf16=false", f"num_generations={GENERATIONS}",
        "per_device_train_batch_size=8", "pair_baseline=false",
        f"output_dir={tmp_path_factory.mktemp('kl')}"]).recipe
    assert recipe.lora and recipe.grpo["beta"] == 0.01
    pairs = load_pairs(DEMO, seed=0).pairs[:2]
    trainer = OneTokenGRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=get_rewards(recipe.rewards),
        args=grpo_config(recipe), train_dataset=to_grpo_dataset(pairs, "fast"),
        peft_config=lora_config(recipe), verdict_token_ids=fast_verdict_token_ids(tiny_model_dir))
    torch.manual_seed(0)
    with torch.no_grad():  # a trained adapter: the policy differs from the base model
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return trainer


def _scored_batch(trainer) -> dict:
    rows = [trainer.train_dataset[i] for i in (0, 1) for _ in range(GENERATIONS)]
    trainer.model.train()
    return trainer._generate_and_score_completions(rows)


def test_lora_recipe_turns_the_kl_term_on_with_the_adapter_off_as_reference(lora_trainer,
                                                                            tiny_model_dir: Path
                                                                            ) -> None:
    from trl import GRPOTrainer
    from trl.trainer.utils import add_fused_lm_head, create_model_from_path

    trainer = lora_trainer
    assert trainer.beta == 0.01 and trainer.ref_model is None  # PEFT: adapter-off reference
    batch = _scored_batch(trainer)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    # the reference exactly as TRL builds one when there is no adapter to turn off
    base = create_model_from_path(str(tiny_model_dir), dtype=torch.float32).eval()
    add_fused_lm_head(base, temperature=trainer.temperature,
                      cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32)
    with torch.no_grad():
        expected, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(trainer, base, ids, mask, 1)
        policy, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 1)
    torch.testing.assert_close(batch["ref_per_token_logps"], expected, rtol=1e-4, atol=1e-5)
    assert (policy - expected).abs().max() > 1e-3  # the adapter is on for the policy


def test_logged_kl_is_trls_k3_between_policy_and_adapter_off_reference(lora_trainer) -> None:
    trainer = lora_trainer
    batch = _scored_batch(trainer)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    trainer._metrics["train"]["kl"].clear()
    batch["num_items_in_batch"] = batch["completion_mask"].sum()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train, which is not running
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        policy, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 1)
    delta = batch["ref_per_token_logps"] - policy
    k3 = torch.exp(delta) - delta - 1
    (logged,) = trainer._metrics["train"]["kl"]
    assert logged > 1e-4
    assert logged == pytest.approx(k3.mean().item(), rel=1e-4)
    assert torch.isfinite(loss)
