"""The registry of scoring models: name -> module exposing ``MODEL: ScoringModel``.

Each model lives in its own package and exposes, in the module named here, one
:class:`ScoringModel` called ``MODEL``. Modules are imported lazily so that a model
whose dependencies are heavy costs nothing until it is used. To add a model: write its
``job`` module and list it in :data:`MODEL_MODULES` (the ``scoring_runs.model`` check
constraint names the allowed models).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import BaseModel, ValidationError

from schemas.errors import InputError
from scoring.runs import ScoreResult, run_scoring

MODEL_MODULES: dict[str, str] = {
    "network": "scoring.network.job",
    "spam": "scoring.spam.job",
    "virality": "scoring.virality.job",
    "revisit": "scoring.revisit.job",
}


@dataclass(frozen=True)
class ScoringModel:
    """One scoring model as the CLI and the work-unit runner see it.

    ``params`` validates the run's parameters (pydantic; extra keys should be
    forbidden); ``compute`` gets the validated parameters as a dict and returns a
    :class:`~scoring.runs.ScoreResult` without writing anything.
    """

    name: str
    version: str
    description: str
    params: type[BaseModel]
    compute: Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[ScoreResult]]


def get_model(name: str) -> ScoringModel:
    """The registered model ``name``; :class:`InputError` if unknown or not installed."""
    module_name = MODEL_MODULES.get(name)
    if module_name is None:
        raise InputError(f"model: {name!r} is not one of {', '.join(MODEL_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise InputError(f"model: {name!r} is not available in this build") from exc
        raise
    model: ScoringModel = module.MODEL
    return model


def validate_params(model: ScoringModel, raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` checked against the model's parameter schema; InputError names the field."""
    try:
        return model.params.model_validate(dict(raw)).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise InputError(f"params.{where}: {first['msg']}") from exc


async def run_model(
    conn: asyncpg.Connection,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    unit_id: int | None = None,
    job_id: int | None = None,
) -> int:
    """Validate ``params`` and run model ``name`` as a recorded scoring run; the run id."""
    model = get_model(name)
    checked = validate_params(model, params or {})
    return await run_scoring(
        conn, model.name, model.version, checked, model.compute, unit_id=unit_id, job_id=job_id
    )
