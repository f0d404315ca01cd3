"""Backend-neutral filter conditions, and how product filters become them.

Payload layout (written by recommender.catalog): filterable copies live under keys starting with ``_``
so that the product's own fields come back exactly as given. Flags are stored as integers because
qdrant-edge matches no boolean stored as ``True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recommender.errors import InvalidInputError
from recommender.models import AttributeValue, AttributeValues, ProductFilter

CATEGORY_PATH_KEY = "_category_path"
IN_STOCK_KEY = "_in_stock"
ATTRIBUTES_KEY = "_attributes"
BRAND_KEY = "_brand"
PRICE_KEY = "price"


@dataclass(frozen=True)
class MatchCondition:
    key: str
    value: str | int


@dataclass(frozen=True)
class MatchAnyCondition:
    key: str
    values: tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class RangeCondition:
    key: str
    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class HasIdCondition:
    point_ids: tuple[str, ...]


Condition = MatchCondition | MatchAnyCondition | RangeCondition | HasIdCondition


def filterable_values(value: AttributeValues) -> str | int | float | list[str | int | float]:
    """An attribute as stored for filtering; a list stays a list (Qdrant matches a point when any element
    matches)."""
    if isinstance(value, list):
        return [filterable_value(item) for item in value]
    return filterable_value(value)


def filterable_value(value: AttributeValue) -> str | int | float:
    """How an attribute value is stored for filtering: booleans as 0/1, text lower-cased."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value.casefold()
    return value


def conditions_for(product_filter: ProductFilter | None) -> list[Condition]:
    if product_filter is None:
        return []
    conditions: list[Condition] = []
    if product_filter.category:
        conditions.append(MatchCondition(CATEGORY_PATH_KEY, product_filter.category.casefold()))
    if product_filter.brands:
        brands = tuple(brand.casefold() for brand in product_filter.brands)
        conditions.append(MatchAnyCondition(BRAND_KEY, brands))
    if product_filter.price_min is not None or product_filter.price_max is not None:
        conditions.append(RangeCondition(PRICE_KEY, product_filter.price_min, product_filter.price_max))
    if product_filter.in_stock is not None:
        conditions.append(MatchCondition(IN_STOCK_KEY, int(product_filter.in_stock)))
    for name, wanted in product_filter.attributes.items():
        conditions.append(_attribute_condition(f"{ATTRIBUTES_KEY}.{name}", wanted))
    return conditions


def _attribute_condition(key: str, wanted: Any) -> Condition:
    values = wanted if isinstance(wanted, list) else [wanted]
    stored = [filterable_value(value) for value in values]
    fractional = [value for value in stored if isinstance(value, float) and not value.is_integer()]
    if fractional:
        if len(stored) > 1:
            raise InvalidInputError(
                f"filter on {key}: a list of values cannot hold fractional numbers",
                field="filters.attributes",
            )
        return RangeCondition(key, fractional[0], fractional[0])
    normalised = [int(value) if isinstance(value, float) else value for value in stored]
    if len(normalised) == 1:
        return MatchCondition(key, normalised[0])
    if all(isinstance(value, int) for value in normalised):
        return MatchAnyCondition(key, tuple(int(value) for value in normalised))
    return MatchAnyCondition(key, tuple(str(value) for value in normalised))
