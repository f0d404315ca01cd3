"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import State
from api.schemas import DependencyStatus, ReadinessOut
from recommender.errors import DependencyUnavailableError

router = APIRouter(prefix="/health", tags=["health"])


@router.get("")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=ReadinessOut, responses={503: {"model": ReadinessOut}})
def ready(state: State) -> JSONResponse:
    """Checks the vector store, the event store and the task broker; 503 names what is down."""
    service = state.service
    checks: list[DependencyStatus] = []
    products: int | None = None
    for name, probe in (
        ("vector store", service.catalog.count),
        ("event store", service.events.ping),
        ("task broker", state.queue.ping),
    ):
        try:
            value = probe()
            if name == "vector store":
                products = int(value)  # type: ignore[arg-type]
            checks.append(DependencyStatus(name=name, ok=True, detail="ok"))
        except DependencyUnavailableError as error:
            checks.append(DependencyStatus(name=name, ok=False, detail=error.reason))
    body = ReadinessOut(
        ready=all(check.ok for check in checks),
        vector_store=service.backend,
        task_runner=state.task_runner,
        dependencies=checks,
        products=products,
    )
    return JSONResponse(status_code=200 if body.ready else 503, content=body.model_dump())
