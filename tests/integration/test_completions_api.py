"""`/v1/completions` on the shared real server, through the official openai client."""

from __future__ import annotations

import openai
import pytest

from tests.support.live_server import MODEL

PROMPT = "The capital of France is"


def test_greedy_completion_and_its_stream_agree(client: openai.OpenAI) -> None:
    whole = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12,
                                      temperature=0)
    choice = whole.choices[0]
    assert whole.object == "text_completion" and choice.text.strip()
    assert choice.finish_reason in ("stop", "length")
    assert 0 < whole.usage.completion_tokens <= 12 and whole.usage.prompt_tokens >= 5
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_several_prompts_with_n_and_logprobs(client: openai.OpenAI) -> None:
    prompts = [PROMPT, "One, two, three,"]
    result = client.completions.create(model=MODEL, prompt=prompts, n=2, max_tokens=6,
                                       temperature=0.8, seed=1, logprobs=2)
    assert [c.index for c in result.choices] == [0, 1, 2, 3]
    for choice in result.choices:
        logprobs = choice.logprobs
        assert "".join(logprobs.tokens) == choice.text
        assert all(lp <= 0 for lp in logprobs.token_logprobs)
        assert all(1 <= len(top) <= 2 for top in logprobs.top_logprobs)


def test_echo_and_stop(client: openai.OpenAI) -> None:
    result = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=20,
                                       temperature=0, echo=True, stop=[" 6"])
    text = result.choices[0].text
    assert text.startswith("1, 2, 3, 4,") and " 6" not in text
    assert result.choices[0].finish_reason == "stop"


def test_unsupported_field_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="suffix"):
        client.completions.create(model=MODEL, prompt=PROMPT, suffix="!", max_tokens=4)


def test_token_id_prompts_answer_as_their_text_does(client: openai.OpenAI) -> None:
    # what an upstream engine sends (evaluation's judges, `eval calibrate` without --url)
    from transformers import AutoTokenizer

    from critic_loop.runtime.model_store import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL).path)
    ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    by_text = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0)
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=8, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.prompt_tokens == len(ids)
    with pytest.raises(openai.BadRequestError, match="vocabulary"):
        client.completions.create(model=MODEL, prompt=[*ids, 10**7], max_tokens=4)
