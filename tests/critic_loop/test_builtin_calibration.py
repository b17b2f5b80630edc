"""The calibrations the built-in models ship with: one per built-in, measured on data
disjoint from every test set, and what a directory materialised as a built-in gets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from critic_loop.builtin_models import BUILTIN_MODELS, SMOLLM2_135M
from critic_loop.runtime.model_store import MARKER, folder_calibration, materialised_as
from critic_loop.selection.calibration import (
    BUILTIN_CALIBRATIONS,
    Calibration,
    builtin_calibration,
    write_calibration,
)
from evaluation.calibrate import TEST_SETS

REPO = Path(__file__).resolve().parents[2]


def built_as(folder: Path, name: str, sha256: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps({"model": name, "gguf_sha256": sha256}))
    return folder


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_every_built_in_ships_a_calibration_measured_off_the_test_sets(name: str) -> None:
    calibration = builtin_calibration(name)
    assert calibration is not None, f"{name} ships no calibration"
    figures = calibration.figures
    data = REPO / figures["data"]
    assert data.resolve() not in TEST_SETS and "humaneval" not in figures["data"].lower()
    # the data it was measured on is the shipped file, unchanged since
    assert figures["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert figures["model"] == name and "eval calibrate" in figures["command"]
    assert figures["strategy"] in {r["strategy"] for r in figures["ranking"]}
    best = max(r["accuracy"] for r in figures["ranking"])
    assert figures["accuracy"] == best


def test_the_shipped_file_names_only_built_ins() -> None:
    assert set(json.loads(BUILTIN_CALIBRATIONS.read_text())) <= set(BUILTIN_MODELS)


def test_a_materialised_built_in_gets_its_shipped_calibration(tmp_path: Path) -> None:
    folder = built_as(tmp_path / "m", SMOLLM2_135M.name, SMOLLM2_135M.gguf_sha256)
    assert materialised_as(folder) is SMOLLM2_135M
    assert folder_calibration(folder) == builtin_calibration(SMOLLM2_135M.name)


def test_a_calibration_of_its_own_wins_over_the_shipped_one(tmp_path: Path) -> None:
    folder = built_as(tmp_path / "m", SMOLLM2_135M.name, SMOLLM2_135M.gguf_sha256)
    own = Calibration("league", False, 0.5, judge="reason")
    write_calibration(folder, own)
    assert folder_calibration(folder) == own


def test_other_directories_get_none(tmp_path: Path) -> None:
    stale = built_as(tmp_path / "stale", SMOLLM2_135M.name, "0" * 64)  # another file's build
    unknown = built_as(tmp_path / "unknown", "gpt-9", SMOLLM2_135M.gguf_sha256)
    plain = tmp_path / "plain"  # e.g. a trainer's export of a built-in: no marker
    plain.mkdir()
    for folder in (stale, unknown, plain):
        assert materialised_as(folder) is None and folder_calibration(folder) is None


def test_a_bad_shipped_file_is_an_error(tmp_path: Path) -> None:
    shipped = tmp_path / "c.json"
    shipped.write_text(json.dumps({"m": {"select": "best", "include_greedy": True,
                                         "judge_weight": 0.5}}))
    with pytest.raises(ValueError, match="select"):
        builtin_calibration("m", shipped)
    assert builtin_calibration("other", shipped) is None
    assert builtin_calibration("m", tmp_path / "absent.json") is None
