"""Recommendations: personalised, from a query, session clicks or examples; re-ranked, explained.

Both routes translate the HTTP request into a PipelineRequest and call the one pipeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import READ, Filters, PlacementQuery, RankingQueue, Service, preferred_language
from api.schemas import RecommendationRequest, RecommendationsOut, recommendations_json
from recommender.pipeline.merchandising import DEFAULT_PLACEMENT
from recommender.pipeline.request import PipelineRequest

router = APIRouter(tags=["recommendations"], dependencies=[READ])


@router.get("/users/{user_id:path}/recommendations", response_model=RecommendationsOut)
async def for_user(
    request: Request,
    user_id: str,
    service: Service,
    rankings: RankingQueue,
    filters: Filters,
    k: Annotated[int | None, Query(ge=1, le=200)] = None,
    query: Annotated[str | None, Query(max_length=2000)] = None,
    rerank: Annotated[bool, Query(description="Let the LLM re-rank (when one is configured).")] = True,
    explain: Annotated[bool, Query(description="Attach evidence and a sentence to each item.")] = False,
    language: Annotated[
        str | None,
        Query(max_length=20, description="Language of explanations (en, zh); default: Accept-Language."),
    ] = None,
    channel: Annotated[
        str | None, Query(max_length=64, description="Request context, e.g. web, app.")
    ] = None,
    device: Annotated[str | None, Query(max_length=64, description="Request context, e.g. mobile.")] = None,
    placement: PlacementQuery = DEFAULT_PLACEMENT,
) -> Response:
    """The user's profile; an unknown user gets the popular fallback (or the query), never a 404."""
    pipeline_request = PipelineRequest(
        k=k or service.settings.recommend.default_k,
        user_id=user_id,
        query=query,
        filters=filters,
        context={key: value for key, value in {"channel": channel, "device": device}.items() if value},
        rerank=rerank,
        explain=explain,
        language=preferred_language(request, language),
        placement=placement,
    )
    return recommendations_json(await rankings.run(service.online, pipeline_request))


@router.post("/recommendations", response_model=RecommendationsOut)
async def recommend(
    body: RecommendationRequest, service: Service, rankings: RankingQueue, request: Request
) -> Response:
    """Examples (positive/negative) first, then a session, then a user (with any query), then a query."""
    pipeline_request = PipelineRequest(
        k=body.k or service.settings.recommend.default_k,
        user_id=body.user_id,
        query=body.query,
        session=body.session_product_ids,
        positive=body.positive,
        negative=body.negative,
        filters=body.filters,
        context=body.context,
        rerank=body.rerank,
        explain=body.explain,
        language=preferred_language(request, body.language),
        placement=body.placement,
    )
    return recommendations_json(await rankings.run(service.online, pipeline_request))
