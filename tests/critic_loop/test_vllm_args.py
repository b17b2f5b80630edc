"""vLLM engine arguments reach `AsyncEngineArgs` through vLLM's own parser; our fields
are set on top and our CPU defaults fill only what the arguments leave unset."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")

from critic_loop.runtime.engines.vllm_args import EngineArgumentError, engine_args_from
from critic_loop.runtime.engines.vllm_async import EngineConfig


def test_engine_arguments_pass_through_and_override_cpu_defaults(tmp_path) -> None:
    config = EngineConfig(model=str(tmp_path), served_name="m", max_num_seqs=5, engine_args=(
        "--block-size", "64", "--max-num-batched-tokens", "4096",
        "--no-enable-prefix-caching", "--kv-cache-dtype", "auto"))
    args = config.async_engine_args("bfloat16")
    assert (args.block_size, args.max_num_batched_tokens, args.enable_prefix_caching) == (
        64, 4096, False)
    assert args.max_num_seqs == 5 and args.served_model_name == ["m"]
    assert args.dtype == "bfloat16" and args.model == str(tmp_path)


def test_cpu_defaults_apply_when_unset(tmp_path) -> None:
    args = EngineConfig(model=str(tmp_path), served_name="m").async_engine_args("bfloat16")
    # this machine is the CPU backend: 32-token blocks, 2 GiB of KV cache, whole prefills
    assert (args.block_size, args.kv_cache_memory_bytes, args.enable_chunked_prefill,
            args.max_num_batched_tokens) == (32, 2 * 1024**3, False, 8192)
    assert args.enable_prefix_caching is None  # vLLM's own default


def test_our_fields_are_refused_among_engine_arguments() -> None:
    with pytest.raises(EngineArgumentError, match="'seed' is set by"):
        engine_args_from(["--seed", "4"], {"seed": 0}, {})


def test_generation_config_reaches_vllm(tmp_path) -> None:
    """vLLM reads the model's eos ids from its generation config too: `vllm` is passed on."""
    assert EngineConfig(model=str(tmp_path), served_name="m").async_engine_args(
        "bfloat16").generation_config == "auto"
    args = EngineConfig(model=str(tmp_path), served_name="m",
                        generation_config="vllm").async_engine_args("bfloat16")
    assert args.generation_config == "vllm"
    with pytest.raises(EngineArgumentError, match="'generation_config' is set by"):
        EngineConfig(model=str(tmp_path), served_name="m", engine_args=(
            "--generation-config", "vllm")).async_engine_args("bfloat16")


def test_benchmark_flags_are_the_engines_cpu_defaults(tmp_path) -> None:
    """bench starts vLLM's own server with `cpu_engine_flags`: the same settings our
    engine takes on a CPU, read through vLLM's parser."""
    from critic_loop.runtime.engines.cpu_defaults import cpu_engine_flags

    ours = EngineConfig(model=str(tmp_path), served_name="m").async_engine_args("bfloat16")
    flagged = EngineConfig(model=str(tmp_path), served_name="m", block_size=128,
                           engine_args=cpu_engine_flags()).async_engine_args("bfloat16")
    for name in ("block_size", "enable_chunked_prefill", "max_num_batched_tokens"):
        assert getattr(flagged, name) == getattr(ours, name), name


def test_for_model_resolves_a_local_directory(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    config = EngineConfig.for_model(str(tmp_path), served_name="mine", max_model_len=512)
    assert (config.model, config.served_name, config.max_model_len) == (
        str(tmp_path.resolve()), "mine", 512)
