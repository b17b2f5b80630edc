"""The `/v1/completions` wire format of an upstream: request bodies, reading answers, and
telling an upstream's failure (try another) from a refusal of the request (the caller's).

Prompts go as token ids (tokenised here, as the in-process engine does, so lengths and
prefix-cache keys match). With vLLM's extras a fast verdict is one token restricted to the
verdict spellings with each spelling's logprob reported; without them it falls back to
OpenAI's `logit_bias` and whatever top logprobs the server reports.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from critic_loop.engine import (
    InvalidRequestError,
    PromptTooLongError,
    SamplingOptions,
    TokenLogprob,
)
from critic_loop.verdict_tokens import spelled

TOKEN_ID_PREFIX = "token_id:"
FALLBACK_TOP_LOGPROBS = 5


@dataclass(frozen=True)
class RawChoice:
    """One choice (or streamed piece of one) as the upstream sent it."""

    index: int
    text: str
    token_ids: tuple[int, ...] | None
    finish_reason: str | None
    logprobs: Mapping[str, Any] | None


def completion_body(model: str, prompt_ids: list[int], options: SamplingOptions, n: int,
                    vllm_extras: bool, choice_ids: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The JSON body of a `/v1/completions` call."""
    body: dict[str, Any] = {
        "model": model, "prompt": prompt_ids, "n": n, "max_tokens": options.max_tokens,
        "temperature": options.temperature, "top_p": options.top_p}
    if options.seed is not None:
        body["seed"] = options.seed
    if options.stop:
        body["stop"] = list(options.stop)
    if options.logprobs is not None:
        body["logprobs"] = options.logprobs
    body.update(sampling_extras(options))
    if vllm_extras:
        body["return_token_ids"] = True
        body["return_tokens_as_token_ids"] = True
    if options.choices:
        ids = sorted({i for c in options.choices for i in choice_ids[c]})
        body.pop("stop", None)
        body["max_tokens"] = 1
        if vllm_extras:  # restrict what is sampled; report each spelling's raw logprob
            body.update(allowed_token_ids=ids, logprob_token_ids=ids, logprobs=1)
        else:
            body.update(logit_bias={str(i): 100 for i in ids}, logprobs=FALLBACK_TOP_LOGPROBS)
    return body


def sampling_extras(options: SamplingOptions) -> dict[str, Any]:
    """vLLM's extra sampling fields (same names on its server), only those set, so a server
    without them sees none unless a request asks for one."""
    default = SamplingOptions()
    extras = {name: list(value) if isinstance(value, tuple) else value
              for name in _EXTRA_FIELDS
              if (value := getattr(options, name)) != getattr(default, name)}
    if options.logit_bias:
        extras["logit_bias"] = {str(i): bias for i, bias in options.logit_bias}
    if options.structured is not None:
        extras["structured_outputs"] = {
            ("json" if k == "json_schema" else k): list(v) if isinstance(v, tuple) else v
            for k, v in asdict(options.structured).items() if v not in (None, False)}
    return extras


_EXTRA_FIELDS = ("presence_penalty", "frequency_penalty", "repetition_penalty", "top_k",
                 "min_p", "min_tokens", "stop_token_ids", "bad_words", "ignore_eos",
                 "skip_special_tokens", "spaces_between_special_tokens",
                 "include_stop_str_in_output")


def raw_choice(choice: Mapping[str, Any]) -> RawChoice:
    ids = choice.get("token_ids")
    return RawChoice(index=int(choice.get("index", 0)), text=choice.get("text") or "",
                     token_ids=None if ids is None else tuple(ids),
                     finish_reason=choice.get("finish_reason"), logprobs=choice.get("logprobs"))


class TokenReader:
    """Reads token strings of a logprobs object: `token_id:N` (vLLM) or plain text."""

    def __init__(self, decode: Callable[[int], str], special_ids: frozenset[int],
                 special_texts: frozenset[str]) -> None:
        self._decode = decode
        self._special_ids = special_ids
        self._special_texts = special_texts

    def token_id(self, token: str) -> int | None:
        if token.startswith(TOKEN_ID_PREFIX):
            return int(token[len(TOKEN_ID_PREFIX):])
        return None

    def text(self, token: str) -> str | None:
        """The token's text, or None for a special token (EOS is not part of the text)."""
        token_id = self.token_id(token)
        if token_id is None:
            return None if token in self._special_texts else token
        return None if token_id in self._special_ids else self._decode(token_id)

    def token_logprobs(self, logprobs: Mapping[str, Any] | None,
                       top: int) -> tuple[TokenLogprob, ...] | None:
        """Per generated token: its text, logprob and the `top` best alternatives."""
        if not logprobs:
            return None
        result = []
        for token, logprob, alternatives in zip(
                logprobs.get("tokens") or [], logprobs.get("token_logprobs") or [],
                logprobs.get("top_logprobs") or [], strict=False):
            text = self.text(token)
            if text is None:
                continue
            ranked = sorted((alternatives or {}).items(), key=lambda kv: kv[1], reverse=True)
            best = tuple((self.text(t) or "", lp) for t, lp in ranked[:top])
            result.append(TokenLogprob(text, -math.inf if logprob is None else logprob, best))
        return tuple(result)

    def choice_logprobs(self, logprobs: Mapping[str, Any] | None,
                        choice_ids: Mapping[str, tuple[int, ...]]) -> dict[str, float] | None:
        """Each choice's logprob at the one decoded position (its spellings summed)."""
        tops = (logprobs or {}).get("top_logprobs") or []
        if not tops or not tops[0]:
            return None
        by_choice: dict[str, list[float]] = {c: [] for c in choice_ids}
        owner = {i: c for c, ids in choice_ids.items() for i in ids}
        for token, logprob in tops[0].items():
            token_id = self.token_id(token)
            choice = owner.get(token_id) if token_id is not None else _choice_of(token, by_choice)
            if choice is not None:
                by_choice[choice].append(logprob)
        found = {c: _logsumexp(v) for c, v in by_choice.items() if v}
        return found or None


def _choice_of(token: str, choices: Mapping[str, Any]) -> str | None:
    said = spelled(token)
    return next((c for c in choices if spelled(c) == said), None)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


class StreamProgress:
    """What a stream has sent so far, per sample, so that another upstream can go on."""

    def __init__(self, n: int) -> None:
        self.texts = [""] * n
        self.ids: list[list[int] | None] = [[] for _ in range(n)]
        self.finish: list[str | None] = [None] * n

    def add(self, piece: RawChoice) -> None:
        i = piece.index
        self.texts[i] += piece.text
        held = self.ids[i]
        if held is not None and piece.token_ids is not None:
            held.extend(piece.token_ids)
        elif piece.text:
            self.ids[i] = None  # counts unknown: re-encode the text when continuing
        self.finish[i] = piece.finish_reason or self.finish[i]

    def started(self) -> bool:
        return any(self.texts) or any(f is not None for f in self.finish)

    def finished(self) -> bool:
        return all(f is not None for f in self.finish)

    def unfinished(self) -> list[int]:
        return [i for i, f in enumerate(self.finish) if f is None]

    def token_ids(self, index: int, encode: Callable[[str], list[int]]) -> list[int]:
        held = self.ids[index]
        return list(held) if held is not None else encode(self.texts[index])


class UpstreamFailure(Exception):
    """An upstream could not answer (down, 5xx, broken stream): try another one."""

    def __init__(self, message: str, eject: bool = True) -> None:
        super().__init__(message)
        self.eject = eject


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """A transport error or an unreadable answer is the upstream's failure."""
    try:
        yield
    except httpx.TransportError as exc:
        raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UpstreamFailure(f"unreadable answer: {exc}") from exc


def check_response(response: httpx.Response) -> None:
    """Raise for an upstream's error answer: 5xx and 429 fail over, 4xx is ours to report."""
    if response.status_code < 400:
        return
    try:
        message = response.json().get("error", {}).get("message") or response.text
    except (json.JSONDecodeError, AttributeError):
        message = response.text
    if response.status_code >= 500 or response.status_code == 429:
        raise UpstreamFailure(f"HTTP {response.status_code}: {message[:200]}",
                              eject=response.status_code != 429)
    if "context length" in message or "maximum context" in message:
        raise PromptTooLongError(message)
    # Our own checks passed, so what the upstream refuses is a sampling option it cannot
    # take (a grammar it cannot compile, a field it lacks): the caller's to change.
    raise InvalidRequestError(f"The upstream server refused the request: {message[:300]}")
