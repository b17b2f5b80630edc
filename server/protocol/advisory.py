"""OpenAI request fields that only inform the provider (who asks, what to store or log,
how to route), accepted and ignored. Any other field this server does not implement is
refused with a 400 that names it (the request models forbid extra fields), so a client
never gets an answer that silently ignored what it asked for.

Reviewed against OpenAI's chat completion parameters: `user`, `metadata`, `store`,
`service_tier`, `prompt_cache_key`, `prompt_cache_retention` and `safety_identifier`
change nothing about the tokens generated; `parallel_tool_calls` only matters with
tools; `modalities` is accepted as long as it asks for text only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.protocol.base import RequestModel

ADVISORY_FIELDS = ("user", "metadata", "store", "service_tier", "prompt_cache_key",
                   "prompt_cache_retention", "safety_identifier", "parallel_tool_calls",
                   "modalities")


class AdvisoryFields(RequestModel):
    """Accepted for compatibility; none of them changes the answer."""

    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    parallel_tool_calls: bool | None = None
    modalities: list[Literal["text"]] | None = Field(
        None, description="Only text output is supported.")
