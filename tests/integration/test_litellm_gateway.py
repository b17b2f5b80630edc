"""LiteLLM's proxy (a real one, from PyPI, in .venv-litellm) in front of our server, with
the config in deploy/litellm/: plain chat, streaming, the `:self-critic` alias, self_critic
through `extra_body` or fixed by the gateway, the streamed summary and keep-alive, and
/v1/critique through a pass-through endpoint."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from evaluation.local_server import ServerProcess, free_port, launch
from tests.support.live_server import API_KEY, MODEL

REPO = Path(__file__).resolve().parents[2]
LITELLM = REPO / ".venv-litellm" / "bin" / "litellm"
CONFIG = REPO / "deploy" / "litellm" / "config.yaml"
QUESTION = [{"role": "user", "content": "What is 12 + 7? Answer with the number."}]
SCRIPTED = "scripted-slow"
# Our app on the scripted engine, slow enough (sleeps per token) that a tournament always
# outlasts a keep-alive interval: the keep-alive through the gateway is then certain.
SCRIPTED_SERVER = f"""
import sys, uvicorn
from critic_loop.runtime.engines.scripted import ScriptedEngine
from server.app import create_app
from server.settings import ServerSettings
engine = ScriptedEngine(model_name={SCRIPTED!r}, token_delay_s=0.05)
app = create_app(ServerSettings(keepalive_interval_s=0.01), engine=engine)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class Gateway:
    url: str
    key: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.key, max_retries=0,
                             timeout=300)

    def stream(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The data chunks of a streamed chat completion, in order, through the gateway."""
        with httpx.stream("POST", self.url + "/v1/chat/completions", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {self.key}"}) as response:
            assert response.status_code == 200, response.read()
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        return [json.loads(line[6:]) for line in lines[:-1]]


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    log = tmp_path_factory.mktemp("scripted") / "server.log"
    process = launch([sys.executable, "-c", SCRIPTED_SERVER, str(port)], log,
                     url=f"http://127.0.0.1:{port}", cwd=REPO, name="scripted",
                     start_timeout_s=120)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway(server, scripted_server: ServerProcess,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if not LITELLM.exists():
        reason = ("LiteLLM is not installed in .venv-litellm: scripts/setup_litellm.sh "
                  "could not reach PyPI")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    config = yaml.safe_load(CONFIG.read_text())
    config["model_list"].append({"model_name": SCRIPTED, "litellm_params": {
        "model": f"openai/{SCRIPTED}", "api_base": scripted_server.url + "/v1",
        "api_key": "unused"}})
    folder = tmp_path_factory.mktemp("litellm")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    port, key = free_port(), "sk-" + secrets.token_hex(24)
    env = {"LITELLM_MASTER_KEY": key, "SELFCRITIC_API_BASE": server.url + "/v1",
           "SELFCRITIC_CRITIQUE_URL": server.url + "/v1/critique",
           "SELFCRITIC_API_KEY": API_KEY,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no fetch of the cost map from the web
    # /health would call every model; liveliness is the proxy alone
    process = launch([str(LITELLM), "--config", str(folder / "config.yaml"),
                      "--host", "127.0.0.1", "--port", str(port)], folder / "litellm.log",
                     url=f"http://127.0.0.1:{port}", env=env, cwd=REPO, name="litellm",
                     start_timeout_s=180, health_path="/health/liveliness")
    yield Gateway(process.url, key)
    process.stop()


def _content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for d in chunks for c in d["choices"])


def _summaries(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["delta"]["self_critic"] for d in chunks for c in d["choices"]
            if "self_critic" in c["delta"]]


def test_plain_chat(gateway: Gateway) -> None:
    completion = gateway.client().chat.completions.create(model=MODEL, messages=QUESTION,
                                                           max_tokens=8)
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens > 0
    assert "self_critic" not in (completion.model_extra or {})


def test_streaming_is_whole_and_starts_with_the_role(gateway: Gateway, client) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 12, "temperature": 0,
            "stream": True}
    chunks = gateway.stream(body)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    direct = client.chat.completions.create(**{**body, "stream": False})
    assert _content(chunks) == direct.choices[0].message.content


def test_self_critic_alias(gateway: Gateway) -> None:
    completion = gateway.client().chat.completions.create(
        model=f"{MODEL}:self-critic", messages=QUESTION, max_tokens=8)
    assert completion.choices[0].message.content
    assert completion.model_extra["self_critic"]["candidates"] >= 2


def test_self_critic_through_extra_body(gateway: Gateway) -> None:
    completion = gateway.client().chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8,
        extra_body={"self_critic": {"candidates": 3, "judge": "fast", "return_trace": True}})
    report = completion.model_extra["self_critic"]
    assert report["candidates"] == 3
    texts = [c["text"] for c in report["trace"]["candidates"]]
    assert completion.choices[0].message.content in texts


def test_self_critic_fixed_by_the_gateway(gateway: Gateway) -> None:
    completion = gateway.client().chat.completions.create(
        model=f"{MODEL}:best-of-4", messages=QUESTION, max_tokens=8)
    assert completion.model_extra["self_critic"]["candidates"] == 4


def test_streamed_summary_survives(gateway: Gateway) -> None:
    chunks = gateway.stream({
        "model": MODEL, "messages": QUESTION, "max_tokens": 8, "stream": True,
        "stream_options": {"include_usage": True},
        "self_critic": {"candidates": 3, "judge": "fast", "return_trace": True}})
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    (report,) = _summaries(chunks)
    assert report["candidates"] == 3
    assert _content(chunks) in [c["text"] for c in report["trace"]["candidates"]]
    assert chunks[-1]["usage"]["total_tokens"] == report["usage"]["total"]["total_tokens"]


def test_keepalive_reaches_the_client(gateway: Gateway) -> None:
    """The role answers at once, and content-free chunks flow until the winner comes."""
    chunks = gateway.stream({"model": SCRIPTED, "messages": QUESTION, "stream": True,
                             "max_tokens": 8, "self_critic": {"candidates": 2}})
    deltas = [c["delta"] for d in chunks for c in d["choices"]]
    assert deltas[0]["role"] == "assistant"
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert {"content": "", "annotations": []} in deltas[1:first_text]
    assert _content(chunks).startswith("sample ")


def test_critique_pass_through(gateway: Gateway) -> None:
    body = {"question": "What is the capital of France?", "judge": "fast",
            "responses": ["Paris.", "Berlin."]}
    response = httpx.post(gateway.url + "/v1/critique", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {gateway.key}"})
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "critique"
    assert httpx.post(gateway.url + "/v1/critique", json=body, timeout=60).status_code == 401
