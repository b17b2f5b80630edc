"""Recipes: the shipped YAML files, `--set` overrides, and errors that say what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.recipe import Recipe, RecipeError, build_recipe, describe_fields, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_paper_recipe_has_the_papers_settings() -> None:
    r = load_recipe(RECIPES / "paper.yaml")
    g = r.grpo
    assert (g["num_generations"], g["beta"], g["learning_rate"], g["temperature"], g["top_p"]) == \
        (8, 0.01, 1e-6, 1.0, 0.99)
    assert (g["max_completion_length"], g["weight_decay"], g["warmup_steps"],
            g["max_grad_norm"]) == (2048, 0.01, 0, 1.0)
    assert g["use_vllm"] and g["bf16"] and r.reward_weights == [0.9, 0.1]
    assert r.rewards == ["preference", "format"]


def test_cpu_demo_recipe_targets_the_small_built_in_model_on_cpu() -> None:
    r = load_recipe(RECIPES / "cpu-demo.yaml")
    assert r.model == "smollm2-135m-instruct" and r.grpo["use_cpu"]
    assert not r.grpo["bf16"] and not r.grpo["use_vllm"]
    assert Path(r.train_data) == Path("data/demo/train.jsonl")


def test_overrides_are_typed_and_applied_in_order() -> None:
    r = load_recipe(RECIPES / "cpu-demo.yaml", [
        "max_steps=7", "learning_rate=3e-5", "lora=true", "rewards=preference,format,verdict",
        "reward_weights=[0.8, 0.1, 0.1]", "export_dir=/tmp/x", "max_steps=9",
        "extra_args.mask_truncated_completions=true", "save_total_limit=null"])
    assert r.grpo["max_steps"] == 9 and r.grpo["learning_rate"] == 3e-5 and r.lora is True
    assert r.rewards == ["preference", "format", "verdict"]
    assert r.reward_weights == [0.8, 0.1, 0.1]
    assert r.final_dir == Path("/tmp/x") and r.grpo["mask_truncated_completions"] is True
    assert r.grpo["save_total_limit"] is None


def test_grpo_section_overrides_win_in_order_over_either_layout(tmp_path: Path) -> None:
    """`--set grpo.beta=...` and the flat `--set beta=...` name the same GRPOConfig field;
    the last one given wins over the file, whichever layout the file uses."""
    r = load_recipe(RECIPES / "cpu-demo.yaml", ["beta=0.5", "grpo.beta=0.25"])
    assert r.grpo["beta"] == 0.25
    assert load_recipe(RECIPES / "cpu-demo.yaml", ["grpo.beta=0.25", "beta=0.5"]).grpo["beta"] == 0.5
    flat = tmp_path / "flat.yaml"
    flat.write_text("beta: 0.3\nmax_steps: 4\nextra_args:\n  mask_truncated_completions: true\n")
    old = load_recipe(flat, ["max_steps=5"])
    assert (old.grpo["beta"], old.grpo["max_steps"], old.grpo["mask_truncated_completions"]) == \
        (0.3, 5, True)


def test_unknown_grpo_field_lists_trls_fields() -> None:
    pytest.importorskip("trl")
    with pytest.raises(RecipeError, match=r"unknown GRPOConfig field grpo\.learnin_rate "
                                          r"\(did you mean learning_rate.*allowed: .*beta"):
        load_recipe(RECIPES / "cpu-demo.yaml", ["grpo.learnin_rate=1e-5"])


def test_every_field_is_overridable() -> None:
    defaults = Recipe()
    values = {name: value for name, value in defaults.to_dict().items() if name != "grpo"}
    values.update({f"grpo.{name}": value for name, value in defaults.grpo.items()})
    for name, value in values.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if value is None:
            text = "null"
        recipe = load_recipe(None, [f"{name}={text}"])
        section, _, key = name.rpartition(".")
        got = recipe.grpo[key] if section else getattr(recipe, key)
        assert got == value, name


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
    recipe = Recipe()
    for name in recipe.to_dict():
        if name != "grpo":
            assert f"  {name} (default" in text
    for name in recipe.grpo:
        assert f"  grpo.{name} (default" in text


def test_training_dtype_follows_the_cpu() -> None:
    """bf16 autocast is kept where the CPU computes bf16 natively, float32 elsewhere."""
    from critic_loop.runtime.dtype_policy import choose_training_bf16

    assert choose_training_bf16(True, on_cpu=True, flags={"avx2", "fma"}).dtype == "float32"
    assert choose_training_bf16(True, on_cpu=True, flags={"avx512_bf16"}).dtype == "bfloat16"
    assert choose_training_bf16(True, on_cpu=False).dtype == "bfloat16"
    assert choose_training_bf16(False, on_cpu=True, flags={"amx_bf16"}).dtype == "float32"
