"""The one-token GRPO trainer computes what TRL's GRPOTrainer computes, once per prompt.

Parity with TRL's own log-probability path (values and gradients), positions that match
an unpadded (served) prompt, rollouts restricted to the verdict tokens at the right
frequencies, and a short end-to-end fast-mode training run that exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from evaluation.pairs import load_pairs
from trainer.data import to_grpo_dataset
from trainer.recipe import load_recipe
from trainer.train import fast_verdict_token_ids, grpo_config

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "cpu-critic.yaml"
DEMO = REPO / "data" / "demo" / "train.jsonl"


@pytest.fixture(scope="module")
def trainer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from trl import GRPOTrainer  # noqa: F401  (imported first: TRL patches the model class)

    from trainer.one_token_grpo import OneTokenGRPOTrainer
    from trainer.rewards import get_rewards

    recipe = load_recipe(RECIPE, [f"model={tiny_model_dir}", "lora=false", "bf16=false",
                                  "num_generations=4", "per_device_train_batch_size=8",
                                  "temperature=0.7",
                                  f"output_dir={tmp_path_factory.mktemp('one-token')}"])
    pairs = load_pairs(DEMO, seed=0).pairs[:4]
    return OneTokenGRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=get_rewards(recipe.rewards),
        args=grpo_config(recipe), train_dataset=to_grpo_dataset(pairs, "fast"),
        verdict_token_ids=fast_verdict_token_ids(tiny_model_dir))


def batch(trainer, prompts: list[list[int]], tokens: list[int]) -> tuple[torch.Tensor, ...]:
    ids = torch.tensor([[*p, t] for p, t in zip(prompts, tokens, strict=True)])
    return ids, torch.ones_like(ids)


def test_log_probs_and_gradients_match_trls_path(trainer) -> None:
    from trl import GRPOTrainer

    torch.manual_seed(1)
    distinct = [torch.randint(100, 1000, (12,)).tolist() for _ in range(3)]
    prompts = [distinct[i] for i in (0, 0, 1, 2, 1, 0)]  # copies, as GRPO groups have them
    tokens = [33, 34, 34, 33, 33, 34]
    ids, mask = batch(trainer, prompts, tokens)

    def run(method) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        trainer.model.zero_grad()
        logps, entropies, _ = method(trainer, trainer.model, ids, mask, 1, compute_entropy=True)
        (logps * torch.linspace(-1, 1, len(tokens))[:, None]).sum().backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()
                 if p.grad is not None}
        return logps.detach(), entropies.detach(), grads

    ours = run(type(trainer)._get_per_token_logps_and_entropies)
    trls = run(GRPOTrainer._get_per_token_logps_and_entropies)
    assert ours[0].shape == trls[0].shape == (len(tokens), 1)
    torch.testing.assert_close(ours[0], trls[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours[1], trls[1], rtol=1e-4, atol=1e-5)
    assert ours[2].keys() == trls[2].keys() and ours[2]
    for name, grad in ours[2].items():
        torch.testing.assert_close(grad, trls[2][name], rtol=1e-3, atol=1e-6, msg=name)


def test_a_left_padded_prompt_scores_as_the_unpadded_prompt_is_served(trainer) -> None:
    torch.manual_seed(2)
    short, long = torch.randint(100, 1000, (5,)).tolist(), torch.randint(100, 1000, (9,)).tolist()
    pad = trainer._tokenizer.pad_token_id or 0
    ids = torch.tensor([[pad] * 4 + short + [33], [*long, 34]])
    mask = torch.tensor([[0] * 4 + [1] * 6, [1] * 10])
    padded, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 1)
    alone, _, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, torch.tensor([[*short, 33]]), torch.ones(1, 6, dtype=torch.long), 1)
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-4, atol=1e-5)


def test_rollouts_are_verdict_tokens_at_the_restricted_softmax_frequencies(trainer) -> None:
    torch.manual_seed(3)
    prompt = torch.randint(100, 1000, (10,)).tolist()
    completions, logprobs = trainer._generate_single_turn([prompt] * 4000, None, None, 4000)
    assert logprobs is None and all(len(c) == 1 for c in completions)
    allowed = trainer.allowed_token_ids
    assert {c[0] for c in completions} <= set(allowed.tolist())
    with torch.no_grad():
        logits = trainer.model(input_ids=torch.tensor([prompt])).logits[0, -1]
    expected = torch.softmax(logits[allowed] / trainer.temperature, dim=-1)[0].item()
    share = sum(c[0] == allowed[0].item() for c in completions) / len(completions)
    assert abs(share - expected) < 4 * (expected * (1 - expected) / len(completions)) ** 0.5 + 1e-3


def test_verdict_logps_are_the_restricted_softmax_the_rollouts_sample(trainer) -> None:
    torch.manual_seed(5)
    prompt = torch.randint(100, 1000, (10,)).tolist()
    allowed = trainer.allowed_token_ids.tolist()
    ids, mask = batch(trainer, [prompt] * len(allowed), allowed)
    whole, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 1)
    trainer.verdict_logps = True
    try:
        verdicts, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 1)
    finally:
        trainer.verdict_logps = False
    torch.testing.assert_close(verdicts.exp().sum(), torch.tensor(1.0))  # a distribution
    # over the allowed tokens: the whole-vocabulary values renormalised
    torch.testing.assert_close(verdicts, whole - torch.logsumexp(whole, dim=0))


def test_verdict_logps_need_the_one_token_judge() -> None:
    from trainer.recipe import RecipeError

    with pytest.raises(RecipeError, match="verdict_logps"):
        load_recipe(RECIPE, ["verdict_logps=true", "judge_mode=reason",
                             "max_completion_length=64", "pair_baseline=false"])


@pytest.mark.parametrize("pair_baseline", [False, True])
def test_fast_recipe_trains_and_exports_with_the_one_token_trainer(tiny_model_dir: Path,
                                                                   tmp_path: Path,
                                                                   pair_baseline: bool) -> None:
    from evaluation.curve_plot import plot_curve, read_curve
    from trainer.train import train

    recipe = load_recipe(RECIPE, [f"model={tiny_model_dir}", "max_steps=2", "max_train_pairs=8",
                                  "per_device_train_batch_size=32", "bf16=false",
                                  f"output_dir={tmp_path}", "eval_steps=1", "eval_pairs=3",
                                  f"pair_baseline={pair_baseline}"])
    result = train(recipe)
    curve = read_curve(result.metrics_path)["held-out accuracy"]
    assert [step for step, _ in curve] == [0, 1, 2] and all(0 <= a <= 1 for _, a in curve)
    assert plot_curve(result.metrics_path, tmp_path / "curve.png").stat().st_size > 1000
    assert result.steps == 2 and (result.export_dir / "config.json").is_file()
    metadata = json.loads((result.export_dir / "selfcritic-export.json").read_text())
    assert metadata["judge"]["mode"] == "fast"
    steps = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    rewards = [s["reward"] for s in steps if "reward" in s]
    assert rewards and all(0 <= r <= 1 for r in rewards)
    assert all(s["completions/mean_length"] == 1 for s in steps if "completions/mean_length" in s)


def test_held_out_verdicts_read_both_orders_against_the_label() -> None:
    from evaluation.critic_curve import _verdict
    from evaluation.pairs import PreferencePair

    right_first = PreferencePair("Q", "right", "wrong", 1)
    # P("1") = 0.8 as given (says 1: right); swapped, P("1") = 0.3 (says 2: "right" again)
    v = _verdict(right_first, 0.8, 0.3)
    assert (v.as_given, v.swapped) == (1, 1)
    assert v.probabilities == pytest.approx((0.8, 0.7))
    wrong_first = PreferencePair("Q", "wrong", "right", 2)
    v = _verdict(wrong_first, 0.9, 0.9)  # always "1": right once, wrong once
    assert (v.as_given, v.swapped) == (1, 2) and v.probabilities == pytest.approx((0.1, 0.9))
    assert _verdict(wrong_first, 0.5, 0.2).as_given is None


def test_pair_baseline_groups_both_orders_of_each_pair_in_one_step(trainer) -> None:
    """With shuffling off, each step's prompts are whole pairs in both orders."""
    from trainer.train import train  # noqa: F401  (the recipe path the test above runs)

    rows = to_grpo_dataset(load_pairs(DEMO, seed=0).pairs[:6], "fast")
    ids = rows["pair_id"]
    assert ids == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r for r in rows["label"]] == [p for pair in zip(rows["label"][::2],
                                                           [3 - x for x in rows["label"][::2]],
                                                           strict=True) for p in pair]
