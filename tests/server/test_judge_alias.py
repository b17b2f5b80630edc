"""`MODEL:judge`: a server whose engine has a judge adapter serves it as a model name, so
that an engine in front of it (`--upstream`, the calibration) judges with the trained
judge; answers keep the base weights. Without an adapter the name does not exist."""

from __future__ import annotations

import openai
import pytest

from critic_loop.engine import JUDGE_ADAPTER
from critic_loop.runtime.engines.scripted import ScriptedEngine, echo_responder


@pytest.fixture
def judged(make_client):
    return make_client(ScriptedEngine(echo_responder, model_name="tiny", has_judge_adapter=True))


def _sdk(client) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="-", http_client=client)


def test_the_judge_alias_is_listed_only_with_an_adapter(judged, client) -> None:
    assert [m.id for m in _sdk(judged).models.list()] == ["tiny", "tiny:self-critic",
                                                            "tiny:judge"]
    assert _sdk(judged).models.retrieve("tiny:judge").id == "tiny:judge"
    assert "tiny:judge" not in [m.id for m in _sdk(client).models.list()]


def test_completions_and_chat_for_the_alias_run_with_the_judge_adapter(judged) -> None:
    sdk = _sdk(judged)
    sdk.completions.create(model="tiny:judge", prompt=[5, 6, 7], max_tokens=1)
    sdk.completions.create(model="tiny", prompt=[5, 6, 7], max_tokens=1)
    sdk.chat.completions.create(model="tiny:judge", max_tokens=2,
                                messages=[{"role": "user", "content": "1 or 2?"}])
    sdk.chat.completions.create(model="tiny", max_tokens=2,
                                messages=[{"role": "user", "content": "1 or 2?"}])
    assert [r.adapter for r in judged.engine.requests] == [JUDGE_ADAPTER, None,
                                                            JUDGE_ADAPTER, None]


@pytest.mark.parametrize("path, body", [
    ("/v1/completions", {"prompt": "x", "max_tokens": 1}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]})])
def test_without_an_adapter_the_alias_is_a_404(client, path: str, body: dict) -> None:
    response = client.post(path, json={"model": "tiny:judge", **body})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "model_not_found"
    assert not client.engine.requests
