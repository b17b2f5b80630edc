"""A trained critic's judge mode (from its export metadata) becomes the served default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.model_defaults import EXPORT_METADATA, trained_judge_mode, with_model_defaults
from server.settings import ServerSettings
from trainer.export import METADATA_FILE, judge_metadata


def export_dir(tmp_path: Path, mode: str) -> Path:
    (tmp_path / EXPORT_METADATA).write_text(json.dumps({"judge": judge_metadata(mode)}))
    return tmp_path


def test_the_server_reads_the_file_the_trainer_writes() -> None:
    assert EXPORT_METADATA == METADATA_FILE


def test_the_trained_mode_becomes_the_default(tmp_path: Path) -> None:
    assert ServerSettings().judge == "fast"
    served = with_model_defaults(ServerSettings(), export_dir(tmp_path, "reason"))
    assert served.judge == "reason"


def test_an_explicit_judge_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = export_dir(tmp_path, "reason")
    assert with_model_defaults(ServerSettings(judge="fast"), model).judge == "fast"
    monkeypatch.setenv("SELFCRITIC_JUDGE", "fast")
    assert with_model_defaults(ServerSettings(), model).judge == "fast"


def test_models_without_metadata_keep_the_server_default(tmp_path: Path) -> None:
    assert trained_judge_mode(tmp_path) is None
    (tmp_path / EXPORT_METADATA).write_text("{not json")
    assert trained_judge_mode(tmp_path) is None
    (tmp_path / EXPORT_METADATA).write_text(json.dumps({"judge": {"mode": "slow"}}))
    assert with_model_defaults(ServerSettings(), tmp_path).judge == ServerSettings().judge


def test_the_default_reaches_a_self_critic_request(tmp_path: Path, make_client) -> None:
    served = with_model_defaults(ServerSettings(), export_dir(tmp_path, "reason"))
    client = make_client(**served.model_dump(include=served.model_fields_set | {"judge"}))
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
        "self_critic": {"candidates": 2}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["self_critic"]["judge"] == "reason"


def calibrated_dir(tmp_path: Path, **fields: object) -> Path:
    from critic_loop.selection.calibration import Calibration, write_calibration

    (tmp_path / EXPORT_METADATA).write_text(json.dumps({"judge": judge_metadata("reason")}))
    calibration = Calibration(**{"select": "hybrid", "include_greedy": True,
                                 "judge_weight": 0.25, "judge": "fast", **fields})
    write_calibration(tmp_path, calibration)
    return tmp_path


def test_a_calibration_becomes_the_default_and_explicit_settings_win(tmp_path: Path) -> None:
    model = calibrated_dir(tmp_path)
    served = with_model_defaults(ServerSettings(), model)
    assert (served.select, served.include_greedy, served.judge_weight, served.judge) == (
        "hybrid", True, 0.25, "fast")  # measured with fast: it overrides the trained mode
    assert trained_judge_mode(model) == "reason"
    kept = with_model_defaults(ServerSettings(select="vote", judge="reason"), model)
    assert (kept.select, kept.judge, kept.include_greedy) == ("vote", "reason", True)


def test_a_bad_calibration_is_ignored(tmp_path: Path) -> None:
    (tmp_path / EXPORT_METADATA).write_text(json.dumps({"selection": {"select": "best"}}))
    assert with_model_defaults(ServerSettings(), tmp_path).select == ServerSettings().select


def test_the_calibrated_default_reaches_a_self_critic_request(tmp_path: Path,
                                                              make_client) -> None:
    served = with_model_defaults(ServerSettings(), calibrated_dir(tmp_path, select="vote",
                                                                  judge=None))
    client = make_client(**served.model_dump(include={"select", "include_greedy",
                                                      "judge_weight", "judge"}))
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
            "self_critic": {"candidates": 2, "return_trace": True}}
    report = client.post("/v1/chat/completions", json=body).json()["self_critic"]
    assert report["select"] == "vote" and report["include_greedy"] is True
    assert report["judge"] == "reason"  # vote calls no judge: the trained mode stays
    asked = client.post("/v1/chat/completions", json={
        **body, "self_critic": {**body["self_critic"], "select": "knockout",
                                "include_greedy": False}}).json()["self_critic"]
    assert asked["select"] == "knockout" and asked["include_greedy"] is False


def test_a_built_in_serves_its_shipped_calibration_and_explicit_settings_win(
        tmp_path: Path) -> None:
    from critic_loop.builtin_models import BUILTIN_MODELS
    from critic_loop.runtime.model_store import MARKER
    from critic_loop.selection.calibration import builtin_calibration

    for model in BUILTIN_MODELS.values():
        folder = tmp_path / model.name
        folder.mkdir()
        (folder / MARKER).write_text(json.dumps({"model": model.name,
                                                 "gguf_sha256": model.gguf_sha256}))
        shipped = builtin_calibration(model.name)
        assert shipped is not None
        served = with_model_defaults(ServerSettings(), folder)
        assert (served.select, served.include_greedy, served.merge) == (
            shipped.select, shipped.include_greedy, shipped.merge)
        asked = with_model_defaults(ServerSettings(select="knockout", include_greedy=False),
                                    folder)
        assert (asked.select, asked.include_greedy) == ("knockout", False)
