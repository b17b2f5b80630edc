"""The endpoint client: URL roots, error messages in OpenAI's and other shapes, retries."""

from __future__ import annotations

import httpx
import pytest

from evaluation.client import ChatClient, EndpointError


def client_for(handler, **kwargs: object) -> ChatClient:
    return ChatClient("http://x:1/", transport=httpx.MockTransport(handler), **kwargs)


async def test_posts_under_v1_with_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "hi"}}],
                                         "usage": {"prompt_tokens": 3, "completion_tokens": 2}})

    async with client_for(handler, api_key="k") as client:
        reply = await client.chat({"model": "m"})
    assert str(seen[0].url) == "http://x:1/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer k"
    assert reply.texts == ["hi"] and reply.tokens == 5 and reply.seconds >= 0
    async with ChatClient("http://x:1/v1", transport=httpx.MockTransport(handler)) as client:
        await client.chat({})
    assert str(seen[1].url) == "http://x:1/v1/chat/completions"


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(400, json={"error": {"message": "n too big"}}), "n too big"),
    (httpx.Response(422, json={"detail": [{"msg": "bad"}]}), "bad"),
    (httpx.Response(404, text="nope"), "nope"),
])
async def test_refusals_carry_the_servers_message(response: httpx.Response, message: str) -> None:
    async with client_for(lambda request: response) as client:
        with pytest.raises(EndpointError, match=message) as error:
            await client.chat({})
    assert error.value.refused and error.value.status == response.status_code


async def test_overload_retried_then_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"message": "x"}})

    monkeypatch.setattr("evaluation.client.MAX_RETRIES", 2)
    async with client_for(handler) as client:
        with pytest.raises(EndpointError) as error:
            await client.chat({})
    assert len(calls) == 3 and not error.value.refused


async def test_transport_errors_have_status_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with client_for(handler) as client:
        with pytest.raises(EndpointError, match="ConnectError") as error:
            await client.chat({})
    assert error.value.status == 0 and not error.value.refused
