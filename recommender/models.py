"""Domain types: products, interaction events, filters and recommendations."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recommender.html_text import strip_html

AttributeValue = str | int | float | bool
# Sizes, colours, materials: an attribute may hold several values (a filter matches any of them).
AttributeValues = AttributeValue | list[AttributeValue]
MAX_ATTRIBUTE_VALUES = 100
MAX_DESCRIPTION_CHARS = 20000
# Validation context key: how far ahead of now an event's timestamp may be.
FUTURE_TOLERANCE = "future_tolerance"
CATEGORY_SEPARATOR = " > "


def _addressable(value: str) -> str:
    """An id every route can reach: no control characters (NUL breaks PostgreSQL's text), and no '.' or '..'
    path segment (HTTP clients resolve those away before a request is sent)."""
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValueError("an id may not contain control characters")
    if any(segment in (".", "..") for segment in value.split("/")):
        raise ValueError("an id may not have '.' or '..' as a path segment (a URL could not reach it)")
    return value


# Ids of products and users: they appear in URLs (/products/{id}, /users/{id}/...).
Identifier = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_addressable)]


def attribute_text(value: AttributeValues) -> str:
    """An attribute as a person reads it: several values separated by commas."""
    return ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)


class Product(BaseModel):
    """A catalog product. Only ``product_id`` and ``title`` are required: text alone can be recommended."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True, allow_inf_nan=False
    )

    product_id: Identifier
    title: str = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: str = Field(default="", description="A path such as 'Home > Kitchen > Knives'.")
    brand: str = ""
    price: float | None = Field(default=None, ge=0)
    in_stock: bool = True
    attributes: dict[str, AttributeValues] = Field(default_factory=dict)

    @field_validator("title", "brand", "category", mode="before")
    @classmethod
    def _unescaped(cls, value: Any) -> Any:
        # Exports escape HTML in every text field ("Tom &amp; Jerry", "Home &gt; Garden"); the text is meant.
        return html.unescape(value) if isinstance(value, str) and "&" in value else value

    @field_validator("description")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        # Shops export HTML descriptions; what is embedded and shown is their text.
        return strip_html(value)

    @field_validator("category")
    @classmethod
    def _normalise_category(cls, value: str) -> str:
        parts = [part.strip() for part in value.replace("/", ">").split(">")]
        return CATEGORY_SEPARATOR.join(part for part in parts if part)

    @field_validator("attributes", mode="before")
    @classmethod
    def _finite_numbers(cls, value: Any) -> Any:
        # Before numbers are turned into text: NaN or an infinity must be refused, not stored as "nan".
        if isinstance(value, dict):
            for name, values in value.items():
                for item in values if isinstance(values, list) else [values]:
                    if isinstance(item, float) and not math.isfinite(item):
                        raise ValueError(f"attribute {name!r} is not a finite number")
        return value

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, value: dict[str, AttributeValues]) -> dict[str, AttributeValues]:
        for name, values in value.items():
            if not name or "." in name or len(name) > 64:
                raise ValueError(f"attribute name {name!r} must be 1-64 characters without '.'")
            if isinstance(values, list) and len(values) > MAX_ATTRIBUTE_VALUES:
                raise ValueError(
                    f"attribute {name!r} holds {len(values)} values; at most {MAX_ATTRIBUTE_VALUES}"
                )
        return value

    def category_prefixes(self) -> list[str]:
        """Every prefix of the category path, so that a filter on 'Home' matches 'Home > Kitchen'."""
        parts = self.category.split(CATEGORY_SEPARATOR) if self.category else []
        return [CATEGORY_SEPARATOR.join(parts[: index + 1]) for index in range(len(parts))]


class EventType(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"


class InteractionEvent(BaseModel):
    user_id: Identifier
    product_id: Identifier
    event_type: EventType = Field(alias="type")
    value: float | None = Field(
        default=None,
        description="The rating, 1-5, for rating events; a purchase's revenue (else its price counts).",
    )
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    recommendation_id: str | None = Field(
        default=None,
        max_length=32,
        description="The list this action came from (a response's recommendation_id): attribution.",
    )
    query: str | None = Field(
        default=None,
        max_length=2000,
        description="The search this action came from, where the shop's own search served it (a list "
        "the service served for a query passes its query on to the events attributed to it). The shop's "
        "encoder learns from these (query, product) pairs.",
    )

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        populate_by_name=True,
        coerce_numbers_to_str=True,
        allow_inf_nan=False,
    )

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime, info: ValidationInfo) -> datetime:
        """Naive times are UTC. Validated with ``context={FUTURE_TOLERANCE: timedelta}`` (what the API does),
        a time further ahead than that is refused."""
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        tolerance = (info.context or {}).get(FUTURE_TOLERANCE)
        if tolerance is not None and value > datetime.now(UTC) + tolerance:
            minutes = tolerance.total_seconds() / 60
            raise ValueError(f"timestamp is more than {minutes:g} minutes in the future")
        return value

    @model_validator(mode="after")
    def _rating_has_value(self) -> InteractionEvent:
        if self.event_type is EventType.RATING:
            if self.value is None or not 1 <= self.value <= 5:
                raise ValueError("a rating event needs a value between 1 and 5")
        return self


class ProductFilter(BaseModel):
    """Filters shared by every recommendation endpoint."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    category: str | None = Field(default=None, description="Category path prefix, e.g. 'Home > Kitchen'.")
    brands: list[str] | None = None
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    in_stock: bool | None = None
    attributes: dict[str, AttributeValue | list[AttributeValue]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _price_range(self) -> ProductFilter:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min is greater than price_max")
        return self

    @field_validator("category")
    @classmethod
    def _normalise_category(cls, value: str | None) -> str | None:
        return Product._normalise_category(value) if value else None


class Signal(StrEnum):
    PROFILE = "profile"
    HYBRID = "hybrid"  # the trained sequence model fused with the text profile
    QUERY = "query"
    SESSION = "session"
    EXAMPLES = "examples"
    SIMILAR = "similar"
    POPULAR = "popular"
    PINNED = "pinned"  # placed by a merchandising rule


class Recommendation(BaseModel):
    product_id: str
    score: float
    signal: Signal
    product: dict[str, Any]
    explanation: dict[str, Any] | None = None
    position: int | None = Field(default=None, description="1-based place in the list, for attribution.")
    rule: str | None = Field(default=None, description="The merchandising rule that placed or moved it.")


class RecommendationList(BaseModel):
    recommendation_id: str | None = Field(
        default=None, description="The served list's id: send it with the events it leads to (attribution)."
    )
    placement: str | None = None
    experiment: str | None = None
    arm: str | None = None
    signal: Signal
    items: list[Recommendation]
    excluded_count: int = 0
    notes: list[str] = Field(default_factory=list)
    reranking: dict[str, Any] | None = None
