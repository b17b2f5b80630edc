"""Fast-verdict token spellings: every single token that says "1" or "2", summed."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from critic_loop.engine import SamplingOptions
from critic_loop.verdict_tokens import NoVerdictTokenError, verdict_token_ids


class FakeTokenizer:
    """A vocabulary with several spellings of the digits, a two-digit token and specials."""

    def __init__(self, vocab: list[str], special: tuple[int, ...] = ()) -> None:
        self.vocab, self.all_special_ids = vocab, list(special)

    def __len__(self) -> int:
        return len(self.vocab)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.index(text)]


VOCAB = ["<s>", "1", " 1", "２", "12", "▁2", "a", "2", "1"]


def test_every_single_token_spelling_is_found_and_specials_are_not() -> None:
    ids = verdict_token_ids(FakeTokenizer(VOCAB, special=(8,)), ("1", "2"))
    assert ids == {"1": (1, 2), "2": (3, 5, 7)}


def test_a_tokenizer_that_cannot_spell_a_verdict_is_refused_clearly() -> None:
    with pytest.raises(NoVerdictTokenError, match=r"no single token for '2'.*--judge reason"):
        verdict_token_ids(FakeTokenizer(["1", "12", "x"]), ("1", "2"))


def test_the_engine_sums_a_choices_spellings() -> None:
    from critic_loop.runtime.engines.vllm_async import VLLMEngine

    llm = SimpleNamespace(model_config=SimpleNamespace(max_model_len=64))
    engine = VLLMEngine(llm, FakeTokenizer(VOCAB), SimpleNamespace(served_name="m", model="/models/m",
                                                                    judge_adapter=None))
    position = {1: SimpleNamespace(logprob=math.log(0.2)), 2: SimpleNamespace(logprob=math.log(0.1)),
                3: SimpleNamespace(logprob=math.log(0.3)), 5: SimpleNamespace(logprob=math.log(0.1)),
                7: SimpleNamespace(logprob=math.log(0.2))}
    out = SimpleNamespace(logprobs=[position])
    found = engine._choice_logprobs(out, SamplingOptions(max_tokens=1, choices=("1", "2")))
    assert found == pytest.approx({"1": math.log(0.3), "2": math.log(0.6)})
    params = engine._sampling_params(
        SimpleNamespace(sampling=SamplingOptions(max_tokens=1, choices=("1", "2")), n=1),
        kind=None)
    assert params.allowed_token_ids == [1, 2, 3, 5, 7, 8]
