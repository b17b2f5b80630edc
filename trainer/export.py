"""Export a trained critic as a directory `selfcritic serve --model DIR` serves unchanged.

bf16 safetensors with any LoRA merged, tokenizer and chat template, the base model's
generation config and `selfcritic-export.json` (base model, recipe, steps, rewards). The
directory is staged beside its destination and renamed into place, so an interrupted
export never leaves a directory that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from critic_loop.model_store import make_readable

logger = logging.getLogger(__name__)

METADATA_FILE = "selfcritic-export.json"


def export_model(model: Any, tokenizer: Any, out_dir: str | Path, *,
                 metadata: dict[str, Any], base_dir: str | Path | None = None) -> Path:
    """Write `model` (merged and cast to bf16 in place) and `tokenizer` to `out_dir`."""
    import torch

    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):  # a PeftModel: fold the adapters into the weights
        model = model.merge_and_unload()
    model = model.to(torch.bfloat16)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        _fix_config(staging / "config.json")
        base_generation = Path(base_dir) / "generation_config.json" if base_dir else None
        if base_generation is not None and base_generation.is_file():
            # the base model's decoding defaults, not whatever the trainer sampled with
            shutil.copyfile(base_generation, staging / "generation_config.json")
        _check_complete(staging, tokenizer)
        record = {"format": "selfcritic-critic/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "dtype": "bfloat16", **metadata}
        (staging / METADATA_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
        make_readable(staging)
        _swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Exported the critic to %s", out)
    return out


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, *,
                      metadata: dict[str, Any], base_dir: str | Path | None = None) -> Path:
    """Export a Trainer checkpoint directory (full weights or a LoRA adapter)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = Path(checkpoint)
    if (checkpoint / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    tokenizer_source = checkpoint if (checkpoint / "tokenizer_config.json").is_file() else base_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    return export_model(model, tokenizer, out_dir, metadata=metadata, base_dir=base_dir)


def _fix_config(path: Path) -> None:
    """State bf16 under both the old (`torch_dtype`) and new (`dtype`) key for any reader."""
    config = json.loads(path.read_text())
    config["torch_dtype"] = config["dtype"] = "bfloat16"
    config.pop("_name_or_path", None)
    config["use_cache"] = True  # training may turn the KV cache off; serving wants it
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _check_complete(staging: Path, tokenizer: Any) -> None:
    config = json.loads((staging / "config.json").read_text())
    if not config.get("architectures"):
        raise RuntimeError("export has no architectures in config.json; vLLM could not load it")
    if not list(staging.glob("*.safetensors")):
        raise RuntimeError("export wrote no safetensors weights")
    if not tokenizer.chat_template:
        raise RuntimeError("the tokenizer has no chat template; the server could not judge")


def _swap_into_place(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`, replacing an older export (moved aside, then deleted)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
