"""A model's own sampling defaults, read from its `generation_config.json` as vLLM's
`--generation-config` does, and applied to the sampling fields a request leaves unset.

vLLM's server reads the same keys (`ModelConfig.get_diff_sampling_param`: the penalties,
temperature, top_k, top_p, min_p, and max_new_tokens as the default max_tokens) and fills
each field a request omits with the model's value, else its own neutral default. `do_sample`
is ignored there too: a model whose generation_config.json says `do_sample: false` still
samples unless the request asks for temperature 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GENERATION_CONFIG = "generation_config.json"

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                   "presence_penalty", "frequency_penalty")
"""The request fields a model's defaults fill (vLLM's list, `max_tokens` aside)."""


@dataclass(frozen=True)
class GenerationDefaults:
    """Sampling values for fields a request omits; None: no default (the engine's neutral
    one applies: temperature 1, top_p 1, no top_k, no penalties)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_tokens: int | None = None
    """From `max_new_tokens`: the completion budget when a chat request sets none."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GenerationDefaults:
        """From a `generation_config.json` mapping (other keys, e.g. token ids, ignored).

        >>> GenerationDefaults.from_config({"temperature": 0.7, "max_new_tokens": 64,
        ...                                 "bos_token_id": 1}).set_values()
        {'temperature': 0.7, 'max_tokens': 64}
        """
        values = {name: config.get(name) for name in SAMPLING_FIELDS}
        values["max_tokens"] = config.get("max_new_tokens")
        return cls(**{k: v for k, v in values.items() if v is not None})

    @classmethod
    def load(cls, folder: str | Path) -> GenerationDefaults:
        """The defaults in `folder/generation_config.json`; none when there is no such file.
        Raises `ValueError` when the file is not a JSON object."""
        path = Path(folder) / GENERATION_CONFIG
        if not path.is_file():
            return cls()
        try:
            config = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path} holds no JSON object")
        return cls.from_config(config)

    def set_values(self) -> dict[str, Any]:
        """The defaults that are set, by name (for logs and listings)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def fill(self, asked: Mapping[str, Any]) -> dict[str, Any]:
        """Each sampling field's value: the request's (`asked`, None where omitted), else
        this default; fields with neither are left out, so the engine's own default holds.
        An explicit request field always wins.

        >>> GenerationDefaults(temperature=0.7, top_k=20).fill({"temperature": 0.0})
        {'temperature': 0.0, 'top_k': 20}
        """
        values = {}
        for name in SAMPLING_FIELDS:
            value = asked.get(name)
            if value is None:
                value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


NO_DEFAULTS = GenerationDefaults()
"""vLLM's neutral defaults only (`--generation-config vllm`)."""


def resolve_generation_config(spec: str, model_dir: str | Path | None) -> GenerationDefaults:
    """What `--generation-config SPEC` means: `auto`, the model directory's own file (none
    when the engine has no local directory, e.g. upstream servers); `vllm`, none; anything
    else, a folder holding a `generation_config.json`. Raises `FileNotFoundError` for a
    folder without one."""
    if spec == "vllm":
        return NO_DEFAULTS
    if spec == "auto":
        return GenerationDefaults.load(model_dir) if model_dir is not None else NO_DEFAULTS
    if not (Path(spec) / GENERATION_CONFIG).is_file():
        raise FileNotFoundError(f"--generation-config {spec!r}: no {GENERATION_CONFIG} in "
                                "that folder (give 'auto', 'vllm' or a folder holding one)")
    return GenerationDefaults.load(spec)
