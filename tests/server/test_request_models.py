"""Every request model forbids unknown fields through one base, so no endpoint can forget
the rule; only OpenAI's nested objects tolerate what SDKs add to them."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from server.chat.protocol import ChatCompletionRequest
from server.completions.protocol import CompletionRequest
from server.critique.protocol import CritiqueRequest
from server.protocol.base import OpenAIObject, RequestModel
from server.protocol.messages import ChatMessage

MESSAGES = [{"role": "user", "content": "Hi"}]
GOOD_BODIES = {
    "/v1/chat/completions": {"model": "tiny", "messages": MESSAGES},
    "/v1/completions": {"model": "tiny", "prompt": "Hi"},
    "/v1/critique": {"question": "2+2?", "responses": ["4", "5"]},
}


@pytest.mark.parametrize("path", list(GOOD_BODIES))
def test_an_unknown_field_is_a_400_naming_it_on_every_endpoint(client, path) -> None:
    assert client.post(path, json=GOOD_BODIES[path]).status_code == 200
    response = client.post(path, json={**GOOD_BODIES[path], "bogus_field": 1})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "bogus_field"


def _models_in(annotation: object) -> set[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    return {m for arg in typing.get_args(annotation) for m in _models_in(arg)}


def _reachable(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for field in model.model_fields.values():
            todo.extend(_models_in(field.annotation))
    return seen


@pytest.mark.parametrize("root", [ChatCompletionRequest, CompletionRequest, CritiqueRequest])
def test_every_model_in_a_request_forbids_extras_unless_it_is_openais(root) -> None:
    models = _reachable(root)
    assert issubclass(root, RequestModel)
    assert len(models) > 1  # the walk reaches the nested objects
    for model in models:
        extra = model.model_config.get("extra")
        if issubclass(model, OpenAIObject):
            assert extra == ("allow" if model is ChatMessage else "ignore"), model
        else:
            assert extra == "forbid", model


def test_openai_objects_tolerate_what_sdks_add(client) -> None:
    """`stream_options.include_obfuscation` is a newer SDK field; it changes nothing here."""
    response = client.post("/v1/chat/completions", json={
        **GOOD_BODIES["/v1/chat/completions"], "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False}})
    assert response.status_code == 200
    assert '"usage"' in response.text
