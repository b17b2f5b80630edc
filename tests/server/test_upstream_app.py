"""`selfcritic serve --upstream`: the app runs on upstream servers (fakes here) with no
local engine, and every engine call of one HTTP request goes to one upstream."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from critic_loop.engines.upstream import UpstreamEngine
from server.app import create_app
from server.settings import ServerSettings
from tests.critic_loop.fake_upstream import FakeUpstream, WordTokenizer, create_fake_app
from tests.knockout import KNOCKOUT


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeUpstream]:
    """Route `--upstream http://a.test,http://b.test` to two in-process fakes."""
    fakes = {"http://a.test": FakeUpstream("A"), "http://b.test": FakeUpstream("B")}
    connect = UpstreamEngine.connect.__func__  # type: ignore[attr-defined]

    def fake_connect(cls, config, session_key):
        return connect(cls, config, session_key, tokenizer=WordTokenizer(),
                       transport=lambda url: httpx.ASGITransport(app=create_fake_app(fakes[url])))

    monkeypatch.setattr(UpstreamEngine, "connect", classmethod(fake_connect))
    return fakes


def test_self_critic_requests_each_stay_on_one_upstream(fakes) -> None:
    settings = ServerSettings(upstream="http://a.test,http://b.test", upstream_api_key="k1,k2")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [
            "fake-model", "fake-model:self-critic"]
        for request_id in ("first", "second"):
            response = client.post("/v1/chat/completions", headers={"X-Request-Id": request_id},
                                   json={"model": "fake-model", "max_tokens": 8,
                                         "messages": [{"role": "user", "content": "hi"}],
                                         "self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast"}})
            assert response.status_code == 200, response.text
            report = response.json()["self_critic"]
            assert report["candidates"] == 4 and report["judge_calls"] == 6
    served = {name: {rid.split("-")[0] for rid in fake.request_ids[1:]}  # [0]: start-up probe
              for name, fake in fakes.items()}
    assert sorted(map(sorted, served.values())) == [["first"], ["second"]]
    assert set(fakes["http://a.test"].keys) == {"Bearer k1"}
    assert set(fakes["http://b.test"].keys) == {"Bearer k2"}


def test_plain_chat_streams_from_an_upstream(fakes) -> None:
    app = create_app(ServerSettings(upstream="http://a.test,http://b.test"))
    body = {"model": "fake-model", "max_tokens": 8, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(app) as client, client.stream("POST", "/v1/chat/completions",
                                                  json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert "answer" in "".join(lines)


def test_all_upstreams_down_is_a_503_not_an_exit_and_they_come_back(fakes) -> None:
    died: list[int] = []
    app = create_app(ServerSettings(upstream="http://a.test,http://b.test"),
                     on_engine_death=lambda: died.append(1))
    chat = {"model": "fake-model", "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(app) as client:
        for fake in fakes.values():
            fake.healthy = False
        response = client.post("/v1/chat/completions", json=chat)
        assert response.status_code == 503, response.text
        assert client.get("/health").status_code == 503
        time.sleep(1.5)  # the engine watchdog looks once a second
        assert not died
        for fake in fakes.values():
            fake.healthy = True
        deadline = time.monotonic() + 15
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
    assert not died


HERMES_ANSWER = ('Let me check. <tool_call>{"name": "get_weather", "arguments": '
                 '{"city": "Paris"}}</tool_call>')
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}


class ToolCallingUpstream(FakeUpstream):
    def words(self, index: int) -> list[str]:
        return [HERMES_ANSWER]


class HermesWordTokenizer(WordTokenizer):
    """Words, plus the two markers vLLM's hermes parser looks up in the vocabulary."""

    def __init__(self) -> None:
        super().__init__()
        self.vocab += ["<tool_call>", "</tool_call>"]

    def get_vocab(self) -> dict[str, int]:
        return {piece: i for i, piece in enumerate(self.vocab)}


def test_auto_tool_calls_are_read_from_an_upstreams_answer(monkeypatch) -> None:
    """`--tool-call-parser` works over `--upstream`: vLLM's parser reads the calls from
    the upstream's text with the tokenizer loaded here."""
    fake = ToolCallingUpstream("A")
    connect = UpstreamEngine.connect.__func__  # type: ignore[attr-defined]

    def fake_connect(cls, config, session_key):
        return connect(cls, config, session_key, tokenizer=HermesWordTokenizer(),
                       transport=lambda url: httpx.ASGITransport(app=create_fake_app(fake)))

    monkeypatch.setattr(UpstreamEngine, "connect", classmethod(fake_connect))
    settings = ServerSettings(upstream="http://a.test", tool_call_parser="hermes",
                              enable_auto_tool_choice=True)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/chat/completions", json={
            "model": "fake-model", "max_tokens": 64, "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["arguments"] == '{"city": "Paris"}'
    assert fake.calls[-1]["skip_special_tokens"] is False  # hermes reads its markers
