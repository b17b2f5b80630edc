"""The policy curve lands in metrics.jsonl beside the judge curve and on one figure; the
best model by the held-out curve (not the last) is kept, and it is the one exported."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from evaluation.dataset import Question
from trainer.best_checkpoint import BestCheckpoint, export_best, read_best, step_figures
from trainer.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "cpu-critic.yaml"
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"


def test_policy_and_judge_curves_are_written_and_plotted_together(tiny_model_dir: Path,
                                                                  tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from evaluation.curve_plot import plot_curve, read_curve
    from trainer.policy_curve import PolicyCurve
    from trainer.train import train

    recipe = load_recipe(RECIPE, [f"model={tiny_model_dir}", "max_steps=2", "max_train_pairs=8",
                                  "per_device_train_batch_size=32", "bf16=false",
                                  f"output_dir={tmp_path}", "eval_steps=1", "eval_pairs=3",
                                  f"eval_data={HELDOUT}"])
    questions = [Question(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(3)]
    metrics = tmp_path / "metrics.jsonl"
    curve = PolicyCurve(questions, AutoTokenizer.from_pretrained(tiny_model_dir), metrics, 1,
                        max_new_tokens=4)
    result = train(recipe, extra_callbacks=[curve])
    series = read_curve(result.metrics_path)
    policy = series["policy greedy accuracy (held-out)"]
    assert [s for s, _ in policy] == [0, 1, 2] == [s for s, _ in series["held-out accuracy"]]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    measured = [r for r in records if "policy/accuracy" in r]
    assert all(r["policy/questions"] == 3 and 0 <= r["policy/accuracy"] <= 1
               and r["policy/ci95"][0] <= r["policy/accuracy"] <= r["policy/ci95"][1]
               for r in measured)
    assert plot_curve(metrics, tmp_path / "curve.png").stat().st_size > 1000


def test_policy_curve_grades_greedy_answers_with_the_shared_grader(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from critic_loop.answers import grade
    from trainer.policy_curve import PolicyCurve

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    questions = [Question("a", "Say a number.", "7"), Question("b", "Say another.", "3")]
    curve = PolicyCurve(questions, tokenizer, tmp_path / "m.jsonl", 1, max_new_tokens=6)
    right, answers = curve.accuracy(model)
    assert right == sum(grade(a, q.answer) for a, q in zip(answers, questions, strict=True))
    assert answers == curve.accuracy(model)[1]  # greedy: the same answers again
    with pytest.raises(ValueError, match="code question"):
        PolicyCurve([Question("c", "code", "tests", "code")], tokenizer, tmp_path / "m", 1)


class SavingModel:
    """Stands in for the training model: save_pretrained writes a marker of its step."""

    def __init__(self) -> None:
        self.step = 0

    def save_pretrained(self, path: Path, **kwargs: object) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "step.txt").write_text(str(self.step))


def _run(tmp_path: Path, figures: list[dict], **kwargs: object) -> Path:
    metrics, best_dir = tmp_path / "metrics.jsonl", tmp_path / "best"
    callback = BestCheckpoint(metrics, best_dir, **kwargs)
    model = SavingModel()
    for step, values in enumerate(figures):
        with metrics.open("a") as f:
            f.write(json.dumps({"step": step, "loss": 1.0}) + "\n")
            f.write(json.dumps({"step": step, **values}) + "\n")
        model.step = step
        state = SimpleNamespace(global_step=step, is_world_process_zero=True)
        (callback.on_train_begin if step == 0 else callback.on_step_end)(None, state, None,
                                                                        model=model)
    return best_dir


def test_the_best_held_out_step_is_kept_not_the_last(tmp_path: Path) -> None:
    accuracies = [0.50, 0.58, 0.71, 0.64, 0.69]
    best_dir = _run(tmp_path, [{"eval/accuracy": a} for a in accuracies])
    best = read_best(best_dir)
    assert best["step"] == accuracies.index(max(accuracies)) != len(accuracies) - 1
    assert (best_dir / "step.txt").read_text() == str(best["step"])
    assert best["value"] == max(accuracies)
    assert step_figures(tmp_path / "metrics.jsonl", 2) == {"step": 2, "loss": 1.0,
                                                           "eval/accuracy": 0.71}


def test_a_model_whose_policy_fell_too_far_is_not_kept(tmp_path: Path) -> None:
    figures = [{"eval/accuracy": 0.5, "policy/accuracy": 0.40},
               {"eval/accuracy": 0.6, "policy/accuracy": 0.38},
               {"eval/accuracy": 0.8, "policy/accuracy": 0.20}]
    best = read_best(_run(tmp_path, figures, policy_tolerance=0.05))
    assert best["step"] == 1 and best["policy/accuracy"] == 0.38


def test_export_best_exports_the_kept_adapter_merged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    metrics, best_dir = tmp_path / "metrics.jsonl", tmp_path / "best"
    metrics.write_text(json.dumps({"step": 3, "eval/accuracy": 0.7}) + "\n")
    BestCheckpoint(metrics, best_dir).on_step_end(
        None, SimpleNamespace(global_step=3, is_world_process_zero=True), None, model=model)
    expected = model.merge_and_unload().state_dict()
    out = export_best(best_dir, tmp_path / "final", base_dir=tiny_model_dir,
                      metadata={"judge": {"mode": "fast"}, "steps": 9})
    meta = json.loads((out / "selfcritic-export.json").read_text())
    assert meta["steps"] == 3 and meta["best"]["step"] == 3 and meta["judge"]["mode"] == "fast"
    weights = load_file(out / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(weights[name].float(), expected[name].to(torch.bfloat16).float())


def test_a_last_step_measured_only_at_the_end_of_training_is_considered(tmp_path: Path) -> None:
    metrics, best_dir = tmp_path / "metrics.jsonl", tmp_path / "best"
    metrics.write_text(json.dumps({"step": 0, "eval/accuracy": 0.5}) + "\n")
    callback, model = BestCheckpoint(metrics, best_dir), SavingModel()
    state = SimpleNamespace(global_step=0, is_world_process_zero=True)
    callback.on_train_begin(None, state, None, model=model)
    state.global_step = model.step = 7
    callback.on_step_end(None, state, None, model=model)  # not measured at this step
    with metrics.open("a") as f:  # the judge curve measures the last step at train end
        f.write(json.dumps({"step": 7, "eval/accuracy": 0.6}) + "\n")
    callback.on_train_end(None, state, None, model=model)
    assert read_best(best_dir)["step"] == 7
