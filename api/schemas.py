"""Request and response bodies of the HTTP API (kept apart from the core's domain types)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recommender.intake.jobs import ImportJob
from recommender.models import Product, ProductFilter, RecommendationList
from recommender.pipeline.merchandising import DEFAULT_PLACEMENT, Placement


def first_problem(error: ValidationError) -> tuple[str | None, str]:
    """The field and reason of an item a batch route rejects (events, products): its first problem."""
    problem = error.errors()[0]
    return ".".join(str(part) for part in problem["loc"]) or None, problem["msg"]


class ProductOut(BaseModel):
    product: Product
    created: bool | None = None


# A shop syncing its changed products sends them in one call; a larger sync is a catalog file (POST /imports).
MAX_PRODUCTS_PER_REQUEST = 1000


class ProductItemOut(BaseModel):
    index: int
    product_id: str | None
    status: str = Field(description="created, replaced or rejected")
    field: str | None = None
    reason: str | None = None


class ProductBatchOut(BaseModel):
    """The answer to a list of products: each item's outcome, by its index in the list."""

    created: int
    replaced: int
    rejected: int
    items: list[ProductItemOut]


class ImportFromPath(BaseModel):
    path: str = Field(
        min_length=1,
        max_length=4096,
        description="A file inside RECO_API__IMPORT_ROOT: relative to it, or absolute within it.",
    )
    format: str | None = Field(
        default=None,
        max_length=40,
        description="csv, jsonl, parquet, google-merchant or shopify; told from the file if unset.",
    )
    mapping: dict[str, str] | None = Field(
        default=None,
        description='Source column -> product field or attributes.NAME, e.g. {"id": "product_id"}.',
    )


class ImportAccepted(BaseModel):
    job_id: str
    state: str
    status_url: str


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    reason: str
    product_id: str | None = None


class ImportJobOut(BaseModel):
    job_id: str
    state: str
    source: str
    format: str
    processed: int
    total: int | None = Field(default=None, description="Rows in the file (known once the job started).")
    ok: int
    failed: int
    embedded: int
    unchanged: int
    rate_per_second: float | None
    message: str
    errors: list[RowErrorOut]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_job(cls, job: ImportJob) -> ImportJobOut:
        return cls(
            job_id=job.job_id,
            state=job.state.value,
            source=job.source,
            format=job.file_format,
            processed=job.processed,
            total=job.total,
            ok=job.succeeded,
            failed=job.failed,
            embedded=job.embedded,
            unchanged=job.unchanged,
            rate_per_second=job.rate_per_second,
            message=job.message,
            errors=[RowErrorOut(**error.__dict__) for error in job.errors],
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class EventBatch(BaseModel):
    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="Each: user_id, product_id, type (view, click, add_to_cart, purchase, rating), "
        "value (rating 1-5; a purchase's revenue), timestamp (ISO 8601; now if unset), recommendation_id "
        "(the list it came from).",
    )


class RejectedEvent(BaseModel):
    index: int
    field: str | None
    reason: str


class EventBatchResult(BaseModel):
    accepted: int
    rejected: list[RejectedEvent]
    attributed: dict[str, int] = Field(
        default_factory=dict,
        description="Events attributed to a served list, by rule: explicit (the event named its list) or "
        "last_touch (a purchase, to the latest list that showed the product to the user).",
    )
    unknown_recommendation_ids: list[str] = Field(
        default_factory=list,
        description="Ids that name no served list of this shop (the events were kept, not attributed).",
    )
    unknown_product_ids: list[str] = Field(
        description="Stored, but not in the catalog (yet): they count for nothing until the product exists."
    )
    profile_refresh_task_id: str | None


class RecommendationRequest(BaseModel):
    """Give a user, a query, session clicks or examples; the most specific signal present is used."""

    model_config = ConfigDict(allow_inf_nan=False)

    user_id: str | None = None
    query: str | None = Field(default=None, max_length=2000)
    session_product_ids: list[str] = Field(default_factory=list, max_length=200)
    positive: list[str] = Field(default_factory=list, max_length=100)
    negative: list[str] = Field(default_factory=list, max_length=100)
    k: int | None = Field(default=None, ge=1, le=200)
    filters: ProductFilter | None = None
    context: dict[str, str | int | float] = Field(
        default_factory=dict,
        max_length=20,
        description="Request context the ranker reads: hour (0-23), weekday (0 = Monday), channel, device.",
    )
    rerank: bool = Field(default=True, description="Let the LLM re-rank (when one is configured).")
    explain: bool = Field(default=False, description="Attach evidence and a sentence to each item.")
    language: str | None = Field(
        default=None,
        max_length=20,
        description="Language of explanations (en, zh); default: Accept-Language.",
    )
    placement: Placement = Field(
        default=DEFAULT_PLACEMENT,
        description="Where the list is shown: rules and experiments are per placement.",
    )


class RecommendationsOut(RecommendationList):
    pass


def recommendations_json(result: RecommendationList) -> Response:
    """A list as the JSON of ``RecommendationsOut`` (the same fields), serialised once by pydantic. Returned
    as a model, it would be dumped, validated again as the response model, then encoded."""
    return Response(result.model_dump_json(), media_type="application/json")


class DependencyStatus(BaseModel):
    name: str
    ok: bool
    detail: str


class ReadinessOut(BaseModel):
    ready: bool
    vector_store: str
    task_runner: str
    dependencies: list[DependencyStatus]
    products: int | None = None


class ChatTurn(BaseModel):
    role: str = Field(pattern="^(user|assistant)$")
    content: str = Field(max_length=4000)


class ChatRequest(BaseModel):
    product_id: str = Field(
        min_length=1, max_length=256, description="The recommended product the conversation is about."
    )
    message: str = Field(min_length=1, max_length=4000)
    user_id: str | None = Field(
        default=None, max_length=256, description="The shopper; leave out for an anonymous visitor."
    )
    conversation_id: str | None = Field(
        default=None,
        max_length=128,
        description="Continue a conversation the server started (its id comes in the first answer). It "
        "belongs to the API key and user_id that started it; any other caller gets 404.",
    )
    turns: list[ChatTurn] = Field(default_factory=list, max_length=40, description="Or send the prior turns.")
    language: str | None = Field(
        default=None, max_length=20, description="Language of the answer (en, zh); default: Accept-Language."
    )


class ChatResponse(BaseModel):
    conversation_id: str
    answer: str
    intent: str
    source: str
    note: str
    alternatives: list[dict[str, Any]]
    evidence: dict[str, Any]
