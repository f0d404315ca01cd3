"""Dependency aliases for routes.

The dependencies are ``async def``: they only read the request, and FastAPI runs a plain ``def`` one on
the thread pool, a thread hop (and a wait for the interpreter lock) per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Security

from api.rankings import Rankings
from api.security import Caller, authenticate, limited
from api.state import AppState
from ingest.celery_app import TaskQueue
from recommender.errors import InvalidInputError
from recommender.models import ProductFilter
from recommender.service import RecommenderService


def _app_state(request: Request) -> AppState:
    return request.app.state.recommender  # type: ignore[no-any-return]


async def get_state(request: Request) -> AppState:
    return _app_state(request)


async def get_service(
    request: Request, caller: Annotated[Caller, Security(authenticate)]
) -> RecommenderService:
    """The caller's tenant's service: a key never reaches another tenant's data."""
    return _app_state(request).tenants.get(caller.tenant)


async def get_rankings(request: Request) -> Rankings:
    return _app_state(request).rankings


async def get_queue(request: Request, caller: Annotated[Caller, Security(authenticate)]) -> TaskQueue:
    """The task queue for the caller's tenant: every task it sends names that tenant."""
    return _app_state(request).queue.for_tenant(caller.tenant)


async def get_filters(
    category: Annotated[str | None, Query(description="Category path prefix, e.g. 'Home > Kitchen'.")] = None,
    brand: Annotated[list[str] | None, Query(description="Repeat for several brands.")] = None,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    in_stock: bool | None = None,
    attribute: Annotated[
        list[str] | None, Query(description="name:value, e.g. colour:blue; repeat the name for any-of.")
    ] = None,
) -> ProductFilter:
    attributes: dict[str, list[str | int | float | bool]] = {}
    for item in attribute or []:
        name, separator, raw = item.partition(":")
        if not separator or not name:
            raise InvalidInputError(f"attribute filter {item!r} must look like name:value", field="attribute")
        attributes.setdefault(name, []).append(_parse_scalar(raw))
    try:
        return ProductFilter(
            category=category,
            brands=brand,
            price_min=price_min,
            price_max=price_max,
            in_stock=in_stock,
            attributes={
                name: values[0] if len(values) == 1 else values for name, values in attributes.items()
            },
        )
    except ValueError as error:
        raise InvalidInputError(str(error).splitlines()[-1].strip(), field="filters") from error


def preferred_language(request: Request, explicit: str | None) -> str:
    """The language asked for in the request, else the first of Accept-Language, else English."""
    if explicit:
        return explicit
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return first[:20] if first and first != "*" else "en"


def _parse_scalar(raw: str) -> str | int | float | bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)  # type: ignore[no-any-return]
        except ValueError:
            pass
    return raw


PlacementQuery = Annotated[
    str,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Where the list is shown (home, product, cart, email...): rules and experiments are per "
        "placement.",
    ),
]
State = Annotated[AppState, Depends(get_state)]
Service = Annotated[RecommenderService, Depends(get_service)]
Queue = Annotated[TaskQueue, Depends(get_queue)]
RankingQueue = Annotated[Rankings, Depends(get_rankings)]
Filters = Annotated[ProductFilter, Depends(get_filters)]

# Scopes are data on the key, checked in one place (api.security.authenticate); routes name what they need.
READ = Security(authenticate, scopes=["read"])
WRITE = Security(authenticate, scopes=["write"])
ADMIN = Security(authenticate, scopes=["admin"])
METRICS = Security(authenticate, scopes=["metrics"])
Reader = Annotated[Caller, READ]
ChatCaller = Annotated[Caller, limited("chat", "read")]
ImportCaller = Annotated[Caller, limited("import", "admin")]
TrainCaller = Annotated[Caller, limited("train", "admin")]
