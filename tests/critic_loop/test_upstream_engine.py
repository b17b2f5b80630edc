"""The upstream engine over fake OpenAI-compatible servers: balancing, affinity, ejection
and readmission, failing over once, per-upstream keys, fast-verdict capability."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from critic_loop.engine import (
    JUDGE_ADAPTER,
    EngineError,
    GenerationRequest,
    InvalidRequestError,
    PromptTooLongError,
    SamplingOptions,
    StructuredOutput,
)
from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.runtime.engines.upstream import UpstreamConfig, UpstreamEngine
from tests.support.fake_upstream import FakeUpstream, WordTokenizer, create_fake_app

SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("session", default=None)
SECRET = "sk-secret-upstream-a"


class FakeTransport(httpx.AsyncBaseTransport):
    """Reaches a fake in-process; can be down, or cut streams after `cut_after` events."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.inner = httpx.ASGITransport(app=create_fake_app(fake))
        self.down = False
        self.cut_after: int | None = None
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/completions":
            self.attempts += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        if self.cut_after is not None and json.loads(request.content).get("stream"):
            body = await response.aread()
            events = body.split(b"\n\n")[: self.cut_after]
            return httpx.Response(200, stream=_Cut(b"".join(e + b"\n\n" for e in events)))
        return response


class _Cut(httpx.AsyncByteStream):
    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise httpx.RemoteProtocolError("peer closed connection mid-stream")


Connect = Callable[..., Awaitable[tuple[UpstreamEngine, list[FakeUpstream], list[FakeTransport]]]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    engines: list[UpstreamEngine] = []

    async def make(*fakes: FakeUpstream, keys: tuple[str, ...] = ()
                   ) -> tuple[UpstreamEngine, list[FakeUpstream], list[FakeTransport]]:
        transports = {f"http://{f.name}.test": FakeTransport(f) for f in fakes}
        config = UpstreamConfig(urls=tuple(transports), api_keys=keys, probe_interval_s=0.02)
        engine = await UpstreamEngine.connect(config, session_key=SESSION.get,
                                              transport=transports.__getitem__,
                                              tokenizer=WordTokenizer())
        engines.append(engine)
        for transport in transports.values():
            transport.attempts = 0  # count the calls a test makes, not the start-up probe
        return engine, list(fakes), list(transports.values())

    yield make
    for engine in engines:
        await engine.close()


def request(rid: str = "r", n: int = 1, **options: object) -> GenerationRequest:
    return GenerationRequest(rid, "user: hello assistant:", SamplingOptions(**options), n=n)


async def answered_by(engine: UpstreamEngine, session: str, req: GenerationRequest) -> str:
    """Which fake answered a call made as part of request `session`."""
    SESSION.set(session)
    (result,) = await engine.generate([req])
    return result.completions[0].text.split(" ")[0]


async def test_new_requests_spread_by_outstanding_calls_and_keep_their_upstream(connect):
    engine, _, _ = await connect(FakeUpstream("A", delay_s=0.05), FakeUpstream("B", delay_s=0.05))
    first = await asyncio.gather(*(answered_by(engine, f"k{i}", request(f"k{i}-1"))
                                   for i in range(4)))
    assert sorted(first) == ["A", "A", "B", "B"]  # each new request went to the idler one
    again = await asyncio.gather(*(answered_by(engine, f"k{i}", request(f"k{i}-2"))
                                   for i in range(4)))
    assert again == first  # every later call of a request stays on its upstream


async def test_a_failed_upstream_is_ejected_its_call_fails_over_and_it_is_probed_back(connect):
    engine, _, (ta, tb) = await connect(FakeUpstream("A"), FakeUpstream("B"))
    ta.down = True
    SESSION.set("s1")
    (result,) = await engine.generate([request()])
    assert result.completions[0].text.startswith("B")
    assert ta.attempts == 1 and tb.attempts == 1
    upstream_a = engine.pool.upstreams[0]
    assert not upstream_a.admitted and await engine.is_healthy()
    SESSION.set("s2")
    (result,) = await engine.generate([request()])
    assert result.completions[0].text.startswith("B") and ta.attempts == 1  # not picked
    ta.down = False
    for _ in range(100):
        if upstream_a.admitted:
            break
        await asyncio.sleep(0.02)
    assert upstream_a.admitted


async def test_a_call_fails_over_at_most_once(connect):
    engine, _, (ta, tb, _) = await connect(FakeUpstream("A"), FakeUpstream("B"),
                                           FakeUpstream("C"))
    ta.down = tb.down = True
    with pytest.raises(EngineError, match="two upstreams"):
        await engine.generate([request()])
    assert ta.attempts == tb.attempts == 1
    assert [u.admitted for u in engine.pool.upstreams] == [False, False, True]


async def test_every_upstream_down_is_unhealthy_and_a_clear_error(connect):
    engine, _, (ta,) = await connect(FakeUpstream("A"))
    ta.down = True
    with pytest.raises(EngineError):
        await engine.generate([request()])
    assert not await engine.is_healthy()
    with pytest.raises(EngineError, match="no upstream"):
        await engine.generate([request()])


async def test_a_stream_cut_midway_continues_on_another_upstream(connect):
    engine, (_, b), (ta, _) = await connect(FakeUpstream("A"), FakeUpstream("B"))
    ta.cut_after = 2  # "A", " answer", then the connection drops
    SESSION.set("s")
    deltas = [d async for d in engine.stream(request(max_tokens=16))]
    assert "".join(d.text for d in deltas) == "A answerB answer 0 done"
    assert deltas[-1].finish_reason == "stop"
    prompt = engine._encode("user: hello assistant:")
    continuation = b.calls[-1]
    assert continuation["prompt"] == [*prompt, 100, 101]  # the tokens A already sent
    assert continuation["max_tokens"] == 14
    assert sum(d.completion_tokens for d in deltas) == 6
    assert not engine.pool.upstreams[0].admitted


async def test_a_stream_that_fails_before_any_token_restarts_elsewhere(connect):
    engine, _, (ta, _tb) = await connect(FakeUpstream("A"), FakeUpstream("B"))
    ta.down = True
    deltas = [d async for d in engine.stream(request(n=2, max_tokens=16))]
    texts = {i: "".join(d.text for d in deltas if d.index == i) for i in (0, 1)}
    assert texts == {0: "B answer 0 done", 1: "B answer 1 done"}
    assert deltas[0].prompt_tokens == 3


async def test_keys_go_to_their_own_upstream_and_never_to_logs(connect, caplog):
    caplog.set_level(logging.DEBUG)
    engine, (a, b), (ta, _) = await connect(FakeUpstream("A"), FakeUpstream("B"),
                                            keys=(SECRET, ""))
    SESSION.set("one")
    await engine.generate([request("x")])
    SESSION.set("two")
    await engine.generate([request("y")])
    assert set(a.keys) == {f"Bearer {SECRET}"} and set(b.keys) == {None}
    ta.down = True  # failures are logged: the key must not be
    SESSION.set("three")
    await engine.generate([request("z")])
    assert "ejected" in caplog.text and SECRET not in caplog.text
    assert SECRET not in repr(engine.config) + repr(engine.pool.upstreams)


def test_key_count_must_match():
    UpstreamConfig(urls=("http://a", "http://b"), api_keys=("k",))
    with pytest.raises(ValueError, match="one per upstream") as caught:
        UpstreamConfig(urls=("http://a", "http://b"), api_keys=("k1", "k2", "k3"))
    assert "k1" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://a.test", "http://a.test/", "http://a.test/v1",
                                 "http://a.test/v1/"])
async def test_an_upstream_is_reached_by_its_root_or_its_v1_base_url(url):
    """The openai client, LiteLLM and optillm take the `/v1` base URL; both forms work."""
    fake = FakeUpstream("A")
    transport = FakeTransport(fake)
    config = UpstreamConfig(urls=(url,), probe_interval_s=0.02, connect_wait_s=0)
    assert config.urls == ("http://a.test",)
    engine = await UpstreamEngine.connect(config, transport=lambda _: transport,
                                          tokenizer=WordTokenizer())
    try:
        assert engine.pool.upstreams[0].admitted  # /health answered at the root
        (result,) = await engine.generate([request()])
        assert result.completions[0].text == "A answer 0 done"
        assert len(fake.calls) == 2  # the start-up probe of vLLM's extras, then this call
    finally:
        await engine.close()


async def test_an_upstream_answering_404_is_named_so_not_as_silence():
    paths: list[str] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(404, json={"detail": "Not Found"})

    config = UpstreamConfig(urls=("http://a.test/openai/v1",), connect_wait_s=0)
    with pytest.raises(EngineError) as caught:
        await UpstreamEngine.connect(config, transport=lambda _: httpx.MockTransport(not_found),
                                     tokenizer=WordTokenizer())
    assert paths == ["/openai/v1/models"]  # the /v1 given was not doubled
    assert "http://a.test/openai/v1/models answered HTTP 404" in str(caught.value)


async def test_fast_verdicts_use_vllm_extras_when_the_upstream_takes_them(connect, caplog):
    caplog.set_level(logging.INFO)
    engine, (a,), _ = await connect(FakeUpstream("A"))
    assert engine.pool.upstreams[0].vllm_extras
    assert "fast verdicts are exact" in caplog.text
    (result,) = await engine.generate([request(max_tokens=1, temperature=0,
                                               choices=VERDICT_CHOICES)])
    body = a.calls[-1]
    assert body["allowed_token_ids"] == body["logprob_token_ids"] == [1, 2, 3, 4]
    logprobs = result.completions[0].choice_logprobs
    assert set(logprobs) == {"1", "2"} and logprobs["1"] > logprobs["2"]


async def test_without_vllm_extras_fast_verdicts_fall_back_and_say_so(connect, caplog):
    caplog.set_level(logging.INFO)
    engine, (a,), _ = await connect(FakeUpstream("A", vllm_extras=False))
    assert not engine.pool.upstreams[0].vllm_extras
    assert "does not take vLLM's allowed_token_ids" in caplog.text
    (verdict, sample) = await engine.generate([
        request("v", max_tokens=1, temperature=0, choices=VERDICT_CHOICES),
        request("s", max_tokens=3, logprobs=1)])
    assert verdict.completions[0].choice_logprobs == {"2": -0.2, "1": -1.7}
    assert "logit_bias" in a.calls[-2] or "logit_bias" in a.calls[-1]
    completion = sample.completions[0]
    assert completion.text == "A answer 0" and completion.finish_reason == "length"
    assert completion.completion_tokens == 3  # counted here: no token ids came back
    assert [t.token for t in completion.logprobs] == ["A", " answer", " 0"]


async def test_greedy_n_is_one_upstream_sample_and_logprobs_read_token_ids(connect):
    engine, (a,), _ = await connect(FakeUpstream("A"))
    (result,) = await engine.generate([request(n=3, temperature=0, max_tokens=8, logprobs=1)])
    assert a.calls[-1]["n"] == 1 and len(result.completions) == 3
    assert len({c.text for c in result.completions}) == 1
    assert result.cached_tokens == 3 and result.prompt_tokens == 3
    top = result.completions[0].logprobs[0].top
    assert top[0][1] == -0.5 and len(top) == 1


async def test_a_prompt_too_long_never_reaches_an_upstream(connect):
    engine, _, (ta,) = await connect(FakeUpstream("A", max_model_len=6))
    assert engine.max_model_len == 6
    with pytest.raises(PromptTooLongError, match="maximum context length is 6"):
        await engine.generate([request(max_tokens=4)])
    assert ta.attempts == 0


async def test_vllm_sampling_extras_are_forwarded_and_a_refusal_is_the_callers(connect):
    engine, (a,), (ta,) = await connect(FakeUpstream("A"))
    await engine.generate([request(max_tokens=4, presence_penalty=0.5, top_k=5,
                                   logit_bias=((7, -100.0),), stop_token_ids=(9,),
                                   structured=StructuredOutput(json_object=True))])
    sent = a.calls[-1]
    assert sent["presence_penalty"] == 0.5 and sent["top_k"] == 5
    assert sent["logit_bias"] == {"7": -100.0} and sent["stop_token_ids"] == [9]
    assert sent["structured_outputs"] == {"json_object": True}
    assert "frequency_penalty" not in sent  # defaults stay off the wire
    with pytest.raises(InvalidRequestError, match="invalid regex"):
        await engine.generate([request(structured=StructuredOutput(regex="("))])
    assert engine.pool.upstreams[0].admitted and ta.attempts == 2  # not an upstream failure


async def test_token_ids_rendered_by_render_prompt_are_sent_as_they_are(connect):
    engine, (a,), _ = await connect(FakeUpstream("A"))
    rendered = GenerationRequest("r", "user: hi assistant:", SamplingOptions(max_tokens=2),
                                 prompt_ids=(11, 12, 13))
    (result,) = await engine.generate([rendered])
    assert a.calls[-1]["prompt"] == [11, 12, 13] and result.prompt_tokens == 3


async def test_judgments_go_to_the_upstreams_judge_adapter_when_it_lists_one(connect):
    engine, (a,), _ = await connect(FakeUpstream("A", aliases=(":self-critic", ":judge")))
    assert engine.model_name == "fake-model" and engine.has_judge_adapter
    judgment = GenerationRequest("j", "user: 1 or 2? assistant:", SamplingOptions(
        max_tokens=1, temperature=0, choices=VERDICT_CHOICES), adapter=JUDGE_ADAPTER)
    await engine.generate([judgment, request("s", max_tokens=3)])
    assert sorted(call["model"] for call in a.calls[-2:]) == ["fake-model", "fake-model:judge"]


async def test_without_a_listed_judge_adapter_judgments_use_the_model(connect):
    engine, (a,), _ = await connect(FakeUpstream("A"))
    assert not engine.has_judge_adapter
    await engine.generate([GenerationRequest("j", "q", SamplingOptions(max_tokens=1),
                                             adapter=JUDGE_ADAPTER)])
    assert a.calls[-1]["model"] == "fake-model"
