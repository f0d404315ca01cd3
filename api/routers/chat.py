"""'Why this item?' chat about one recommended product: a whole answer, or server-sent events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import Service
from api.schemas import ChatRequest, ChatResponse
from recommender.llm.conversation import ChatAnswer, Turn

router = APIRouter(prefix="/chat", tags=["chat"])


def _response(answer: ChatAnswer) -> ChatResponse:
    return ChatResponse(
        conversation_id=answer.conversation_id,
        answer=answer.answer,
        intent=answer.intent,
        source=answer.source,
        note=answer.note,
        alternatives=[item.model_dump() for item in answer.alternatives],
        evidence=dataclasses.asdict(answer.evidence),
    )


@router.post("", response_model=ChatResponse)
def chat(body: ChatRequest, service: Service) -> ChatResponse:
    """One turn. Alternatives (for 'cheaper?' or 'something like it?') come from a fresh retrieval."""
    answer = service.llm.chat(
        body.product_id,
        body.message,
        body.user_id,
        body.conversation_id,
        [Turn(turn.role, turn.content) for turn in body.turns],
        body.language,
    )
    return _response(answer)


@router.post("/stream")
def chat_stream(body: ChatRequest, service: Service) -> StreamingResponse:
    """Server-sent events: ``token`` events as the model writes, then one ``done`` event with the checked
    answer. If the check rejected the streamed text, ``done`` carries the replacement: show its ``answer``."""
    pieces = service.llm.chat_stream(
        body.product_id,
        body.message,
        body.user_id,
        body.conversation_id,
        [Turn(turn.role, turn.content) for turn in body.turns],
        body.language,
    )

    def events() -> Iterator[str]:
        for piece in pieces:
            if isinstance(piece, ChatAnswer):
                yield f"event: done\ndata: {_response(piece).model_dump_json()}\n\n"
            else:
                yield f"event: token\ndata: {json.dumps({'text': piece})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
