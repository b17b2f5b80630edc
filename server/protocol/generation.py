"""The request fields chat and legacy completions share (model, n, sampling, stop,
streaming, structured outputs, the advisory fields), declared and read in one place."""

from __future__ import annotations

from pydantic import Field, model_validator

from server.protocol.advisory import AdvisoryFields
from server.protocol.base import OpenAIObject
from server.protocol.fields import Seed, StopText
from server.protocol.sampling_fields import SamplingFields
from server.protocol.structured import StructuredOutputFields

MAX_STOP_SEQUENCES = 4


class StreamOptions(OpenAIObject):
    include_usage: bool = False


class GenerationFields(SamplingFields, StructuredOutputFields, AdvisoryFields):
    """What a request that samples from the model carries besides its prompt."""

    model: str
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: Seed | None = None
    stop: StopText | list[StopText] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @model_validator(mode="after")
    def _check_stop(self) -> GenerationFields:
        if isinstance(self.stop, list) and len(self.stop) > MAX_STOP_SEQUENCES:
            raise ValueError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences")
        return self

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(s for s in self.stop if s)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
