"""The model names this server answers to, in one place: the engine's model, the same
model with self-critic (`SELF_CRITIC_SUFFIX`), and, where the engine has a judge adapter,
the model with it (`JUDGE_SUFFIX`: plain answers from the trained judge, which is how an
engine in front of this server reaches it); any other name is a 404 naming those served."""

from __future__ import annotations

from critic_loop.config import JUDGE_SUFFIX, SELF_CRITIC_SUFFIX
from critic_loop.engine import JUDGE_ADAPTER
from server.edge.errors import APIError, bad_request


def served_names(base: str, judge_adapter: bool = False) -> tuple[str, ...]:
    """The names served for the engine's model `base`: itself, itself with self-critic,
    and itself with its judge adapter when it has one."""
    names = (base, base + SELF_CRITIC_SUFFIX)
    return (*names, base + JUDGE_SUFFIX) if judge_adapter else names


def adapter_for(name: str | None, base: str, judge_adapter: bool) -> str | None:
    """The adapter a request for `name` runs with: the judge adapter for `MODEL:judge`
    (where there is one), else none."""
    return JUDGE_ADAPTER if judge_adapter and name == base + JUDGE_SUFFIX else None


def asks_self_critic(name: str | None, base: str, plain_only_at: str | None = None,
                     judge_adapter: bool = False) -> bool:
    """Whether `name` is the self-critic alias of `base` (None, a name left out, is the
    model); a 404 naming the names served unless it is one of them. At an endpoint that
    serves the plain model only (`plain_only_at`, its path) the alias is a 400. The judge
    alias, where served, is a plain model."""
    served = served_names(base, judge_adapter)
    if name is None or name == base or adapter_for(name, base, judge_adapter):
        return False
    if plain_only_at is None and name == served[1]:
        return True
    if name == served[1]:
        raise bad_request("Self-critic runs on /v1/chat/completions; "
                          f"{plain_only_at} serves {base!r} only.", param="model")
    raise model_not_found(name, *(served if plain_only_at is None
                                  else [n for n in served if n != base + SELF_CRITIC_SUFFIX]))


def model_not_found(name: str, *served: str) -> APIError:
    """The 404 for a model name this endpoint does not serve, naming the ones it does."""
    return APIError(404, f"The model {name!r} does not exist. This server serves "
                    f"{' and '.join(map(repr, served))}.", param="model", code="model_not_found")
