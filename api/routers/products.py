"""Products one at a time or in lists, and similar products."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import READ, WRITE, Filters, PlacementQuery, Service
from api.schemas import (
    MAX_PRODUCTS_PER_REQUEST,
    ProductBatchOut,
    ProductItemOut,
    ProductOut,
    RecommendationsOut,
    first_problem,
    recommendations_json,
)
from recommender.errors import InvalidInputError, NotFoundError
from recommender.models import Product

router = APIRouter(prefix="/products", tags=["products"])
# Ids may hold slashes (SKU/123 is common): every path takes the rest of the path as the id, and the route
# with a suffix (/similar) is matched first.


# One product, or a list: the body is read as JSON and validated here, so that a list is answered item by
# item and a single product's errors name its fields (body.title), as for any other route.
PRODUCT_OR_LIST = {
    "oneOf": [
        {"$ref": "#/components/schemas/Product"},
        {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Product"},
            "minItems": 1,
            "maxItems": MAX_PRODUCTS_PER_REQUEST,
        },
    ]
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductOut | ProductBatchOut,
    dependencies=[WRITE],
    responses={
        200: {
            "model": ProductOut | ProductBatchOut,
            "description": "Replaced an existing product, or the outcome of each product of a list.",
        }
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": PRODUCT_OR_LIST}}}
    },
)
def create_or_replace(
    body: Annotated[Any, Body()], service: Service, response: Response
) -> ProductOut | ProductBatchOut:
    """Create a product, or replace it whole; or a list of them. Recommendable as soon as this returns."""
    if isinstance(body, list):
        if not 1 <= len(body) <= MAX_PRODUCTS_PER_REQUEST:
            raise InvalidInputError(
                f"a list of 1 to {MAX_PRODUCTS_PER_REQUEST} products (a larger sync is a catalog file: "
                f"POST /imports); this one holds {len(body)}",
                field="body",
            )
        response.status_code = status.HTTP_200_OK
        return _create_or_replace_many(body, service)
    try:
        product = Product.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in error.errors()]
        ) from error
    written = _create_or_replace_one(product, service)
    if not written.created:
        response.status_code = status.HTTP_200_OK
    return written


def _create_or_replace_one(product: Product, service: Service) -> ProductOut:
    existed = bool(service.catalog.existing_ids([product.product_id]))
    service.catalog.upsert([product])
    return ProductOut(product=product, created=not existed)


def _create_or_replace_many(raw_items: list[Any], service: Service) -> ProductBatchOut:
    items: list[ProductItemOut | None] = [None] * len(raw_items)
    valid: dict[str, tuple[int, Product]] = {}
    for index, raw in enumerate(raw_items):
        claimed = raw.get("product_id") if isinstance(raw, dict) else None
        try:
            product = Product.model_validate(raw)
        except ValidationError as error:
            field, reason = first_problem(error)
            items[index] = ProductItemOut(
                index=index,
                product_id=str(claimed) if claimed is not None else None,
                status="rejected",
                field=field,
                reason=reason,
            )
            continue
        if product.product_id in valid:
            first = valid[product.product_id][0]
            items[index] = ProductItemOut(
                index=index,
                product_id=product.product_id,
                status="rejected",
                field="product_id",
                reason=f"the same product_id as item {first}",
            )
            continue
        valid[product.product_id] = (index, product)
    existing = service.catalog.existing_ids(list(valid))
    service.catalog.upsert([product for _, product in valid.values()])
    for product_id, (index, _) in valid.items():
        outcome = "replaced" if product_id in existing else "created"
        items[index] = ProductItemOut(index=index, product_id=product_id, status=outcome)
    answered = [item for item in items if item is not None]
    return ProductBatchOut(
        created=sum(item.status == "created" for item in answered),
        replaced=sum(item.status == "replaced" for item in answered),
        rejected=sum(item.status == "rejected" for item in answered),
        items=answered,
    )


@router.get("/{product_id:path}/similar", response_model=RecommendationsOut, dependencies=[READ])
def similar(
    product_id: str,
    service: Service,
    filters: Filters,
    k: Annotated[int | None, Query(ge=1, le=200)] = None,
    placement: PlacementQuery = "product",
    user_id: Annotated[
        str | None, Query(max_length=256, description="The shopper it is shown to (for attribution).")
    ] = None,
) -> Response:
    """Products like this one, without those a rule blocks on the placement; the list gets an id."""
    k = k or service.settings.recommend.default_k
    return recommendations_json(service.online.similar(product_id, k, filters, placement, user_id))


@router.put("/{product_id:path}", response_model=ProductOut, dependencies=[WRITE])
def replace(product_id: str, product: Product, service: Service) -> ProductOut:
    if product.product_id != product_id:
        raise InvalidInputError("product_id in the body differs from the path", field="product_id")
    return _create_or_replace_one(product, service)


@router.patch("/{product_id:path}", response_model=ProductOut, dependencies=[WRITE])
def patch(
    product_id: str,
    changes: Annotated[dict[str, Any], Body(examples=[{"price": 19.5, "attributes": {"colour": "red"}}])],
    service: Service,
) -> ProductOut:
    """Change some fields; the vector is redone only if the text changed. A null attribute removes it."""
    return ProductOut(product=service.catalog.patch(product_id, changes), created=False)


@router.get("/{product_id:path}", response_model=ProductOut, dependencies=[READ])
def get(product_id: str, service: Service) -> ProductOut:
    return ProductOut(product=service.catalog.get(product_id))


@router.delete("/{product_id:path}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[WRITE])
def delete(product_id: str, service: Service) -> Response:
    if service.catalog.delete([product_id]):
        raise NotFoundError("product", product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
