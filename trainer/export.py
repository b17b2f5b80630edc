"""Export a trained critic as a directory `selfcritic serve --model DIR` serves unchanged.

bf16 safetensors with any LoRA merged (or, with `judge_adapter`, the base weights and the
LoRA apart, as an adapter only judgments run with: `critic_loop.runtime.judge_adapter`),
tokenizer and chat template (and, for a vision-language model, its processor: image
processor config and processor chat template, so the server renders and measures images as
training did), the base model's generation config and `selfcritic-export.json` (base
model, recipe, steps, rewards, and under `judge` the judge mode and prompt it was trained
with). The directory is staged beside its destination and renamed into place, so an
interrupted export never leaves a directory that looks complete.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from critic_loop.judge_prompt import JUDGE_INSTRUCTION, JudgeMode, judge_text
from critic_loop.runtime.judge_adapter import ADAPTER_FOLDER
from critic_loop.runtime.judge_adapter import METADATA_KEY as JUDGE_ADAPTER_KEY
from critic_loop.runtime.model_store import make_readable, swap_into_place

logger = logging.getLogger(__name__)

METADATA_FILE = "selfcritic-export.json"


def judge_metadata(mode: JudgeMode | str) -> dict[str, str]:
    """The judge a critic was trained as, for the export's `judge` entry.

    `template` is the judge prompt's text for `mode` with the placeholders `{question}`,
    `{response_1}` and `{response_2}` (built by `critic_loop.judge_prompt.judge_text`, so
    it is the text training used), and `prompt_sha256` its SHA-256: any change to the
    instruction, the layout or the mode's suffix changes it.

    >>> meta = judge_metadata("fast")
    >>> meta["mode"], len(meta["prompt_sha256"]), "{response_2}" in meta["template"]
    ('fast', 64, True)
    """
    mode = JudgeMode(mode)
    template = judge_text("{question}", "{response_1}", "{response_2}", mode)
    return {"mode": mode.value, "prompt_sha256": hashlib.sha256(template.encode()).hexdigest(),
            "instruction": JUDGE_INSTRUCTION, "template": template}


def export_model(model: Any, tokenizer: Any, out_dir: str | Path, *,
                 metadata: dict[str, Any], base_dir: str | Path | None = None,
                 state_dict: Mapping[str, Any] | None = None,
                 judge_adapter: bool = False) -> Path:
    """Write `model` (merged and cast to bf16 in place) and `tokenizer` to `out_dir`.

    With `judge_adapter` (a LoRA model only), the adapter is written apart, in
    `ADAPTER_FOLDER`, and the weights written are the base model's, unmerged.

    `tokenizer` is the model's processing class: a tokenizer, or a vision-language model's
    processor, which writes its tokenizer, image processor and chat template together.

    With `state_dict` (the full weights, e.g. `Accelerator.get_state_dict` gathered from
    every process under DDP, FSDP or DeepSpeed) `model` only gives the architecture and any
    LoRA configuration: the weights written are `state_dict`'s, loaded into a fresh copy,
    so a model whose parameters are sharded across processes exports whole.
    """
    import torch

    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:
        model = _with_weights(model, state_dict)
    if judge_adapter and not hasattr(model, "merge_and_unload"):
        raise ValueError("a judge adapter export needs a LoRA model (recipe lora: true)")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        if judge_adapter:
            model.save_pretrained(staging / ADAPTER_FOLDER, safe_serialization=True)
            metadata = {**metadata, JUDGE_ADAPTER_KEY: {"path": ADAPTER_FOLDER}}
            model = model.unload()  # the base weights, the adapters taken out unmerged
        elif hasattr(model, "merge_and_unload"):  # a PeftModel: fold the adapters in
            model = model.merge_and_unload()
        model = model.to(torch.bfloat16)
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
        swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Exported the critic to %s", out)
    return out


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, *,
                      metadata: dict[str, Any], base_dir: str | Path | None = None,
                      judge_adapter: bool = False) -> Path:
    """Export a Trainer checkpoint directory (full weights or a LoRA adapter). A
    vision-language checkpoint is loaded as one, and exported with its processor."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    checkpoint = Path(checkpoint)
    if (checkpoint / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    elif is_vision_language(checkpoint):
        model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    source = checkpoint if (checkpoint / "tokenizer_config.json").is_file() else base_dir
    return export_model(model, load_processing_class(source), out_dir, metadata=metadata,
                        base_dir=base_dir, judge_adapter=judge_adapter)


PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
"""Files that say a directory holds a processor (an image processor beside the tokenizer)."""


def is_vision_language(model_dir: str | Path) -> bool:
    """Whether `model_dir`'s config has a vision tower (LLaVA, Qwen2.5-VL, ...)."""
    config = Path(model_dir) / "config.json"
    return config.is_file() and "vision_config" in json.loads(config.read_text())


def load_processing_class(source: str | Path | None) -> Any:
    """The processor where `source` has one (a vision-language model), else its tokenizer."""
    from transformers import AutoProcessor, AutoTokenizer

    if source is not None and any((Path(source) / f).is_file() for f in PROCESSOR_FILES):
        return AutoProcessor.from_pretrained(source)
    return AutoTokenizer.from_pretrained(source)


def _with_weights(model: Any, state_dict: Mapping[str, Any]) -> Any:
    """A copy of `model`'s architecture (a PeftModel keeps its adapters) holding
    `state_dict`'s tensors, which it shares rather than copies.

    Parameters are created on the meta device and replaced by the state dict's tensors, so
    nothing is initialised or allocated twice; buffers are built for real. The class is
    called directly, not through `_from_config`, which under DeepSpeed ZeRO-3 would
    partition the copy: a collective step, and only the main process is here.
    """
    from accelerate import init_empty_weights

    is_peft = hasattr(model, "get_base_model") and hasattr(model, "peft_config")
    base = model.get_base_model() if is_peft else model
    with init_empty_weights(include_buffers=False):
        fresh = _own_class(base)(copy.deepcopy(base.config))
        if is_peft:
            (name, first), *others = model.peft_config.items()
            fresh = _own_class(model)(fresh, copy.deepcopy(first), adapter_name=name)
            for name, config in others:
                fresh.add_adapter(name, copy.deepcopy(config))
    # Not strict: a gatherer may list a tied weight (lm_head = embeddings) once; tying
    # restores it, and any parameter still on the meta device is a real gap.
    _, unexpected = fresh.load_state_dict(dict(state_dict), strict=False, assign=True)
    (fresh.get_base_model() if is_peft else fresh).tie_weights()
    missing = [n for n, p in fresh.named_parameters() if p.is_meta]
    if missing or unexpected:
        raise RuntimeError(f"the gathered weights do not fit {type(base).__name__}: "
                           f"missing {missing[:3]}, unexpected {list(unexpected)[:3]}")
    return fresh.eval()


def _own_class(module: Any) -> type:
    """The module's own class: FSDP2's `fully_shard` swaps in a subclass `FSDP<Name>`."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return type(module)
    return next(c for c in type(module).__mro__ if not issubclass(c, FSDPModule))


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
    if "vision_config" in config and not any((staging / f).is_file() for f in PROCESSOR_FILES):
        raise RuntimeError("a vision-language model was exported without its processor; the "
                           "server could not read images (export with the model's AutoProcessor)")
