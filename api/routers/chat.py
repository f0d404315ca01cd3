"""'Why this item?' chat about one recommended product: a whole answer, or server-sent events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import Service
from api.schemas import ChatRequest, ChatResponse
from recommender.llm.conversation import ChatAnswer, ChatQuestion, Turn

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


def _question(body: ChatRequest) -> ChatQuestion:
    return ChatQuestion(
        product_id=body.product_id,
        message=body.message,
        user_id=body.user_id,
        conversation_id=body.conversation_id,
        prior=tuple(Turn(turn.role, turn.content) for turn in body.turns),
        language=body.language,
    )


@router.post("", response_model=ChatResponse)
def chat(body: ChatRequest, service: Service) -> ChatResponse:
    """One turn. Alternatives (for 'cheaper?' or 'something like it?') come from a fresh retrieval."""
    return _response(service.llm.chat(_question(body)))


@router.post("/stream")
def chat_stream(body: ChatRequest, service: Service) -> StreamingResponse:
    """Server-sent events: ``token`` events as the model writes, then one ``done`` event with the checked
    answer. If the check rejected the streamed text, ``done`` carries the replacement: show its ``answer``."""
    pieces = service.llm.chat_stream(_question(body))

    def events() -> Iterator[str]:
        for piece in pieces:
            if isinstance(piece, ChatAnswer):
                yield f"event: done\ndata: {_response(piece).model_dump_json()}\n\n"
            else:
                yield f"event: token\ndata: {json.dumps({'text': piece})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
