"""The model names this server answers to, in one place: the engine's model, and the same
model with self-critic (`SELF_CRITIC_SUFFIX`); any other name is a 404 naming those
served."""

from __future__ import annotations

from critic_loop.config import SELF_CRITIC_SUFFIX
from server.edge.errors import APIError, bad_request


def served_names(base: str) -> tuple[str, str]:
    """The names served for the engine's model `base`: itself, and itself with self-critic."""
    return base, base + SELF_CRITIC_SUFFIX


def asks_self_critic(name: str | None, base: str, plain_only_at: str | None = None) -> bool:
    """Whether `name` is the self-critic alias of `base` (None, a name left out, is the
    model); a 404 naming the names served unless it is one of them. At an endpoint that
    serves the plain model only (`plain_only_at`, its path) the alias is a 400."""
    served = served_names(base)
    if name is None or name == base:
        return False
    if plain_only_at is None and name == served[1]:
        return True
    if name == served[1]:
        raise bad_request("Self-critic runs on /v1/chat/completions; "
                          f"{plain_only_at} serves {base!r} only.", param="model")
    raise model_not_found(name, *(served if plain_only_at is None else served[:1]))


def model_not_found(name: str, *served: str) -> APIError:
    """The 404 for a model name this endpoint does not serve, naming the ones it does."""
    return APIError(404, f"The model {name!r} does not exist. This server serves "
                    f"{' and '.join(map(repr, served))}.", param="model", code="model_not_found")
