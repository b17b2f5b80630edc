"""vLLM engine arguments pass through `selfcritic serve` to the real CPU engine: one engine
started with prefix caching off and scheduler limits set, through the same settings path
as the command line, then looked at from inside."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from critic_loop.engine import GenerationRequest, SamplingOptions
from selfcritic.cli import build_parser
from server.app import start_vllm_engine
from server.cli import check_engine_args, settings_from_args

REPO = Path(__file__).resolve().parents[2]
ARGV = ["serve", "--enforce-eager", "--max-num-seqs", "7",  # ours, forwarded to vLLM
        "--no-enable-prefix-caching", "--max-num-batched-tokens", "3072"]  # vLLM's own
PROMPT = " ".join(f"Fact {i}: the number {i} comes after {i - 1}." for i in range(1, 16))


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[object, asyncio.AbstractEventLoop]]:
    args, engine_args = build_parser().parse_known_args(ARGV)
    args.engine_args = engine_args
    settings = settings_from_args(args)
    assert check_engine_args(settings) is None
    loop = asyncio.new_event_loop()
    the_engine, _ = loop.run_until_complete(_start(settings))
    yield the_engine, loop
    loop.run_until_complete(the_engine.close())
    loop.close()


async def _start(settings):
    return start_vllm_engine(settings)


def test_engine_config_has_the_arguments(engine) -> None:
    config = engine[0]._llm.vllm_config
    assert config.cache_config.enable_prefix_caching is False
    assert config.scheduler_config.max_num_batched_tokens == 3072
    assert config.scheduler_config.max_num_seqs == 7
    assert config.cache_config.block_size == 32  # our CPU default, not overridden


def test_repeated_prompt_is_not_served_from_a_prefix_cache(engine) -> None:
    the_engine, loop = engine
    prompt = the_engine.render_chat([{"role": "user", "content": PROMPT}])
    assert the_engine.count_tokens(prompt) > 4 * 32  # several whole KV blocks to reuse

    async def twice():
        results = []
        for i in range(2):
            request = GenerationRequest(f"repeat-{i}", prompt,
                                        SamplingOptions(max_tokens=2, temperature=0))
            results += await the_engine.generate([request])
        return results

    first, second = loop.run_until_complete(twice())
    assert second.prompt_tokens == first.prompt_tokens > 4 * 32
    assert (first.cached_tokens, second.cached_tokens) == (0, 0)


def test_bad_engine_argument_is_refused_with_vllms_message() -> None:
    """At parse time, before any engine starts."""
    done = subprocess.run(
        [sys.executable, "-m", "selfcritic", "serve", "--tensor-parallel-size", "two"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert "argument --tensor-parallel-size/-tp: invalid int value: 'two'" in done.stderr, \
        done.stderr
    assert "Starting vLLM" not in done.stderr
