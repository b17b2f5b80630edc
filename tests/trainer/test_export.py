"""Export: bf16 safetensors with LoRA merged, tokenizer, metadata (with the judge trained),
written atomically, from a model or from a gathered state dict."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from critic_loop.judge_prompt import JUDGE_INSTRUCTION, judge_text
from trainer.export import METADATA_FILE, export_checkpoint, export_model, judge_metadata

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load(tiny_model_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def test_export_is_servable_bf16_with_metadata(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_model_dir)
    out = export_model(model, tokenizer, tmp_path / "final", base_dir=tiny_model_dir,
                       metadata={"base_model": "tiny", "steps": 3})
    config = json.loads((out / "config.json").read_text())
    assert config["torch_dtype"] == config["dtype"] == "bfloat16"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["base_model"] == "tiny" and meta["steps"] == 3
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.dtype == torch.bfloat16
    assert AutoTokenizer.from_pretrained(out).chat_template == tokenizer.chat_template
    assert not list(tmp_path.glob(".final.*"))  # no staging left behind
    assert out.stat().st_mode & 0o055  # readable by others (mkdtemp would make it 0700)


def test_export_keeps_the_base_models_sampling_defaults(tiny_model_dir: Path,
                                                        tmp_path: Path) -> None:
    """The server reads them from generation_config.json: an export serves with the base
    model's defaults, not whatever the trainer sampled with."""
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    generation = {**json.loads((base / "generation_config.json").read_text()),
                  "do_sample": True, "temperature": 0.7, "top_k": 20}
    (base / "generation_config.json").write_text(json.dumps(generation))
    model, tokenizer = load(tiny_model_dir)
    model.generation_config.update(do_sample=True, temperature=1.3)  # as a trainer may leave it
    out = export_model(model, tokenizer, tmp_path / "final", base_dir=base, metadata={})
    assert json.loads((out / "generation_config.json").read_text()) == generation


def test_lora_is_merged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # make the adapter change the weights
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        expected = peft_model(ids).logits
    out = export_model(peft_model, tokenizer, tmp_path / "merged", metadata={})
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in name for name in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, expected, atol=0.05, rtol=0.05)


def test_a_failed_export_leaves_the_previous_one_intact(tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:
    model, tokenizer = load(tiny_model_dir)
    out = export_model(model, tokenizer, tmp_path / "final", metadata={"steps": 1})

    class Broken:
        chat_template = "x"

        def save_pretrained(self, path: Path) -> None:
            (Path(path) / "tokenizer.json").write_text("{")
            raise OSError("disk full")

    model, _ = load(tiny_model_dir)
    with pytest.raises(OSError, match="disk full"):
        export_model(model, Broken(), out, metadata={"steps": 2})
    assert json.loads((out / METADATA_FILE).read_text())["steps"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_export_from_a_checkpoint_directory(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = export_checkpoint(tiny_model_dir, tmp_path / "from-ckpt", metadata={"steps": 5},
                            base_dir=tiny_model_dir)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def tiny_config(tiny_model_dir: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(tiny_model_dir)


def test_export_from_a_gathered_state_dict(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Under FSDP or ZeRO-3 the main process's own model holds only a shard: the export
    takes the architecture from it and every weight from the gathered state dict."""
    from transformers import LlamaForCausalLM

    trained, tokenizer = load(tiny_model_dir)
    with torch.device("meta"):  # a model with no weights of its own, as a sharded one
        shard = LlamaForCausalLM(tiny_config(tiny_model_dir))
    out = export_model(shard, tokenizer, tmp_path / "final", metadata={},
                       state_dict=trained.state_dict())
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[name], value.to(torch.bfloat16).float())


def test_lora_is_merged_from_a_gathered_state_dict(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model, tokenizer = load(tiny_model_dir)
    trained = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    for name, param in trained.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        expected = trained(ids).logits
    with torch.device("meta"):
        shard = get_peft_model(LlamaForCausalLM(tiny_config(tiny_model_dir)),
                               LoraConfig(r=4, target_modules="all-linear"))
    out = export_model(shard, tokenizer, tmp_path / "merged", metadata={},
                       state_dict=trained.state_dict())
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in name for name in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, expected, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("mode", ["fast", "reason"])
def test_judge_metadata_names_the_prompt_trained_on(mode: str) -> None:
    meta = judge_metadata(mode)
    template = judge_text("{question}", "{response_1}", "{response_2}", mode)
    assert meta == {"mode": mode, "prompt_sha256": hashlib.sha256(template.encode()).hexdigest(),
                    "instruction": JUDGE_INSTRUCTION, "template": template}
    assert judge_metadata("fast")["prompt_sha256"] != judge_metadata("reason")["prompt_sha256"]


def test_export_only_records_the_judge(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`selfcritic train --export-only` writes the same `judge` entry as a training run."""
    from selfcritic.cli import main

    checkpoint = tmp_path / "run" / "checkpoint-3"
    shutil.copytree(tiny_model_dir, checkpoint)
    (checkpoint / "trainer_state.json").write_text("{}")
    assert main(["train", str(RECIPES / "cpu-demo-fast.yaml"), "--export-only", "--set",
                 f"model={tiny_model_dir}", "--set", f"output_dir={tmp_path / 'run'}"]) == 0
    meta = json.loads((tmp_path / "run" / "final" / METADATA_FILE).read_text())
    assert meta["judge"] == judge_metadata("fast") and meta["steps"] == 3


def test_weights_that_do_not_fit_are_an_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_model_dir)
    weights = {k: v for k, v in model.state_dict().items() if "layers.1." not in k}
    with pytest.raises(RuntimeError, match=r"do not fit LlamaForCausalLM: missing \['model.layers.1"):
        export_model(model, tokenizer, tmp_path / "final", metadata={}, state_dict=weights)
    assert not (tmp_path / "final").exists()


def test_a_tied_weight_gathered_once_is_tied_again(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load(tiny_model_dir)
    weights = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    out = export_model(model, tokenizer, tmp_path / "final", metadata={}, state_dict=weights)
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    torch.testing.assert_close(exported.lm_head.weight,
                               model.model.embed_tokens.weight.to(torch.bfloat16).float())


def test_a_calibration_round_trips_through_an_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    from critic_loop.selection.calibration import Calibration, read_calibration
    from server.model_defaults import with_model_defaults
    from server.settings import ServerSettings

    calibration = Calibration("league", False, 0.5, judge="fast",
                              figures={"accuracy": 0.4, "data": "data/tasks/train.jsonl"})
    model, tokenizer = load(tiny_model_dir)
    out = export_model(model, tokenizer, tmp_path / "final", metadata={
        "judge": judge_metadata("reason"), "selection": calibration.to_dict()})
    assert read_calibration(out) == calibration
    served = with_model_defaults(ServerSettings(), out)
    assert (served.select, served.judge) == ("league", "fast")


def test_a_judge_adapter_export_keeps_the_base_weights_and_the_adapter_apart(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    from critic_loop.runtime.judge_adapter import find_judge_adapter

    model, tokenizer = load(tiny_model_dir)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        base_logits = model(ids).logits
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    with torch.no_grad():
        adapted_logits = peft_model(ids).logits
    out = export_model(peft_model, tokenizer, tmp_path / "final", metadata={"steps": 2},
                       judge_adapter=True)
    served = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert not any("lora" in name for name in served.state_dict())
    with torch.no_grad():  # the policy is the base model, to bf16 rounding
        torch.testing.assert_close(served(ids).logits, base_logits, atol=0.05, rtol=0.05)
    adapter = find_judge_adapter(out)
    assert adapter is not None and adapter.rank == 4 and adapter.path.parent == out.resolve()
    judge = PeftModel.from_pretrained(served, adapter.path)
    with torch.no_grad():  # the judge is the trained model
        torch.testing.assert_close(judge(ids).logits, adapted_logits, atol=0.05, rtol=0.05)
    assert json.loads((out / METADATA_FILE).read_text())["judge_adapter"] == {
        "path": "judge-adapter"}


def test_a_judge_adapter_export_needs_a_lora_model(tiny_model_dir: Path,
                                                    tmp_path: Path) -> None:
    model, tokenizer = load(tiny_model_dir)
    with pytest.raises(ValueError, match="LoRA"):
        export_model(model, tokenizer, tmp_path / "final", metadata={}, judge_adapter=True)
    assert not (tmp_path / "final").exists()
