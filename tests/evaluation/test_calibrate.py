"""`eval calibrate`: the best strategy on held-out data (ties: fewer judge calls) written
into the model's metadata, beside what is already there; test sets refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from critic_loop.selection.calibration import METADATA_FILE, read_calibration
from evaluation.calibrate import CalibrateConfig, calibrate, check_not_a_test_set, choose
from evaluation.select_eval import SelectEvalResult
from evaluation.select_report import StrategyRow
from evaluation.selectors import SelectSettings, parse_selectors
from server.model_defaults import with_model_defaults
from server.settings import ServerSettings
from tests.support.fake_upstream import FakeUpstream, WordTokenizer, create_fake_app
from tests.support.select_cases import write_case

REPO = Path(__file__).resolve().parents[2]


def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / METADATA_FILE).write_text(json.dumps({"judge": {"mode": "reason"}, "steps": 3}))
    return model


def run(tmp_path: Path, names: str, **overrides: object):
    data, cands = write_case(tmp_path)
    model = model_dir(tmp_path)
    config = CalibrateConfig(
        model=str(model), data=data, output=tmp_path / "out", url="http://fake.test",
        candidates=cands, selectors=parse_selectors(names),
        settings=(SelectSettings(n=4), SelectSettings(n=4, include_greedy=True)),
        progress=False, transport=httpx.ASGITransport(app=create_fake_app(FakeUpstream("j"))),
        engine_tokenizer=WordTokenizer(), **overrides)
    return model, calibrate(config)


def test_the_most_accurate_strategy_is_written_into_the_model(tmp_path: Path) -> None:
    # vote 1/3 and confidence 2/3 on the samples (select_cases); with the greedy
    # candidate first, q1's vote ties 4-4 against 5-5 and the 5s' confidence wins: no gain
    model, result = run(tmp_path, "vote,confidence")
    calibration = read_calibration(model)
    assert calibration == result.calibration
    assert (calibration.select, calibration.judge) == ("confidence", None)
    assert calibration.figures["accuracy"] == pytest.approx(2 / 3)
    assert calibration.figures["greedy_accuracy"] == pytest.approx(2 / 3)
    assert len(calibration.figures["ranking"]) == 4
    kept = json.loads((model / METADATA_FILE).read_text())
    assert kept["judge"] == {"mode": "reason"} and kept["steps"] == 3
    served = with_model_defaults(ServerSettings(), model)
    assert (served.select, served.include_greedy, served.judge) == ("confidence", False, "reason")
    assert (tmp_path / "out" / "samples-only" / "select.md").is_file()
    assert (tmp_path / "out" / "with-greedy" / "select.json").is_file()


def row(name: str, correct: int, calls: float) -> StrategyRow:
    return StrategyRow(name, 4, correct, correct / 4, None, None, 0, 0, calls, calls * 9, 0,
                       None, 0, None, 0)


def test_ties_go_to_the_strategy_with_fewer_judge_calls() -> None:
    config = CalibrateConfig(model="m", data=Path("d"), output=Path("o"),
                             selectors=parse_selectors("knockout-fast,hybrid-fast,vote"),
                             settings=(SelectSettings(n=4), SelectSettings(n=4, include_greedy=True)))
    meta = {"created": "now", "model": "m"}
    passes = (SelectEvalResult([row("knockout-fast", 3, 6.0), row("vote", 2, 0.0)], [], {}, meta),
              SelectEvalResult([row("knockout-fast", 3, 6.0), row("hybrid-fast", 3, 2.0)], [], {},
                               meta))
    chosen = choose(passes, config)
    assert (chosen.select, chosen.judge, chosen.include_greedy) == ("hybrid", "fast", True)
    assert chosen.figures["judge_calls_per_question"] == 2.0


def test_a_dry_run_writes_nothing_into_the_model(tmp_path: Path) -> None:
    model, result = run(tmp_path, "vote", dry_run=True)
    assert result.written is None and read_calibration(model) is None
    assert (tmp_path / "out" / "calibration.json").is_file()


def test_test_sets_are_refused() -> None:
    for name in ("humaneval", "data/tasks/heldout.jsonl", str(REPO / "data/demo/heldout.jsonl")):
        with pytest.raises(ValueError, match="is a test set"):
            check_not_a_test_set(Path(name))
    check_not_a_test_set(REPO / "data" / "tasks" / "train.jsonl")
