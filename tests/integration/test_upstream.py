"""`selfcritic serve --upstream`: in front of vLLM's own OpenAI server on the default model
it passes the same chat, streaming, self-critic and critique tests as the in-process engine
(imported below and run against this module's `server`); in front of two fake upstreams,
one killed under load, no request is lost and the dead one is ejected, then readmitted."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from test_chat_api import (  # type: ignore[import-not-found]  # noqa: F401 - collected here too
    test_bad_input_is_4xx_and_server_stays_healthy,
    test_capital_of_france,
    test_logprobs,
    test_models_lists_plain_and_self_critic,
    test_n_samples,
    test_seed_reproducible,
    test_stop_sequence,
    test_streaming_deltas_then_done,
)
from test_self_critic_api import (  # type: ignore[import-not-found]  # noqa: F401
    test_critique_alias_reason_mode,
    test_critique_bad_input,
    test_critique_pair,
    test_critique_ranks_more_than_two,
    test_self_critic_reason_mode,
    test_self_critic_streaming,
    test_self_critic_streaming_with_openai_client,
    test_self_critic_through_extra_body,
    test_self_critic_through_model_alias,
)

from tests.support.knockout import KNOCKOUT
from tests.support.live_server import API_KEY, MODEL, SECOND_KEY
from tests.support.upstream_servers import default_model_path, start_fake, start_vllm_server

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vllm_upstream(tmp_path_factory: pytest.TempPathFactory):
    upstream = start_vllm_server(tmp_path_factory.mktemp("vllm") / "vllm.log", MODEL)
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def server(launch_server, vllm_upstream):
    """Overrides the in-process server for every test in this module."""
    return launch_server(["--upstream", vllm_upstream.url,
                          "--api-key", f"{API_KEY},{SECOND_KEY}",
                          "--max-inflight-sequences", "24", "--request-timeout-s", "120"])


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0,
                         timeout=300)


def test_no_local_engine_and_exact_fast_verdicts(server) -> None:
    log = server.log()
    assert "Starting vLLM" not in log
    assert "fast verdicts are exact" in log


def test_prompts_are_rendered_as_vllm_renders_them(client, vllm_upstream) -> None:
    """Our chat rendering and tokenising reach the same prompt as vLLM's own chat route."""
    direct = openai.OpenAI(base_url=vllm_upstream.url + "/v1", api_key="unused", max_retries=0)
    call = {"model": MODEL, "messages": QUESTION, "temperature": 0, "max_tokens": 8}
    ours, theirs = client.chat.completions.create(**call), direct.chat.completions.create(**call)
    assert ours.usage.prompt_tokens == theirs.usage.prompt_tokens
    assert ours.choices[0].message.content == theirs.choices[0].message.content


def _wait_in_flight(url: str, timeout_s: float = 120) -> None:
    """Until the fake upstream at `url` is answering a call (the kill must land on one)."""
    deadline = time.monotonic() + timeout_s
    while httpx.get(url + "/fake/in-flight", timeout=10).json()["in_flight"] < 1:
        assert time.monotonic() < deadline, f"no call reached {url} within {timeout_s} s"
        time.sleep(0.05)


def test_two_upstreams_one_killed_under_load(launch_server, tmp_path) -> None:
    """Two lightweight fake upstreams (not two vLLMs): 0.3 s per token, so a self-critic
    request takes seconds and the kill lands on requests in flight."""
    root = default_model_path()
    fakes = [start_fake(name, tmp_path / f"{name}.log", delay_s=0.3, root=root)
             for name in "AB"]
    try:
        server = launch_server(["--upstream", ",".join(f.url for f in fakes)])
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                               timeout=120)

        def ask(i: int) -> str:
            call = {"model": "fake-model", "messages": QUESTION, "max_tokens": 8}
            if i % 2:
                reply = client.chat.completions.create(
                    **call, extra_body={"self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast"}})
                return reply.choices[0].message.content
            chunks = client.chat.completions.create(**call, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        with ThreadPoolExecutor(12) as pool:
            answers = [pool.submit(ask, i) for i in range(24)]
            _wait_in_flight(fakes[0].url)
            fakes[0].stop(signal.SIGKILL)
            assert all(answer.result().endswith("done") for answer in answers)
        log = server.log()
        assert f"Upstream {fakes[0].url} ejected" in log
        assert "failing over" in log  # the kill did hit calls in flight
        assert httpx.get(server.url + "/health").status_code == 200

        port = int(fakes[0].url.rsplit(":", 1)[1])
        fakes[0] = start_fake("A", tmp_path / "A2.log", root=root, port=port)
        deadline = time.monotonic() + 30
        while f"Upstream {fakes[0].url} readmitted" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.5)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(4)))
        assert any(answer.startswith("A") for answer in answers)  # A takes work again
    finally:
        for fake in fakes:
            fake.stop()
