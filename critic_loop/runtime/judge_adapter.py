"""A trained critic exported as a judge-only LoRA adapter beside the base weights.

`selfcritic train` with `judge_adapter: true` writes the base model's weights unchanged and
the trained LoRA adapter (PEFT format) in a sub-folder, named under `judge_adapter` in the
export's `selfcritic-export.json`. The engine then runs every judgment with the adapter
(`GenerationRequest.adapter == JUDGE_ADAPTER`) and every answer with the base weights: the
judge is the trained one, the policy is exactly the base model, in one engine and one copy
of the weights. Why: critic RL on a CPU budget moved the policy down as it moved the judge
up (docs/training.md); this keeps the judge's gain and none of the policy's loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from critic_loop.selection.calibration import METADATA_FILE

METADATA_KEY = "judge_adapter"
"""The export metadata entry: `{"path": <sub-folder>}`. The rank is the adapter's own
(`adapter_config.json`), so there is one source of it."""
ADAPTER_FOLDER = "judge-adapter"
"""Where the export writes the adapter, inside the model folder."""
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ranks vLLM can reserve for LoRA (its `max_lora_rank` choices)."""


def lora_slots(on_cpu: bool) -> int:
    """Adapter slots to reserve for the one judge adapter: two on the CPU backend. Its
    LoRA ops (`vllm/lora/ops/torch_ops/lora_ops.py`, vLLM 0.32) index the stacked adapter
    weights with each token's slot, and a token with no adapter has slot -1, which in
    torch is the *last* slot: with one slot, every answer batched beside a judgment would
    run with the judge adapter. A second slot, never filled, stays zero, so -1 adds
    nothing (`tests/integration/test_judge_adapter_engine.py` batches the two). GPU
    kernels skip -1.

    >>> lora_slots(on_cpu=True), lora_slots(on_cpu=False)
    (2, 1)
    """
    return 2 if on_cpu else 1


class JudgeAdapterError(ValueError):
    """The export names a judge adapter that is not there or not usable."""


@dataclass(frozen=True)
class JudgeAdapter:
    """A judge adapter folder and the LoRA rank it needs reserved."""

    path: Path
    rank: int

    @property
    def reserved_rank(self) -> int:
        """The smallest rank vLLM offers that holds this adapter's.

        >>> JudgeAdapter(Path("a"), 12).reserved_rank, JudgeAdapter(Path("a"), 16).reserved_rank
        (16, 16)
        """
        for slot in LORA_RANKS:
            if slot >= self.rank:
                return slot
        raise JudgeAdapterError(f"LoRA rank {self.rank} is above vLLM's largest, "
                                f"{LORA_RANKS[-1]}")


def adapter_rank(config: dict) -> int:
    """The largest LoRA rank a PEFT `adapter_config.json` uses: its `r`, or a larger one
    that `rank_pattern` gives some modules (vLLM must reserve the largest).

    >>> adapter_rank({"r": 8}), adapter_rank({"r": 8, "rank_pattern": {"q_proj": 32}})
    (8, 32)
    """
    return max([int(config["r"]), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def find_judge_adapter(model_dir: str | Path) -> JudgeAdapter | None:
    """The judge adapter a model folder's export metadata names; None when it names none.
    Raises `JudgeAdapterError` when it names one that is missing or malformed (serving the
    base weights as the judge would quietly drop the training)."""
    folder = Path(model_dir)
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise JudgeAdapterError(f"{folder / METADATA_FILE}: {METADATA_KEY} must be "
                                f"{{'path': ...}}, not {entry!r}")
    path = (folder / entry["path"]).resolve()
    config = path / "adapter_config.json"
    try:
        rank = adapter_rank(json.loads(config.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise JudgeAdapterError(f"{folder}: the judge adapter {path} has no usable "
                                f"adapter_config.json ({error!r})") from error
    return JudgeAdapter(path, rank)
