"""Serving defaults a model directory brings along: its sampling defaults
(`generation_config.json`, as vLLM's `--generation-config`) and a trained critic's judge mode.

`selfcritic train` records in `selfcritic-export.json` the judge mode the critic was
trained with (`judge.mode`). A critic trained to think then `\\boxed{}` and served with the
one-token prompt (or the reverse) judges with a prompt it never saw, so that mode becomes
the server's default judge unless `--judge` / `SELFCRITIC_JUDGE` says otherwise.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from critic_loop.generation_defaults import GenerationDefaults, resolve_generation_config
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

EXPORT_METADATA = "selfcritic-export.json"
"""Written by trainer/export.py; named here too so the server need not import trainer."""
JUDGE_MODES = ("reason", "fast")


def trained_judge_mode(model_dir: str | Path) -> str | None:
    """The judge mode a selfcritic export was trained with; None for any other model."""
    path = Path(model_dir) / EXPORT_METADATA
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    judge = metadata.get("judge") if isinstance(metadata, dict) else None
    mode = judge.get("mode") if isinstance(judge, dict) else None
    if mode not in JUDGE_MODES:
        if path.exists():
            logger.warning("%s names no judge mode (%r); keeping the server's", path, mode)
        return None
    return mode


def with_model_defaults(settings: ServerSettings, model_dir: str | Path) -> ServerSettings:
    """`settings` with the model's trained judge as default, unless the judge was set."""
    mode = trained_judge_mode(model_dir)
    if mode is None or mode == settings.judge:
        return settings
    if "judge" in settings.model_fields_set:
        logger.warning("%s was trained as a %r judge; serving it with --judge %s as asked",
                       model_dir, mode, settings.judge)
        return settings
    logger.info("Default judge %r: the mode %s was trained with (--judge overrides)",
                mode, model_dir)
    return settings.model_copy(update={"judge": mode})


def sampling_defaults(settings: ServerSettings,
                      model_dir: str | Path | None) -> GenerationDefaults:
    """What fills the sampling fields a request omits (chat, completions and self-critic
    candidates; judgments keep the judge's settings): `--generation-config` resolved
    against the served model's directory. An explicit `--default-max-tokens` beats the
    model's `max_new_tokens`."""
    defaults = resolve_generation_config(settings.generation_config, model_dir)
    if defaults.max_tokens is not None and "default_max_tokens" in settings.model_fields_set:
        defaults = replace(defaults, max_tokens=None)
    if values := defaults.set_values():
        source = (f"{model_dir}/generation_config.json" if settings.generation_config == "auto"
                  else settings.generation_config)
        logger.info("Sampling defaults for fields a request omits, from %s: %s "
                    "(--generation-config vllm turns them off)", source, values)
    return defaults
