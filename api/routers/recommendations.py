"""Recommendations: personalised, from a query, from session clicks, from examples."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Filters, Service
from api.schemas import RecommendationRequest, RecommendationsOut

router = APIRouter(tags=["recommendations"])


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut)
def for_user(
    user_id: str,
    service: Service,
    filters: Filters,
    k: Annotated[int | None, Query(ge=1, le=200)] = None,
    query: Annotated[str | None, Query(max_length=2000)] = None,
) -> RecommendationsOut:
    """The user's profile; an unknown user gets the popular fallback (or the query), never a 404."""
    result = service.retriever.for_user(user_id, k or service.settings.recommend.default_k, filters, query)
    return RecommendationsOut.model_validate(result.model_dump())


@router.post("/recommendations", response_model=RecommendationsOut)
def recommend(body: RecommendationRequest, service: Service) -> RecommendationsOut:
    """Examples (positive/negative) first, then a session, then a user (with any query), then a query."""
    k = body.k or service.settings.recommend.default_k
    retriever = service.retriever
    if body.positive or body.negative:
        result = retriever.for_examples(body.positive, body.negative, k, body.filters)
    elif body.session_product_ids:
        result = retriever.for_session(body.session_product_ids, k, body.filters)
    elif body.user_id:
        result = retriever.for_user(body.user_id, k, body.filters, body.query)
    elif body.query:
        result = retriever.for_query(body.query, k, body.filters)
    else:
        result = retriever.popular(k, body.filters)
    return RecommendationsOut.model_validate(result.model_dump())
