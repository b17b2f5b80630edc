"""Export: bf16 safetensors with LoRA merged, tokenizer, metadata, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.export import METADATA_FILE, export_checkpoint, export_model


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
