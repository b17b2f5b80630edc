"""Finding a judge-only adapter in an export, and judgments asking for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.engine import JUDGE_ADAPTER, GenerationRequest, SamplingOptions
from critic_loop.pairwise import generate_judgments
from critic_loop.runtime.engines.scripted import ScriptedEngine
from critic_loop.runtime.engines.vllm_async import EngineConfig
from critic_loop.runtime.judge_adapter import (
    JudgeAdapter,
    JudgeAdapterError,
    find_judge_adapter,
    lora_slots,
)
from critic_loop.selection.calibration import METADATA_FILE


def _export(folder: Path, entry: object, config: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METADATA_FILE).write_text(json.dumps({"judge_adapter": entry}))
    if config is not None:
        (folder / "judge-adapter").mkdir()
        (folder / "judge-adapter" / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_an_export_names_its_adapter_and_its_config_gives_the_rank(tmp_path: Path) -> None:
    folder = _export(tmp_path / "m", {"path": "judge-adapter"}, {"r": 12})
    adapter = find_judge_adapter(folder)
    assert adapter == JudgeAdapter((folder / "judge-adapter").resolve(), 12)
    assert adapter.reserved_rank == 16  # what vLLM can reserve


def test_a_rank_pattern_above_r_is_what_is_reserved(tmp_path: Path) -> None:
    folder = _export(tmp_path / "m", {"path": "judge-adapter"},
                     {"r": 8, "rank_pattern": {"v_proj": 24}})
    adapter = find_judge_adapter(folder)
    assert adapter is not None and (adapter.rank, adapter.reserved_rank) == (24, 32)


def test_a_folder_without_one_has_none(tmp_path: Path) -> None:
    assert find_judge_adapter(tmp_path) is None
    (tmp_path / METADATA_FILE).write_text(json.dumps({"judge": {"mode": "fast"}}))
    assert find_judge_adapter(tmp_path) is None


@pytest.mark.parametrize("entry", ["judge-adapter", {"rank": 8}, {"path": "missing"}])
def test_a_named_adapter_that_is_not_there_is_an_error(tmp_path: Path, entry: object) -> None:
    folder = _export(tmp_path / "m", entry)
    with pytest.raises(JudgeAdapterError):
        find_judge_adapter(folder)


def test_the_engine_config_reserves_slots_of_the_adapters_rank(tmp_path: Path) -> None:
    from critic_loop.runtime.engines.vllm_async import _on_cpu

    adapter = JudgeAdapter(tmp_path, 12)
    config = EngineConfig(model=str(tmp_path), served_name="m", judge_adapter=adapter)
    ours = config.async_engine_args("bfloat16")
    assert (ours.enable_lora, ours.max_lora_rank) == (True, 16)
    assert ours.max_loras == lora_slots(_on_cpu())
    plain = EngineConfig(model=str(tmp_path), served_name="m").async_engine_args("bfloat16")
    assert not plain.enable_lora


async def test_judgments_ask_for_the_judge_adapter() -> None:
    engine = ScriptedEngine()
    prompt = engine.render_prompt([{"role": "user", "content": "1 or 2?"}])
    await generate_judgments(engine, 1, [("j", prompt, (), SamplingOptions(max_tokens=1))])
    assert [r.adapter for r in engine.requests] == [JUDGE_ADAPTER]
    assert GenerationRequest("c", "x").adapter is None  # answers: the base weights
