"""The server's self-critic defaults, in one place: a run's `SelfCriticConfig` is what
the request asked for and, for each field it left out, the server's setting of the same
name (`--judge`, `--schedule`, ... with a model's trained judge and calibration applied,
`server.model_defaults`). Every field the server has a setting for is passed, so the
library's own defaults (`SelfCriticConfig()`: a reason judge, rounds) never decide a
server run; the server's are `ServerSettings`' (a fast judge, pipelined)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from critic_loop.config import SelfCriticConfig
from server.edge.errors import bad_request
from server.settings import ServerSettings

JUDGE_FIELDS = ("judge", "comparisons", "judge_max_tokens", "judge_temperature")
"""How a match is judged: asked per request, else the server's setting."""
BRACKET_FIELDS = ("schedule", "merge", "select", "include_greedy", "judge_weight")
"""How best-of-N picks its winner: asked per request, else the server's setting."""
CRITIQUE_BRACKET: Mapping[str, Any] = {"schedule": "rounds", "merge": "text",
                                       "select": "knockout", "include_greedy": False}
"""What `/v1/critique` plays on given responses (`critic_loop.critique.rank_responses`):
a knockout in rounds, whatever best-of-N's defaults are."""


def server_config(settings: ServerSettings, asked: Mapping[str, Any], fields: tuple[str, ...],
                  param: str | None, **given: Any) -> SelfCriticConfig:
    """A config with each of `fields` as `asked` (None: not asked) else as `settings`
    have it, and `given` as given; a value the config refuses is a 400 on `param`."""
    chosen = {name: getattr(settings, name) if asked.get(name) is None else asked[name]
              for name in fields}
    try:
        return SelfCriticConfig(**chosen, **given)
    except ValueError as exc:
        raise bad_request(str(exc), param=param) from exc
