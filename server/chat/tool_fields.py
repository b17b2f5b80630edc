"""`tools` and `tool_choice` at the HTTP boundary, checked as vLLM checks them.

A named `tool_choice` or `"required"` needs no tool parser: like vLLM, the answer is
constrained to the tool's arguments (or to a JSON list of calls) by a JSON schema. `"auto"`
needs a server started with a tool parser that reads calls out of free text.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from critic_loop.engine import StructuredOutput
from server.protocol.base import OpenAIObject, RequestModel


class FunctionSpec(OpenAIObject):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(OpenAIObject):
    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedFunction(OpenAIObject):
    name: str = Field(min_length=1)


class NamedToolChoice(OpenAIObject):
    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class ToolFields(RequestModel):
    """The request's tools; `tool_choice` defaults to "auto" with tools, as in OpenAI."""

    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None

    @model_validator(mode="after")
    def _check_tools(self) -> ToolFields:
        if self.tools == []:
            raise ValueError("tools must not be an empty array; send at least one tool or "
                             "leave the field out")
        if self.tool_choice not in (None, "none") and not self.tools:
            raise ValueError("tool_choice needs tools")
        if isinstance(self.tool_choice, NamedToolChoice):
            self.named_tool()  # raises if the name is not among the tools
        return self

    @property
    def effective_tool_choice(self) -> str | NamedToolChoice:
        if not self.tools:
            return "none"
        return self.tool_choice or "auto"

    def named_tool(self) -> FunctionSpec | None:
        if not isinstance(self.tool_choice, NamedToolChoice):
            return None
        name = self.tool_choice.function.name
        for tool in self.tools or ():
            if tool.function.name == name:
                return tool.function
        raise ValueError(f"tool_choice names the function {name!r}, which is not in tools")

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        """The tools as a chat template reads them."""
        if not self.tools:
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]

    def tool_constraint(self, parallel: bool | None) -> StructuredOutput | None:
        """The JSON schema that forces a call: a named function's arguments, or with
        "required" a list of `{"name", "parameters"}` calls (vLLM's schemas)."""
        named = self.named_tool()
        if named is not None:
            return StructuredOutput(json_schema=json.dumps(_parameters(named)))
        if self.effective_tool_choice != "required":
            return None
        calls: dict[str, Any] = {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "anyOf": [{"properties": {"name": {"type": "string", "enum": [t.function.name]},
                                      "parameters": _parameters(t.function)},
                       "required": ["name", "parameters"]} for t in self.tools or ()]}}
        if parallel is False:
            calls["maxItems"] = 1
        return StructuredOutput(json_schema=json.dumps(calls))


def _parameters(function: FunctionSpec) -> dict[str, Any]:
    return function.parameters or {"type": "object", "properties": {}}
