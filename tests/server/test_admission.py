"""Admission: what a request is charged, and when it is refused (a fake clock drives time)."""

from __future__ import annotations

import pytest

from critic_loop.config import SelfCriticConfig
from critic_loop.runtime.engines.scripted import ScriptedEngine, echo_responder
from server.edge.errors import APIError
from server.load.admission import AdmissionController, Overloaded, chat_cost, critique_cost
from server.load.capacity import PRIOR_TOKENS_PER_S, Capacity, WorkCost
from server.load.queue_probe import QueueDelayProbe
from server.media import images as media
from tests.support.image_fixtures import encoded

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def capacity(clock: FakeClock, **kw: object) -> Capacity:
    options: dict[str, object] = {"max_sequences": 64, "deadline_s": 100.0, "clock": clock,
                                  "queue_target_s": 1.0, "interval_s": 5.0,
                                  "probe_headroom": 0.0, **kw}
    return Capacity(**options)  # type: ignore[arg-type]


# -- what a request costs ------------------------------------------------------------------
def test_plain_chat_costs_its_samples_and_their_budget() -> None:
    cost = chat_cost(prompt_chars=400, n=3, max_tokens=100, critic=None)
    assert cost.sequences == 3
    assert cost.tokens == pytest.approx(3 * (100 / 8 + 100))


def test_self_critic_costs_candidates_and_every_judgment() -> None:
    fast = SelfCriticConfig(candidates=8, judge="fast", comparisons=2)
    cost = chat_cost(prompt_chars=400, n=1, max_tokens=100, critic=fast)
    assert cost.sequences == 8  # 4 first-round pairs × 2 judgments replace 8 candidates
    candidates = 8 * (100 / 8 + 100)
    judge_prompt = 160 + 100 + 2 * 100
    assert cost.tokens == pytest.approx(candidates + 7 * 2 * (judge_prompt / 8 + 1))
    reason = SelfCriticConfig(candidates=8, judge="reason", comparisons=2, judge_max_tokens=300)
    heavier = chat_cost(prompt_chars=400, n=1, max_tokens=100, critic=reason)
    assert heavier.tokens == pytest.approx(candidates + 7 * 2 * (judge_prompt / 8 + 300))


def test_sampled_judgments_are_charged_k_times_greedy_ones_twice() -> None:
    sampled = SelfCriticConfig(candidates=16, comparisons=8, judge_temperature=1.0)
    greedy = SelfCriticConfig(candidates=16, comparisons=8, judge_temperature=0.0)
    assert sampled.peak_sequences == 8 * 8 and greedy.peak_sequences == 16
    assert sampled.judge_generations == 15 * (8 + 1)  # splits may take the extra judgment
    assert greedy.judge_generations == 15 * 2
    heavy = chat_cost(100, 1, 64, sampled).tokens
    assert heavy > 4 * chat_cost(100, 1, 64, greedy).tokens


def test_rounds_and_a_pipelined_bye_peak_differently() -> None:
    pipelined = SelfCriticConfig(candidates=5, comparisons=4, judge_temperature=1.0,
                                 schedule="pipelined")
    rounds = SelfCriticConfig(candidates=5, comparisons=4, judge_temperature=1.0)
    assert rounds.peak_sequences == 2 * 4  # the bye finished before the first round
    assert pipelined.peak_sequences == 2 * 4 + 1  # the bye may still be generating


def test_critique_costs_its_judgments_over_the_responses() -> None:
    config = SelfCriticConfig(candidates=4, judge="fast", comparisons=2)
    cost = critique_cost(40, [400, 400, 800, 0], config)
    assert cost.sequences == 4
    judge_prompt = 160 + 10 + 2 * 100
    assert cost.tokens == pytest.approx(3 * 2 * (judge_prompt / 8 + 1))


def test_no_prompt_is_charged_for_more_than_the_context_holds() -> None:
    """A prompt too long for the context is a 400 once measured; charged by its length it
    would be refused with a 429 that no retry cures."""
    huge = chat_cost(prompt_chars=1_000_000, n=1, max_tokens=4096, critic=None, context=2048)
    assert huge.tokens == pytest.approx(2048 / 8 + 2048)
    assert chat_cost(1_000_000, 1, 4096, None).tokens > 10 * huge.tokens  # unbounded
    fast = SelfCriticConfig(candidates=4, judge="fast", comparisons=2)
    critic = chat_cost(1_000_000, 1, 100, fast, context=2048)
    assert critic.tokens == pytest.approx(4 * (2048 / 8 + 100)
                                          + 3 * 2 * ((160 + 2048) / 8 + 1))
    pair = SelfCriticConfig(candidates=2, judge="fast", comparisons=2)
    critique = critique_cost(40, [500_000, 500_000], pair, context=2048)
    assert critique.tokens == pytest.approx(2 * ((160 + 2048) / 8 + 1))


# -- deadline shedding ---------------------------------------------------------------------
def test_a_cold_server_admits_one_request_whatever_its_size() -> None:
    cap = capacity(FakeClock())
    huge = WorkCost(8, 100 * PRIOR_TOKENS_PER_S)  # 100 s at the prior: past the 50 s budget
    assert cap.decide(huge).admitted
    cap.start(huge)
    assert not cap.decide(WorkCost(1, 10)).admitted


def test_requests_that_would_miss_the_deadline_are_refused_with_retry_after() -> None:
    clock = FakeClock()
    cap = capacity(clock, prior_tokens_per_s=100.0)
    job = WorkCost(1, 2000)  # 20 s at 100 tokens/s; the budget is half of 100 s
    admitted = 0
    while (decision := cap.decide(job)).admitted:
        cap.start(job)
        admitted += 1
    assert admitted == 2  # 20 s, 40 s; a third would finish at 60 s
    assert decision.reason == "deadline"
    assert decision.predicted_s == pytest.approx(60)
    assert decision.retry_after_s == 10  # until 1000 tokens of the backlog have drained
    clock.tick(10)  # the backlog drains at the estimated rate
    assert cap.decide(job).admitted


def test_throughput_is_measured_from_finished_work() -> None:
    clock = FakeClock()
    cap = capacity(clock, prior_tokens_per_s=10.0)
    job = WorkCost(1, 1000)
    for _ in range(3):  # 1000 tokens finish every 2 busy seconds: 500 tokens/s
        cap.start(job)
        clock.tick(2)
        cap.finish(job)
    assert 250 < cap.tokens_per_s < 500  # the prior (10/s for 5 s) still weighs in
    for _ in range(30):
        cap.start(job)
        clock.tick(2)
        cap.finish(job)
    assert 480 < cap.tokens_per_s < 500  # the prior has faded with the old measurements
    assert cap.backlog == 0 and cap.in_flight_sequences == 0


def test_idle_time_does_not_count_as_slow() -> None:
    clock = FakeClock()
    cap = capacity(clock, prior_tokens_per_s=10.0)
    job = WorkCost(1, 1000)
    cap.start(job)
    clock.tick(2)
    cap.finish(job)
    before = cap.tokens_per_s
    clock.tick(600)
    cap.decide(job)
    assert cap.tokens_per_s == before


def test_without_a_standing_queue_admission_probes_for_more_throughput() -> None:
    clock = FakeClock()
    cap = capacity(clock, prior_tokens_per_s=100.0, probe_headroom=0.5)
    job = WorkCost(1, 2000)
    admitted = 0
    while (decision := cap.decide(job)).admitted:
        cap.start(job)
        admitted += 1
    assert admitted == 3  # planned at 150 tokens/s: 6000 tokens fit 50 s, 8000 do not
    assert decision.retry_after_s == 5  # 500 tokens over, drained at the measured 100/s
    cap.record_queue_delay(3.0)  # a queue stands: plan with what was measured
    clock.tick(5)
    assert not cap.decide(job).admitted  # 5500 + 2000 tokens at 100/s: 75 s
    assert cap.planning_tokens_per_s == pytest.approx(cap.tokens_per_s)


# -- the CoDel-style limit -----------------------------------------------------------------
def test_a_standing_queue_lowers_the_limit_and_its_absence_raises_it() -> None:
    clock = FakeClock()
    cap = capacity(clock)
    assert cap.limit == 64
    cap.record_queue_delay(4.0)
    cap.record_queue_delay(1.5)  # the interval's smallest delay is what counts
    clock.tick(5)
    cap.decide(WorkCost(1, 1))
    assert cap.queue_delay_s == 1.5 and cap.limit == int(64 * 1.0 / 1.5)
    cap.record_queue_delay(30.0)  # at most halved per interval
    clock.tick(5)
    cap.decide(WorkCost(1, 1))
    assert cap.limit == 21
    for _ in range(3):  # below target: one step (64 // 32) per interval
        cap.record_queue_delay(0.2)
        clock.tick(5)
        cap.decide(WorkCost(1, 1))
    assert cap.limit == 27
    clock.tick(5)  # an interval without samples changes nothing
    cap.decide(WorkCost(1, 1))
    assert cap.limit == 27 and cap.queue_delay_s is None


def test_the_limit_never_passes_the_ceiling_or_falls_below_the_floor() -> None:
    clock = FakeClock()
    cap = capacity(clock)
    for delay in [100.0] * 20 + [0.0] * 100:
        cap.record_queue_delay(delay)
        clock.tick(5)
        cap.decide(WorkCost(1, 1))
        assert 8 <= cap.limit <= 64
    assert cap.limit == 64


def test_sequences_over_the_limit_are_refused_with_a_share_of_the_backlog() -> None:
    clock = FakeClock()
    cap = capacity(clock, prior_tokens_per_s=100.0)
    cap.limit = 10
    first = WorkCost(8, 1000)
    cap.start(first)
    decision = cap.decide(WorkCost(4, 100))
    assert (decision.admitted, decision.reason) == (False, "capacity")
    assert decision.retry_after_s == 3  # 2 of 8 sequences must go: a quarter of 10 s
    assert cap.decide(WorkCost(2, 100)).admitted


# -- the controller and the HTTP face ------------------------------------------------------
def test_the_controller_raises_429_with_retry_after_and_releases_once() -> None:
    clock = FakeClock()
    controller = AdmissionController(capacity(clock, prior_tokens_per_s=100.0,
                                              draw=lambda: 0.0))
    release = controller.acquire(WorkCost(1, 4000))
    with pytest.raises(Overloaded) as refused:
        controller.acquire(WorkCost(1, 2000))
    assert refused.value.status == 429 and refused.value.reason == "deadline"
    assert refused.value.headers == {"Retry-After": "10", "Retry-After-Ms": "10000"}
    release()
    release()
    assert controller.capacity.in_flight_sequences == 0
    assert controller.capacity.backlog == 0


def test_clients_refused_together_are_told_to_come_back_spread_out() -> None:
    """Retry-After stays the estimate; Retry-After-Ms (read first by OpenAI's SDKs) draws
    from 1 to 1.5 times it, so a flood's refused clients do not return as one burst."""
    draws = iter([0.0, 0.5, 0.999])
    cap = capacity(FakeClock(), prior_tokens_per_s=100.0, draw=lambda: next(draws))
    cap.start(WorkCost(1, 4000))
    refusals = [cap.decide(WorkCost(1, 2000)) for _ in range(3)]
    assert {d.retry_after_s for d in refusals} == {10}
    assert [d.retry_after_ms for d in refusals] == [10000, 12500, 14995]


def test_the_controller_feeds_queue_delays_and_refuses_what_exceeds_the_ceiling() -> None:
    clock = FakeClock()
    delays = iter([3.0, None])
    controller = AdmissionController(capacity(clock), lambda: next(delays))
    controller.acquire(WorkCost(1, 1))
    clock.tick(5)
    controller.acquire(WorkCost(1, 1))
    assert controller.capacity.limit < 64
    with pytest.raises(APIError) as too_big:
        controller.acquire(WorkCost(65, 1))
    assert too_big.value.status == 400 and too_big.value.code == "too_many_sequences"


def test_the_queue_probe_reads_the_lowest_bucket_that_grew() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    registry = CollectorRegistry()
    queue = Histogram("vllm:request_queue_time_seconds", "queue", ["model_name"],
                      buckets=(0.3, 1.0, 5.0, 20.0), registry=registry)
    queue.labels("m").observe(0.1)  # before the probe: not counted
    probe = QueueDelayProbe(registry)
    assert probe() is None
    queue.labels("m").observe(7.0)
    queue.labels("m").observe(3.0)
    assert probe() == 1.0  # 3 s fell in (1, 5]: at least 1 s
    queue.labels("m").observe(0.2)
    assert probe() == 0.0
    assert QueueDelayProbe(CollectorRegistry())() is None


# -- end to end on the scripted engine -----------------------------------------------------
def test_overload_is_a_429_with_retry_after_and_counted_by_reason(make_client) -> None:
    client = make_client(ScriptedEngine(echo_responder, model_name="tiny"),
                         request_timeout_s=10)
    capacity_ = client.app.state.selfcritic.admission.capacity
    capacity_.start(WorkCost(1, 10_000))  # someone else's long job is in flight
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 8,
        "self_critic": {"candidates": 4, "judge": "fast"}})
    assert reply.status_code == 429, reply.text
    assert reply.json()["error"]["code"] == "overloaded"
    assert int(reply.headers["retry-after"]) >= 1
    metrics = client.get("/metrics").text
    assert 'selfcritic_rejections_total{reason="deadline"}' in metrics
    assert "selfcritic_admission_limit 256.0" in metrics
    assert "selfcritic_estimated_tokens_per_second" in metrics


def test_a_full_server_refuses_before_templating_anything(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny")
    client = make_client(engine, request_timeout_s=10)
    capacity_ = client.app.state.selfcritic.admission.capacity
    capacity_.start(WorkCost(1, 10_000))  # a backlog no request could wait behind
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 8})
    assert reply.status_code == 429, reply.text
    assert engine.rendered == []  # refused before the chat template ran
    capacity_.finish(WorkCost(1, 10_000))
    assert client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 8}).status_code == 200
    assert len(engine.rendered) == 1


def test_comparisons_are_capped(make_client) -> None:
    client = make_client(max_comparisons=4)
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 4,
        "self_critic": {"candidates": 2, "comparisons": 6}})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "self_critic.comparisons"
    critique = client.post("/v1/critique", json={
        "model": "tiny", "question": "Which?", "responses": ["a", "b"], "comparisons": 6})
    assert critique.status_code == 400
    assert critique.json()["error"]["param"] == "comparisons"


class RecordingFetcher:
    """Stands in for the image fetcher: notes, at each fetch, how many sequences had been
    admitted (the request's own are among them once it is admitted)."""

    def __init__(self, capacity_: Capacity) -> None:
        self.capacity = capacity_
        self.admitted_at_fetch: list[int] = []

    async def __call__(self, url: str, allow: object, max_bytes: int) -> bytes:
        self.admitted_at_fetch.append(self.capacity.in_flight_sequences)
        return encoded("red")


IMAGE_URL = "http://images.test/cat.png"
IMAGE_REQUESTS = {
    "/v1/critique": {"question": "Which is right?", "images": [IMAGE_URL],
                     "responses": ["red", "blue"], "judge": "fast"},
    "/v1/chat/completions": {"model": "tiny", "max_tokens": 8, "messages": [{
        "role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE_URL}},
                                    {"type": "text", "text": "What colour?"}]}]},
}


@pytest.mark.parametrize("path", list(IMAGE_REQUESTS))
def test_a_request_is_admitted_before_any_image_is_fetched(make_client, monkeypatch,
                                                           path) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", supports_images=True)
    client = make_client(engine, request_timeout_s=10, allowed_media_domains="images.test")
    capacity_ = client.app.state.selfcritic.admission.capacity
    fetcher = RecordingFetcher(capacity_)
    monkeypatch.setattr(media, "fetch_image_bytes", fetcher)

    capacity_.start(WorkCost(1, 10_000))  # a backlog no request could wait behind
    reply = client.post(path, json=IMAGE_REQUESTS[path])
    assert reply.status_code == 429, reply.text
    assert fetcher.admitted_at_fetch == []  # refused at admission: nothing was fetched
    capacity_.finish(WorkCost(1, 10_000))

    reply = client.post(path, json=IMAGE_REQUESTS[path])
    assert reply.status_code == 200, reply.text
    assert len(fetcher.admitted_at_fetch) == 1 and fetcher.admitted_at_fetch[0] >= 1
    assert capacity_.in_flight_sequences == 0  # released once answered
