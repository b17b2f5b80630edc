"""Templating and tokenising never run on the event loop, and text that cannot fit the
context by its size alone is a 400 before anything is tokenised."""

from __future__ import annotations

import asyncio

from critic_loop.engine import PromptTooLongError
from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from server.settings import ServerSettings
from tests.knockout import KNOCKOUT

TOO_LONG = "This model's maximum context length is 2048 tokens. However, ..."


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Watched(ScriptedEngine):
    """Records, for every render and count, whether it ran on the event loop."""

    def __init__(self, too_long: bool = False) -> None:
        super().__init__(echo_responder, model_name="tiny")
        self.on_loop: list[bool] = []
        self.too_long = too_long

    def render_prompt(self, messages, tools=None):
        self.on_loop.append(on_event_loop())
        if self.too_long:
            raise PromptTooLongError(TOO_LONG)
        return super().render_prompt(messages, tools)

    def count_text_tokens(self, texts):
        self.on_loop.append(on_event_loop())
        if self.too_long:
            raise PromptTooLongError(TOO_LONG)
        return super().count_text_tokens(texts)


def test_chat_and_self_critic_render_off_the_event_loop(make_client) -> None:
    engine = Watched()
    client = make_client(engine)
    messages = [{"role": "user", "content": "Hi"}]
    plain = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages})
    critic = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": messages, "self_critic": {**KNOCKOUT, "candidates": 3}})
    assert plain.status_code == critic.status_code == 200
    # the prompt, the judge budget's empty judge prompt, then the judge prompts
    assert len(engine.on_loop) >= 4 and not any(engine.on_loop)


def test_critique_renders_and_counts_off_the_event_loop(make_client) -> None:
    engine = Watched()
    response = make_client(engine).post("/v1/critique", json={
        "question": "2+2?", "responses": ["4", "5", "four"], "comparisons": 2})
    assert response.status_code == 200
    assert len(engine.on_loop) >= 3 and not any(engine.on_loop)


def test_messages_too_long_by_size_are_a_context_length_400(make_client) -> None:
    client = make_client(Watched(too_long=True))
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    assert error["message"] == TOO_LONG


def test_critique_text_too_long_by_size_names_the_field(make_client) -> None:
    class LongResponses(Watched):
        def render_prompt(self, messages, tools=None):
            return ScriptedEngine.render_prompt(self, messages, tools)

    for engine, param, body in (
            (Watched(too_long=True), "question", {"question": "q", "responses": ["a", "b"]}),
            (LongResponses(too_long=True), "responses",
             {"question": "q", "responses": ["a", "b"]})):
        response = make_client(engine).post("/v1/critique", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("context_length_exceeded", param)


def test_the_default_body_limit_is_what_a_context_can_hold(make_client) -> None:
    assert ServerSettings().max_body_bytes == 1024 * 1024
    big = "x" * (1024 * 1024)
    response = make_client().post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": big}]})
    assert response.status_code == 413
