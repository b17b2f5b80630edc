"""Which weights dtype to run on this hardware when the user says `auto`.

On a CPU without native bf16 arithmetic (no `avx512_bf16`/`amx_bf16` on x86, no `bf16`
on Arm), bf16 weights are emulated: a bf16 model served in float32 ran best-of-8 2.5×
faster on such a CPU, and float32 does not flip greedy near-ties. Where bf16 is native,
the model's own dtype is kept. On a GPU `auto` means vLLM's own choice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
"""/proc/cpuinfo flags meaning the CPU computes in bf16 natively (x86 and Arm spellings)."""
HALF_DTYPES = frozenset({"bfloat16", "float16", "half", "bf16", "fp16"})


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype handed to the engine and why, for the start-up log."""

    dtype: str
    reason: str


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (`flags` on x86, `Features` on Arm); empty if unreadable."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in {"flags", "features"}:
            return frozenset(value.split())
    return frozenset()


def choose_dtype(requested: str, *, on_cpu: bool, model_dtype: str | None,
                 flags: Iterable[str] = ()) -> DtypeChoice:
    """The dtype to serve with: `requested` unless it is `auto` on a CPU.

    >>> choose_dtype("auto", on_cpu=True, model_dtype="bfloat16", flags=["avx2"]).dtype
    'float32'
    >>> choose_dtype("auto", on_cpu=True, model_dtype="bfloat16", flags=["avx512_bf16"]).dtype
    'auto'
    >>> choose_dtype("bfloat16", on_cpu=True, model_dtype="bfloat16", flags=[]).dtype
    'bfloat16'
    >>> choose_dtype("auto", on_cpu=False, model_dtype="bfloat16").dtype
    'auto'
    """
    if requested != "auto":
        return DtypeChoice(requested, f"--dtype {requested} was asked for")
    if not on_cpu:
        return DtypeChoice("auto", "GPU: vLLM picks the model's own dtype")
    native = sorted(NATIVE_BF16_FLAGS.intersection(flags))
    if model_dtype not in HALF_DTYPES:
        return DtypeChoice("auto", f"the model is stored in {model_dtype or 'an unknown dtype'}")
    if native:
        return DtypeChoice("auto", f"this CPU has native bf16 ({', '.join(native)}): "
                                   f"keeping the model's {model_dtype}")
    return DtypeChoice("float32", f"this CPU has no native bf16 (no avx512_bf16/amx_bf16): "
                                  f"{model_dtype} would be emulated, float32 is faster and exact")


def model_dtype(model_dir: str | Path) -> str | None:
    """The dtype a Hugging Face directory's config.json declares (`dtype` or `torch_dtype`)."""
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    if value is None and isinstance(config.get("text_config"), dict):
        value = config["text_config"].get("dtype") or config["text_config"].get("torch_dtype")
    return str(value) if value else None


def resolve_dtype(requested: str, model_dir: str | Path, *, on_cpu: bool) -> DtypeChoice:
    """`choose_dtype` for a model directory on this machine, logged with its reason."""
    choice = choose_dtype(requested, on_cpu=on_cpu, model_dtype=model_dtype(model_dir),
                          flags=cpu_flags() if on_cpu else ())
    logger.info("Serving dtype %s: %s", choice.dtype, choice.reason)
    return choice


def choose_training_bf16(requested: bool, *, on_cpu: bool, flags: Iterable[str] = ()) -> DtypeChoice:
    """Whether training runs bf16 autocast: as the recipe asks, except on a CPU without
    native bf16, where autocast would emulate bf16 and train in float32 instead.

    >>> choose_training_bf16(True, on_cpu=True, flags=["avx2"]).dtype
    'float32'
    >>> choose_training_bf16(True, on_cpu=True, flags=["amx_bf16"]).dtype
    'bfloat16'
    """
    if not requested:
        return DtypeChoice("float32", "the recipe sets bf16: false")
    if not on_cpu:
        return DtypeChoice("bfloat16", "the recipe sets bf16: true")
    native = sorted(NATIVE_BF16_FLAGS.intersection(flags))
    if native:
        return DtypeChoice("bfloat16", f"this CPU has native bf16 ({', '.join(native)})")
    return DtypeChoice("float32", "this CPU has no native bf16 (no avx512_bf16/amx_bf16): "
                                  "bf16 autocast would be emulated, so training runs in float32")


def resolve_training_bf16(requested: bool, *, on_cpu: bool) -> bool:
    """`choose_training_bf16` on this machine, logged with its reason."""
    choice = choose_training_bf16(requested, on_cpu=on_cpu, flags=cpu_flags() if on_cpu else ())
    logger.info("Training dtype %s: %s", choice.dtype, choice.reason)
    return choice.dtype == "bfloat16"
