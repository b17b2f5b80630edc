"""Structured outputs at the HTTP boundary: OpenAI's `response_format`, vLLM's
`structured_outputs` object and vLLM's older `guided_*` fields, read into one
engine-neutral `StructuredOutput` (mapped as vLLM 0.32's chat endpoint maps them)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from critic_loop.engine import StructuredOutput
from server.protocol.base import OpenAIObject, RequestModel


class JSONSchemaFormat(OpenAIObject):
    """`response_format.json_schema`: OpenAI's named schema."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(OpenAIObject):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _check(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type 'json_schema' needs a 'json_schema' "
                             "object: {\"name\": ..., \"schema\": {...}}")
        return self


class StructuredOutputsSpec(RequestModel):
    """vLLM's `structured_outputs` object (its `StructuredOutputsParams` fields)."""

    model_config = ConfigDict(populate_by_name=True)

    json_: dict[str, Any] | str | None = Field(None, alias="json")
    regex: str | None = None
    choice: list[str] | None = Field(None, min_length=1)
    grammar: str | None = Field(None, min_length=1)
    json_object: bool | None = None
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: str | None = None


class StructuredOutputFields(RequestModel):
    """The request fields that constrain what the model may say; at most one constraint."""

    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputsSpec | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = Field(None, min_length=1)
    guided_grammar: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_constraint(self) -> StructuredOutputFields:
        self.structured_output()  # raises ValueError (a 400) for conflicting constraints
        return self

    def structured_output(self) -> StructuredOutput | None:
        """The one constraint the request asks for, or None."""
        found: dict[str, dict[str, Any]] = {}
        rf = self.response_format
        if rf is not None and rf.type == "json_object":
            found["response_format"] = {"json_object": True}
        elif rf is not None and rf.json_schema is not None:
            found["response_format"] = {"json_schema": _schema_text(rf.json_schema.schema_)}
        so = self.structured_outputs
        if so is not None:
            kinds = {"json_schema": None if so.json_ is None else _schema_text(so.json_),
                     "regex": so.regex, "choice": so.choice, "grammar": so.grammar,
                     "json_object": so.json_object or None}
            for kind, value in kinds.items():
                if value is not None:
                    found[f"structured_outputs.{kind.removesuffix('_schema')}"] = {kind: value}
        legacy = {"guided_json": ("json_schema", None if self.guided_json is None
                                  else _schema_text(self.guided_json)),
                  "guided_regex": ("regex", self.guided_regex),
                  "guided_choice": ("choice", self.guided_choice),
                  "guided_grammar": ("grammar", self.guided_grammar)}
        for name, (kind, value) in legacy.items():
            if value is not None:
                found[name] = {kind: value}
        if len(found) > 1:
            raise ValueError(f"Use one structured output constraint, not several: "
                             f"{', '.join(found)}.")
        if not found:
            return None
        (constraint,) = found.values()
        if "choice" in constraint:
            constraint = {"choice": tuple(constraint["choice"])}
        options = {} if so is None else {
            "disable_any_whitespace": so.disable_any_whitespace,
            "disable_additional_properties": so.disable_additional_properties,
            "whitespace_pattern": so.whitespace_pattern}
        return StructuredOutput(**constraint, **options)


def _schema_text(schema: dict[str, Any] | str) -> str:
    """A JSON schema as JSON text (hashable, and what vLLM accepts either way)."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ValueError(f"the JSON schema is not valid JSON: {exc}") from exc
        if not isinstance(schema, dict):
            raise ValueError("a JSON schema must be a JSON object")
    return json.dumps(schema, sort_keys=True)
