"""The two bases of every request model, so that no endpoint can forget the rule: a request
body refuses a field this server does not implement (a 400 naming it, never an answer that
silently ignored it), while OpenAI's nested objects tolerate what SDKs add to them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body, or a mixin of its fields, or an object of ours inside one
    (`self_critic`, `structured_outputs`): an unknown field is a 400 that names it."""

    model_config = ConfigDict(extra="forbid")


class OpenAIObject(BaseModel):
    """An object of OpenAI's inside a request (a message's parts, `stream_options`, a
    tool's `function`, `response_format`): SDKs add informational fields to these over
    time (`stream_options.include_obfuscation`, say), so fields not modelled are ignored."""

    model_config = ConfigDict(extra="ignore")
