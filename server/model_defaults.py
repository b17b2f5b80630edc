"""Serving defaults a model directory brings along: its sampling defaults
(`generation_config.json`, as vLLM's `--generation-config`), a trained critic's judge mode,
and the selection strategy a calibration measured best for the model.

`selfcritic train` records in `selfcritic-export.json` the judge mode the critic was
trained with (`judge.mode`). A critic trained to think then `\\boxed{}` and served with the
one-token prompt (or the reverse) judges with a prompt it never saw, so that mode becomes
the server's default judge unless `--judge` / `SELFCRITIC_JUDGE` says otherwise.
`selfcritic eval calibrate` records under `selection` the strategy (select,
include_greedy, judge_weight, merge and the judge mode it was measured with) that chose
best on held-out data; those become the defaults too, unless set on the command line.
A built-in model without one of its own gets the calibration shipped for it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from critic_loop.generation_defaults import GenerationDefaults, resolve_generation_config
from critic_loop.runtime.model_store import folder_calibration
from critic_loop.selection.calibration import METADATA_FILE
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

EXPORT_METADATA = METADATA_FILE
"""Written by trainer/export.py (and eval calibrate); named in critic_loop so the server
need not import trainer."""
JUDGE_MODES = ("reason", "fast")


def trained_judge_mode(model_dir: str | Path) -> str | None:
    """The judge mode a selfcritic export was trained with; None for any other model."""
    path = Path(model_dir) / EXPORT_METADATA
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or "judge" not in metadata:
        return None  # e.g. a model that only carries a calibration
    judge = metadata.get("judge")
    mode = judge.get("mode") if isinstance(judge, dict) else None
    if mode not in JUDGE_MODES:
        if path.exists():
            logger.warning("%s names no judge mode (%r); keeping the server's", path, mode)
        return None
    return mode


def with_model_defaults(settings: ServerSettings, model_dir: str | Path) -> ServerSettings:
    """`settings` with the model's trained judge and calibrated selection as defaults;
    a setting given explicitly (flag or environment) is kept."""
    explicit = set(settings.model_fields_set)  # model_copy(update=...) adds to the set
    return with_calibration(with_trained_judge(settings, model_dir), model_dir, explicit)


def with_trained_judge(settings: ServerSettings, model_dir: str | Path) -> ServerSettings:
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
def with_calibration(settings: ServerSettings, model_dir: str | Path,
                     explicit: set[str] | None = None) -> ServerSettings:
    """`settings` with the model's calibrated selection as default, field by field: one
    set explicitly stays as set. The calibration's judge mode is the one its figures were
    measured with, so it overrides a trained critic's mode (a flag still wins)."""
    calibration = folder_calibration(model_dir)
    if calibration is None:
        return settings
    wanted = {"select": calibration.select, "include_greedy": calibration.include_greedy,
              "judge_weight": calibration.judge_weight, "merge": calibration.merge}
    if calibration.judge is not None:
        wanted["judge"] = calibration.judge
    given = settings.model_fields_set if explicit is None else explicit
    kept = sorted(k for k in wanted if k in given and getattr(settings, k) != wanted[k])
    update = {k: v for k, v in wanted.items() if k not in given}
    logger.info("Default selection of %s from its calibration: %s%s", model_dir,
                ", ".join(f"{k}={v}" for k, v in update.items()),
                f" (kept as set: {', '.join(kept)})" if kept else "")
    # model_copy skips validation: the calibration was validated when read
    return settings.model_copy(update=update)
