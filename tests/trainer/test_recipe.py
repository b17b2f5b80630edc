"""Recipes: the shipped YAML files, `--set` overrides, and errors that say what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.recipe import Recipe, RecipeError, build_recipe, describe_fields, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_paper_recipe_has_the_papers_settings() -> None:
    r = load_recipe(RECIPES / "paper.yaml")
    assert (r.num_generations, r.beta, r.learning_rate, r.temperature, r.top_p) == \
        (8, 0.01, 1e-6, 1.0, 0.99)
    assert (r.max_completion_length, r.weight_decay, r.warmup_steps, r.max_grad_norm) == \
        (2048, 0.01, 0, 1.0)
    assert r.use_vllm and r.bf16 and r.reward_weights == [0.9, 0.1]
    assert r.rewards == ["preference", "format"]


def test_cpu_demo_recipe_targets_the_small_built_in_model_on_cpu() -> None:
    r = load_recipe(RECIPES / "cpu-demo.yaml")
    assert r.model == "smollm2-135m-instruct" and r.use_cpu and not r.bf16 and not r.use_vllm
    assert Path(r.train_data) == Path("data/demo/train.jsonl")


def test_overrides_are_typed_and_applied_in_order() -> None:
    r = load_recipe(RECIPES / "cpu-demo.yaml", [
        "max_steps=7", "learning_rate=3e-5", "lora=true", "rewards=preference,format,verdict",
        "reward_weights=[0.8, 0.1, 0.1]", "export_dir=/tmp/x", "max_steps=9",
        "extra_args.logging_dir=tb", "save_total_limit=null"])
    assert r.max_steps == 9 and r.learning_rate == 3e-5 and r.lora is True
    assert r.rewards == ["preference", "format", "verdict"]
    assert r.reward_weights == [0.8, 0.1, 0.1]
    assert r.final_dir == Path("/tmp/x") and r.extra_args == {"logging_dir": "tb"}
    assert r.save_total_limit is None


def test_every_field_is_overridable() -> None:
    defaults = Recipe()
    for name in defaults.to_dict():
        if name == "extra_args":
            continue
        value = getattr(defaults, name)
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if value is None:
            text = "null"
        assert getattr(load_recipe(None, [f"{name}={text}"]), name) == value, name


@pytest.mark.parametrize(("override", "message"), [
    ("loss_type=ppo", "allowed: grpo, dr_grpo, dapo, bnpo"),
    ("rewards=preference,length", "allowed: preference, format, verdict"),
    ("learnin_rate=1e-5", "unknown recipe field 'learnin_rate'; allowed: model,"),
    ("max_steps=many", "max_steps: 'many' is not a valid int"),
    ("num_generations=3", "multiple of num_generations"),
    ("reward_weights=[1.0]", "one weight per reward"),
    ("lora=maybe", "lora: 'maybe' is not a valid bool"),
    ("max_steps", "--set wants key=value"),
])
def test_invalid_values_name_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")):
        load_recipe(RECIPES / "cpu-demo.yaml", [override])


def test_unknown_yaml_key_and_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("modle: default\n")
    with pytest.raises(RecipeError, match="unknown recipe field 'modle'"):
        load_recipe(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")


def test_grpo_config_gets_every_setting() -> None:
    from trainer.train import grpo_config

    r = build_recipe({"num_generations": 4, "per_device_train_batch_size": 4,
                      "use_cpu": True, "bf16": False, "beta": 0.02,
                      "extra_args": {"mask_truncated_completions": True}})
    config = grpo_config(r)
    assert (config.num_generations, config.beta, config.top_p) == (4, 0.02, 0.99)
    assert config.reward_weights == [0.9, 0.1] and config.mask_truncated_completions
    assert config.remove_unused_columns is False and config.use_cpu


def test_help_lists_every_field_with_its_help() -> None:
    text = describe_fields()
    for name in Recipe().to_dict():
        assert f"  {name} (default" in text


def test_training_dtype_follows_the_cpu() -> None:
    """bf16 autocast is kept where the CPU computes bf16 natively, float32 elsewhere."""
    from critic_loop.dtype_policy import choose_training_bf16

    assert choose_training_bf16(True, on_cpu=True, flags={"avx2", "fma"}).dtype == "float32"
    assert choose_training_bf16(True, on_cpu=True, flags={"avx512_bf16"}).dtype == "bfloat16"
    assert choose_training_bf16(True, on_cpu=False).dtype == "bfloat16"
    assert choose_training_bf16(False, on_cpu=True, flags={"amx_bf16"}).dtype == "float32"
