"""The model names this server answers to: the engine's model, and the same model with
self-critic (`SELF_CRITIC_SUFFIX`); any other name is a 404 naming those served."""

from __future__ import annotations

from server.edge.errors import APIError

SELF_CRITIC_SUFFIX = ":self-critic"


def served_names(base: str) -> tuple[str, str]:
    """The names served for the engine's model `base`: itself, and itself with self-critic."""
    return base, base + SELF_CRITIC_SUFFIX


def asks_self_critic(name: str, base: str) -> bool:
    """Whether `name` is the self-critic alias of `base`; a 404 naming both unless it is
    one of them."""
    served = served_names(base)
    if name not in served:
        raise model_not_found(name, *served)
    return name == served[1]


def model_not_found(name: str, *served: str) -> APIError:
    """The 404 for a model name this endpoint does not serve, naming the ones it does."""
    return APIError(404, f"The model {name!r} does not exist. This server serves "
                    f"{' and '.join(map(repr, served))}.", param="model", code="model_not_found")
