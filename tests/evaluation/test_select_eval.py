"""`eval select` end to end against a fake OpenAI-compatible server, through the upstream
engine the server uses: the outputs, the judge requests replayed, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from evaluation.select_eval import SelectEvalConfig, evaluate_selection
from evaluation.selectors import SelectSettings, parse_selectors
from selfcritic.cli import main
from tests.support.fake_upstream import FakeUpstream, WordTokenizer, create_fake_app
from tests.support.select_cases import write_case


def config(tmp_path: Path, names: str, fake: FakeUpstream | None = None,
           **settings: object) -> SelectEvalConfig:
    data, cands = write_case(tmp_path)
    app = create_fake_app(fake or FakeUpstream("judge"))
    return SelectEvalConfig(
        candidates=cands, data=data, output=tmp_path / "out", url="http://fake.test",
        selectors=parse_selectors(names), settings=SelectSettings(n=4, **settings),
        progress=False, transport=httpx.ASGITransport(app=app),
        engine_tokenizer=WordTokenizer())


def test_vote_and_confidence_are_graded_and_every_file_is_written(tmp_path: Path) -> None:
    fake = FakeUpstream("judge")
    result = evaluate_selection(config(tmp_path, "vote,confidence,knockout-fast,league-fast",
                                       fake))
    rows = {r.strategy: r for r in result.rows}
    assert (rows["vote"].correct, rows["confidence"].correct) == (1, 2)
    report = json.loads((tmp_path / "out" / "select.json").read_text())
    assert report["pool"]["pass_at_n"] == 1.0 and report["meta"]["model"] == "fake-model"
    assert [r["strategy"] for r in report["strategies"]] == list(rows)
    picks = [json.loads(line) for line in (tmp_path / "out" / "picks.jsonl").open()]
    assert [p["question_id"] for p in picks] == ["q1", "q2", "q3"]
    assert picks[1]["picks"]["confidence"] == {**picks[1]["picks"]["confidence"],
                                               "winner": 0, "correct": True}
    assert "| confidence | 66.7% |" in (tmp_path / "out" / "select.md").read_text()
    # The judge went to the server as fast verdicts on token ids; a league plays the
    # knockout's matches too, and each distinct judgment was generated once
    judged = [c for c in fake.calls if c.get("allowed_token_ids")]
    assert judged and all(isinstance(c["prompt"], list) for c in judged)
    asked = sum(r.judge_calls_per_question * r.questions for r in result.rows)
    assert result.meta["judge_requests_sent"] < asked
    assert len({json.dumps(c["prompt"]) for c in judged}) == len(judged)


def test_the_command_line_prints_the_table_and_refuses_bad_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made = config(tmp_path, "vote")
    import evaluation.select_eval as module

    real = module.evaluate_selection

    def with_fakes(given: SelectEvalConfig):
        return real(SelectEvalConfig(**{**given.__dict__, "transport": made.transport,
                                        "engine_tokenizer": made.engine_tokenizer}))

    monkeypatch.setattr(module, "evaluate_selection", with_fakes)
    def argv(candidates: Path = made.candidates, n: str = "4",
             strategies: str = "vote,confidence") -> list[str]:
        return ["select", "--candidates", str(candidates), "--data", str(made.data),
                "--url", "http://fake.test", "--n", n, "--strategies", strategies,
                "--output", str(tmp_path / "cli"), "--no-progress"]

    assert main(["eval", *argv()]) == 0
    assert "| vote | 33.3% |" in capsys.readouterr().out
    assert main(["eval", *argv(n="9")]) == 1  # the rows hold 4 samples
    assert main(["eval", *argv(strategies="vote-fast")]) == 1
    assert main(["eval", *argv(candidates=tmp_path / "missing.jsonl")]) == 1
    with pytest.raises(SystemExit):
        main(["eval", "select", "--help"])
    assert "candidates file" in capsys.readouterr().out
