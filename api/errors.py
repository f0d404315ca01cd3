"""Typed core errors mapped to HTTP once: 404, 422, 409, 503; anything else a 500 with an error id and
without a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from recommender.errors import ConflictError, DependencyUnavailableError, InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)


class ErrorOut(BaseModel):
    """Every error body: ``detail`` says what went wrong; some errors add fields (dependency, running…)."""

    model_config = ConfigDict(extra="allow")
    detail: str | list[dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Documented on every operation behind a key, so that clients (and schema checks) know each answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("No API key, or not a valid one (keys go in X-API-Key or Authorization: Bearer)."),
    403: _error("The API key lacks the scope this operation needs."),
    404: _error("Unknown product, job, conversation or file."),
    503: _error("A dependency (vector store, event store, task broker) is down; it is named."),
}
RATE_LIMITED = {429: _error("The key's rate limit for this route is reached; see Retry-After.")}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, error: NotFoundError) -> JSONResponse:
        return JSONResponse(
            status_code=404, content={"detail": str(error), "kind": error.kind, "id": error.identifier}
        )

    @app.exception_handler(InvalidInputError)
    async def invalid(_: Request, error: InvalidInputError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": [
                    {"loc": [error.field] if error.field else [], "msg": str(error), "type": "value_error"}
                ]
            },
        )

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def invalid_model(_: Request, error: ValidationError | RequestValidationError) -> JSONResponse:
        # Where and why only: the offending input is not echoed (it may be NaN, which JSON cannot carry).
        details = [
            {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]} for item in error.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": details})

    @app.exception_handler(ConflictError)
    async def conflict(_: Request, error: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error), "running": error.holder})

    @app.exception_handler(DependencyUnavailableError)
    async def unavailable(_: Request, error: DependencyUnavailableError) -> JSONResponse:
        logger.warning("dependency unavailable: %s", error)
        return JSONResponse(
            status_code=503,
            content={"detail": str(error), "dependency": error.dependency, "reason": error.reason},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        # A bug, not an outage: the client gets an id to quote, the log has the traceback under that id.
        error_id = uuid.uuid4().hex[:12]
        logger.exception("unhandled error %s", error_id)
        return JSONResponse(
            status_code=500,
            content={
                "detail": f"internal error ({type(error).__name__}); error id {error_id}",
                "error_id": error_id,
            },
        )
