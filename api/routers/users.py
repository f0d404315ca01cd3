"""What is held about a shopper: export it, or erase it (admin scope)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ADMIN, Service

router = APIRouter(prefix="/users", tags=["users"], dependencies=[ADMIN])


class ErasureOut(BaseModel):
    user_id: str
    events: int
    profile: bool
    conversations: int
    cached_llm_outputs: int
    served_lists: int


class UserDataOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]
    searches: list[dict[str, Any]] = Field(
        default_factory=list, description="The user's events that came from a search, with its query."
    )
    profile: dict[str, Any] | None
    conversations: dict[str, list[dict[str, Any]]]
    served_lists: list[dict[str, Any]]


@router.get("/{user_id:path}/data", response_model=UserDataOut)
def export(user_id: str, service: Service) -> UserDataOut:
    """Everything held about the user: events and the searches they came from, the profile vector, live
    conversations, served lists."""
    return UserDataOut.model_validate(service.user_data.export(user_id))


@router.delete("/{user_id:path}", response_model=ErasureOut)
def erase(user_id: str, service: Service) -> ErasureOut:
    """Erase the user's events, profile, conversations and cached LLM outputs; the next trained model
    never sees them. Idempotent: erasing an unknown user reports zeros."""
    return ErasureOut(**dataclasses.asdict(service.user_data.erase(user_id)))
