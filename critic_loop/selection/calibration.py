"""A model's measured selection default: the strategy `eval calibrate` found best for it.

Kept under `selection` in the model directory's `selfcritic-export.json` (beside a trained
critic's `judge`), so the model brings it along: the server takes it as that model's
`:self-critic` default (`server.model_defaults`), a request's own fields still win.

The built-in models ship with theirs in `critic_loop/builtin_calibrations.json` (measured on
the training split of the arithmetic tasks, disjoint from every test set; each entry says
how): a directory materialised as a built-in model that carries no calibration of its own
gets the shipped one (`model_calibration`). Nothing is written into the shared model
cache, so a calibration shipped with a newer selfcritic applies without a rebuild.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from critic_loop.config import SelfCriticConfig

logger = logging.getLogger(__name__)

METADATA_FILE = "selfcritic-export.json"
SELECTION_KEY = "selection"
BUILTIN_CALIBRATIONS = Path(__file__).resolve().parent.parent / "builtin_calibrations.json"
"""The calibrations the built-in models ship with, by model name."""


@dataclass(frozen=True)
class Calibration:
    """The defaults a calibration chose, and the figures it chose them by."""

    select: str
    include_greedy: bool
    judge_weight: float
    judge: str | None = None
    """The judge mode the strategy was measured with; None for one that calls no judge."""
    merge: str = "text"
    figures: dict[str, Any] = field(default_factory=dict)
    """Accuracy, interval, pass@N, greedy, cost, the data it was measured on, ..."""

    def __post_init__(self) -> None:
        # The same rules a request's fields meet, so a bad file is refused, not served
        SelfCriticConfig(select=self.select, include_greedy=self.include_greedy,
                         judge_weight=self.judge_weight, judge=self.judge or "fast",
                         merge=self.merge, candidates=2)

    def to_dict(self) -> dict[str, Any]:
        return {"select": self.select, "include_greedy": self.include_greedy,
                "judge_weight": self.judge_weight, "judge": self.judge, "merge": self.merge,
                "figures": self.figures}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """ValueError for anything that is not a calibration."""
        if not isinstance(data, dict):
            raise ValueError(f"'{SELECTION_KEY}' must be an object")
        try:
            return cls(select=data["select"], include_greedy=data["include_greedy"],
                       judge_weight=data["judge_weight"], judge=data.get("judge"),
                       merge=data.get("merge", "text"), figures=dict(data.get("figures") or {}))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"'{SELECTION_KEY}' lacks {exc}") from None


def read_calibration(model_dir: str | Path) -> Calibration | None:
    """The model's calibration; None when it has none (or an unreadable one, logged)."""
    path = Path(model_dir) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or SELECTION_KEY not in metadata:
        return None
    try:
        return Calibration.from_dict(metadata[SELECTION_KEY])
    except ValueError as exc:
        logger.warning("%s: ignoring its selection calibration: %s", path, exc)
        return None


def builtin_calibration(name: str, path: Path = BUILTIN_CALIBRATIONS) -> Calibration | None:
    """The calibration shipped for the built-in model `name`; None when it has none. A
    shipped file that does not parse is a bug of the release: ValueError."""
    try:
        shipped = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not isinstance(shipped, dict):
        raise ValueError(f"{path} must map model names to calibrations")
    entry = shipped.get(name)
    return None if entry is None else Calibration.from_dict(entry)


def model_calibration(model_dir: str | Path, built_as: str | None) -> Calibration | None:
    """The calibration a served model directory brings: its own (`eval calibrate`, an
    export), else, for a directory materialised as the built-in model named `built_as`
    (`critic_loop.runtime.model_store.materialised_as`), the shipped one."""
    own = read_calibration(model_dir)
    if own is not None:
        return own
    return None if built_as is None else builtin_calibration(built_as)


def write_calibration(model_dir: str | Path, calibration: Calibration) -> Path:
    """Set the model's calibration, keeping the rest of its metadata; atomic."""
    path = Path(model_dir) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        metadata = {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} exists but is not readable JSON ({exc}); fix or remove "
                         "it first") from exc
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} is not a JSON object")
    metadata[SELECTION_KEY] = calibration.to_dict()
    fd, staging = tempfile.mkstemp(prefix=f".{METADATA_FILE}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(metadata, indent=2) + "\n")
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return path
