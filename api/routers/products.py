"""Products one at a time, and similar products."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from api.deps import READ, WRITE, Filters, Service
from api.schemas import ProductOut, RecommendationsOut, recommendations_json
from recommender.errors import InvalidInputError, NotFoundError
from recommender.models import Product

router = APIRouter(prefix="/products", tags=["products"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductOut,
    dependencies=[WRITE],
    responses={200: {"model": ProductOut, "description": "Replaced an existing product."}},
)
def create_or_replace(product: Product, service: Service, response: Response) -> ProductOut:
    """Create a product, or replace it whole. It is recommendable as soon as this returns."""
    existed = bool(service.catalog.existing_ids([product.product_id]))
    service.catalog.upsert([product])
    if existed:
        response.status_code = status.HTTP_200_OK
    return ProductOut(product=product, created=not existed)


@router.put("/{product_id}", response_model=ProductOut, dependencies=[WRITE])
def replace(product_id: str, product: Product, service: Service, response: Response) -> ProductOut:
    if product.product_id != product_id:
        raise InvalidInputError("product_id in the body differs from the path", field="product_id")
    return create_or_replace(product, service, response)


@router.patch("/{product_id}", response_model=ProductOut, dependencies=[WRITE])
def patch(
    product_id: str,
    changes: Annotated[dict[str, Any], Body(examples=[{"price": 19.5, "attributes": {"colour": "red"}}])],
    service: Service,
) -> ProductOut:
    """Change some fields; the vector is redone only if the text changed. A null attribute removes it."""
    return ProductOut(product=service.catalog.patch(product_id, changes), created=False)


@router.get("/{product_id}", response_model=ProductOut, dependencies=[READ])
def get(product_id: str, service: Service) -> ProductOut:
    return ProductOut(product=service.catalog.get(product_id))


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[WRITE])
def delete(product_id: str, service: Service) -> Response:
    if service.catalog.delete([product_id]):
        raise NotFoundError("product", product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{product_id}/similar", response_model=RecommendationsOut, dependencies=[READ])
def similar(
    product_id: str, service: Service, filters: Filters, k: Annotated[int | None, Query(ge=1, le=200)] = None
) -> Response:
    return recommendations_json(
        service.retriever.similar(product_id, k or service.settings.recommend.default_k, filters)
    )
