"""Merchandising rules per placement (admin scope): pin, boost, bury, block, with optional dates."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import ADMIN, Service
from recommender.pipeline.merchandising import MerchRule

router = APIRouter(prefix="/rules", tags=["rules"], dependencies=[ADMIN])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MerchRule)
def create(rule: MerchRule, service: Service) -> MerchRule:
    """A rule applies to every list of its placement (every placement when none is given) while live.
    A rule naming a product that is not in the catalog is refused."""
    if rule.rule_id is not None:
        rule = rule.model_copy(update={"rule_id": None})
    return service.loop.add_rule(rule)


@router.get("", response_model=list[MerchRule])
def list_rules(service: Service) -> list[MerchRule]:
    return service.loop.rules.all()


@router.delete(
    "/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "Unknown rule."}}
)
def delete(rule_id: str, service: Service) -> Response:
    service.loop.rules.delete(rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
