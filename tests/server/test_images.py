"""Images through the API on the scripted engine: chat, self-critic and /v1/critique carry
the decoded images to every engine request; a text-only model answers images with a 400."""

from __future__ import annotations

from typing import Any

from image_fixtures import BLUE_PNG, RED_PNG, image_part

from critic_loop.engine import GenerationRequest
from critic_loop.engines.scripted import ScriptedEngine
from tests.knockout import KNOCKOUT


class Recorder:
    """A responder that keeps every request it answers (fast judgments say "1")."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest, index: int) -> str:
        self.requests.append(request)
        return request.sampling.choices[0] if request.sampling.choices else f"answer {index}"

    def colours(self) -> list[list[tuple[int, int, int]]]:
        return [[image.getpixel((0, 0)) for image in r.images] for r in self.requests]


def vision_engine(recorder: Recorder, **options: Any) -> ScriptedEngine:
    return ScriptedEngine(recorder, model_name="tiny", supports_images=True, **options)


def image_chat(*extra: dict[str, Any], **fields: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": "Which"}, image_part(RED_PNG),
               {"type": "text", "text": "is brighter than"}, image_part(BLUE_PNG), *extra]
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **fields}


RED, BLUE = (255, 0, 0), (0, 0, 255)


def test_chat_sends_the_images_in_place(make_client) -> None:
    recorder = Recorder()
    client = make_client(vision_engine(recorder))
    reply = client.post("/v1/chat/completions", json=image_chat(max_tokens=8))
    assert reply.status_code == 200, reply.text
    [request] = recorder.requests
    assert "Which <image> is brighter than <image>" in request.prompt
    assert recorder.colours() == [[RED, BLUE]]


def test_self_critic_candidates_and_every_judgment_see_the_images(make_client) -> None:
    recorder = Recorder()
    client = make_client(vision_engine(recorder))
    critic = {**KNOCKOUT, "candidates": 4, "judge": "fast", "return_trace": True}
    reply = client.post("/v1/chat/completions",
                        json=image_chat(max_tokens=8, self_critic=critic))
    assert reply.status_code == 200, reply.text
    report = reply.json()["self_critic"]
    assert report["images"] == 2 and report["trace"]["images"] == 2
    judgments = [r for r in recorder.requests if r.sampling.choices]
    assert len(judgments) == report["judge_calls"] > 0
    assert all(colours == [RED, BLUE] for colours in recorder.colours())
    # the paper's layout: images, then the question, the responses, the instruction
    assert all(r.prompt.index("<image>") < r.prompt.index("[Question]") for r in judgments)
    assert "image" not in str(report["trace"]["candidates"])  # counts, never image data


def test_critique_takes_images_beside_the_question_or_in_messages(make_client) -> None:
    recorder = Recorder()
    client = make_client(vision_engine(recorder))
    reply = client.post("/v1/critique", json={
        "question": "Which colour is shown?", "images": [BLUE_PNG],
        "responses": ["blue", "red"], "judge": "fast"})
    assert reply.status_code == 200, reply.text
    assert recorder.colours() == [[BLUE], [BLUE]]
    assert "[Question]\nWhich colour is shown?" in recorder.requests[0].prompt

    recorder.requests.clear()
    messages = image_chat()["messages"]
    reply = client.post("/v1/critique", json={"messages": messages,
                                              "responses": ["red", "blue"], "judge": "fast"})
    assert reply.status_code == 200, reply.text
    assert recorder.colours() == [[RED, BLUE], [RED, BLUE]]


def test_a_text_only_model_answers_images_with_a_400(make_client) -> None:
    client = make_client()
    reply = client.post("/v1/chat/completions", json=image_chat())
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "images_not_supported"
    reply = client.post("/v1/critique", json={"question": "?", "images": [RED_PNG],
                                              "responses": ["a", "b"]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "images"


def test_a_bad_image_is_a_400_naming_message_and_part(make_client) -> None:
    client = make_client(vision_engine(Recorder()))
    body = image_chat()
    body["messages"].insert(0, {"role": "system", "content": "Be brief."})
    body["messages"][1]["content"][3] = image_part("data:image/png;base64,%%%")
    error = client.post("/v1/chat/completions", json=body).json()["error"]
    assert error["param"] == "messages[1].content[3]"
    assert error["message"].startswith("messages[1].content[3]: ")
    error = client.post("/v1/critique", json={
        "question": "?", "images": [RED_PNG, "http://images.example.com/a.png"],
        "responses": ["a", "b"]}).json()["error"]
    assert error["param"] == "images[1]" and "--allowed-media-domains" in error["message"]


def test_too_many_images_is_a_400(make_client) -> None:
    client = make_client(vision_engine(Recorder()), max_images_per_prompt=1)
    reply = client.post("/v1/chat/completions", json=image_chat())
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "too_many_images"


def test_image_tokens_count_in_the_context_budget(make_client) -> None:
    recorder = Recorder()
    client = make_client(vision_engine(recorder, max_model_len=300, image_tokens=100))
    # ~15 words of text: 200 max_tokens fit beside it, not beside two 100-token images
    reply = client.post("/v1/chat/completions", json=image_chat(max_tokens=200))
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "context_length_exceeded"
    assert recorder.requests == []
    reply = client.post("/v1/chat/completions", json=image_chat(max_tokens=50))
    assert reply.status_code == 200


def test_a_streamed_chat_sends_the_images_too(make_client) -> None:
    recorder = Recorder()
    client = make_client(vision_engine(recorder))
    with client.stream("POST", "/v1/chat/completions",
                       json=image_chat(max_tokens=8, stream=True)) as reply:
        assert reply.status_code == 200
        assert "[DONE]" in "".join(reply.iter_text())
    assert recorder.colours() == [[RED, BLUE]]
