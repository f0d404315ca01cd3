"""Recommendations: personalised, from a query, session clicks or examples; re-ranked, explained."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import READ, Filters, Service, preferred_language
from api.schemas import RecommendationRequest, RecommendationsOut

router = APIRouter(tags=["recommendations"], dependencies=[READ])


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut)
def for_user(
    request: Request,
    user_id: str,
    service: Service,
    filters: Filters,
    k: Annotated[int | None, Query(ge=1, le=200)] = None,
    query: Annotated[str | None, Query(max_length=2000)] = None,
    rerank: Annotated[bool, Query(description="Let the LLM re-rank (when one is configured).")] = True,
    explain: Annotated[bool, Query(description="Attach evidence and a sentence to each item.")] = False,
    language: Annotated[
        str | None,
        Query(max_length=20, description="Language of explanations (en, zh); default: Accept-Language."),
    ] = None,
) -> RecommendationsOut:
    """The user's profile; an unknown user gets the popular fallback (or the query), never a 404."""
    k = k or service.settings.recommend.default_k
    result = service.llm.recommend(
        lambda depth: service.retriever.for_user(user_id, depth, filters, query),
        k,
        user_id=user_id,
        query=query,
        rerank=rerank,
        explain=explain,
        language=preferred_language(request, language),
    )
    return RecommendationsOut.model_validate(result.model_dump())


@router.post("/recommendations", response_model=RecommendationsOut)
def recommend(body: RecommendationRequest, service: Service, request: Request) -> RecommendationsOut:
    """Examples (positive/negative) first, then a session, then a user (with any query), then a query."""
    k = body.k or service.settings.recommend.default_k
    retriever = service.retriever

    def retrieve(depth: int):  # type: ignore[no-untyped-def]
        if body.positive or body.negative:
            return retriever.for_examples(body.positive, body.negative, depth, body.filters)
        if body.session_product_ids:
            return retriever.for_session(body.session_product_ids, depth, body.filters)
        if body.user_id:
            return retriever.for_user(body.user_id, depth, body.filters, body.query)
        if body.query:
            return retriever.for_query(body.query, depth, body.filters)
        return retriever.popular(depth, body.filters)

    result = service.llm.recommend(
        retrieve,
        k,
        user_id=body.user_id,
        query=body.query,
        rerank=body.rerank,
        explain=body.explain,
        language=preferred_language(request, body.language),
    )
    return RecommendationsOut.model_validate(result.model_dump())
