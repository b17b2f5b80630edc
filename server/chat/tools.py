"""Tool calls in answers, in OpenAI's `message.tool_calls` shape.

A named or "required" `tool_choice` constrained the answer to JSON (see
`server.chat.tool_fields`), which is read here. With "auto", the answer is free text and
vLLM's tool parser for the model (`--tool-call-parser`, e.g. `hermes`) finds the calls,
as vLLM's own server does. Streaming requests with tools are answered whole and then sent
as chunks: the calls are only known once the answer is.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from server.chat.protocol import ChatCompletionRequest
from server.chat.response import chunk
from server.chat.tool_fields import NamedToolChoice
from server.edge.sse import DONE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolCalls:
    """What an answer says: text for the user (or None) and the calls it makes."""

    content: str | None
    calls: list[dict[str, Any]] = field(default_factory=list)


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def forced_calls(text: str, request: ChatCompletionRequest) -> ToolCalls:
    """The calls a named or "required" `tool_choice` constrained `text` to. Text that is
    not the JSON asked for (cut short by max_tokens) stays content."""
    try:
        value = json.loads(text)
    except ValueError:
        return ToolCalls(text)
    choice = request.effective_tool_choice
    if isinstance(choice, NamedToolChoice):
        return ToolCalls(None, [tool_call(choice.function.name, json.dumps(value))])
    if not isinstance(value, list) or not all(isinstance(c, dict) and "name" in c
                                              for c in value):
        return ToolCalls(text)
    return ToolCalls(None, [tool_call(c["name"], json.dumps(c.get("parameters", {})))
                            for c in value])


class ToolParser:
    """vLLM's tool parser `name` (hermes, llama3_json, mistral, ...) for "auto" tool choice."""

    def __init__(self, name: str, tokenizer: Any) -> None:
        from vllm.tool_parsers import ToolParserManager

        try:
            self._parser_class = ToolParserManager.get_tool_parser(name)
        except KeyError:
            known = ", ".join(ToolParserManager.list_registered())
            raise ValueError(f"unknown --tool-call-parser {name!r}; vLLM has: {known}") from None
        if tokenizer is None:
            raise ValueError("--tool-call-parser needs an engine with a local tokenizer")
        self.name = name
        self._tokenizer = tokenizer

    def keeps_special_tokens(self, request: ChatCompletionRequest) -> bool:
        """Whether the parser needs special tokens left in the text (some models mark
        `<tool_call>` special), as its `adjust_request` tells vLLM's server."""
        parser, vllm_request = self._parser(request)
        return not parser.adjust_request(vllm_request).skip_special_tokens

    def read(self, text: str, request: ChatCompletionRequest) -> ToolCalls:
        parser, vllm_request = self._parser(request)
        found = parser.extract_tool_calls(text, vllm_request)
        if not found.tools_called:
            return ToolCalls(text)
        return ToolCalls(found.content or None,
                         [tool_call(c.function.name, c.function.arguments)
                          for c in found.tool_calls])


    def _parser(self, request: ChatCompletionRequest) -> tuple[Any, Any]:
        """A fresh parser (they keep state) and the request in vLLM's own type."""
        from vllm.entrypoints.openai.chat_completion.protocol import (
            ChatCompletionRequest as VLLMChatRequest,
        )
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionToolsParam

        tools = [ChatCompletionToolsParam.model_validate(t) for t in request.tool_dicts() or ()]
        vllm_request = VLLMChatRequest.model_construct(
            messages=[], model=request.model, tools=tools, tool_choice="auto",
            skip_special_tokens=request.skip_special_tokens)
        return self._parser_class(self._tokenizer, tools), vllm_request


def with_tool_calls(body: dict[str, Any], read: Callable[[str], ToolCalls],
                    finish_reason: str = "tool_calls") -> dict[str, Any]:
    """Move the calls each choice's text makes into `message.tool_calls`."""
    for choice in body["choices"]:
        message = choice["message"]
        found = read(message["content"] or "")
        if found.calls:
            message["content"] = found.content
            message["tool_calls"] = found.calls
            if choice["finish_reason"] == "stop":
                choice["finish_reason"] = finish_reason
    return body


def as_chunks(body: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """A finished `chat.completion` as the stream a client would have read."""
    head = (body["id"], body["model"], body["created"])
    extra = {k: body[k] for k in ("self_critic",) if k in body}
    for choice in body["choices"]:
        i, message = choice["index"], choice["message"]
        yield chunk(*head, [_delta(i, {"role": "assistant", "content": ""})])
        if message.get("content"):
            yield chunk(*head, [_delta(i, {"content": message["content"]},
                                       choice.get("logprobs"))])
        for k, call in enumerate(message.get("tool_calls", ())):
            yield chunk(*head, [_delta(i, {"tool_calls": [{"index": k, **call}]})])
        yield chunk(*head, [_delta(i, {}, finish=choice["finish_reason"])])
    if include_usage:
        extra["usage"] = body["usage"]
    if extra:
        yield chunk(*head, [], extra=extra)
    yield DONE


def _delta(index: int, delta: dict[str, Any], logprobs: Any = None,
           finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def answer_tool_calls(body: dict[str, Any], request: ChatCompletionRequest,
                      parser: ToolParser | None) -> dict[str, Any]:
    """`body` with the calls its choices make moved into `message.tool_calls`, read as the
    request's tool choice says: by `parser` ("auto"), as the forced JSON (named or
    "required"), or not at all ("none")."""
    choice = request.effective_tool_choice
    if choice == "none":
        return body
    if choice == "auto":
        assert parser is not None  # validation refuses "auto" without one
        return with_tool_calls(body, lambda text: parser.read(text, request))
    # OpenAI ends a call to a named function with "stop", a "required" one with "tool_calls"
    return with_tool_calls(body, lambda text: forced_calls(text, request),
                           "tool_calls" if choice == "required" else "stop")
