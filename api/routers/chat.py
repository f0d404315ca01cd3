"""'Why this item?' chat about one recommended product: a whole answer, or server-sent events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.deps import ChatCaller, Service, preferred_language
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


def _question(body: ChatRequest, caller: ChatCaller, request: Request) -> ChatQuestion:
    return ChatQuestion(
        product_id=body.product_id,
        message=body.message,
        user_id=body.user_id,
        conversation_id=body.conversation_id,
        prior=tuple(Turn(turn.role, turn.content) for turn in body.turns),
        language=preferred_language(request, body.language),
        caller=caller.key_id,
    )


CONVERSATION_NOT_FOUND = {
    404: {"description": "Unknown product, or a conversation that is not the caller's."}
}


@router.post("", response_model=ChatResponse, responses=CONVERSATION_NOT_FOUND)
def chat(body: ChatRequest, service: Service, caller: ChatCaller, request: Request) -> ChatResponse:
    """One turn. Alternatives (for 'cheaper?' or 'something like it?') come from a fresh retrieval."""
    return _response(service.llm.chat(_question(body, caller, request)))


@router.post(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **CONVERSATION_NOT_FOUND},
)
def chat_stream(
    body: ChatRequest, service: Service, caller: ChatCaller, request: Request
) -> StreamingResponse:
    """Server-sent events: ``token`` events, each a sentence that passed the output check, then one
    ``done`` event with the final answer. Rejected text is never sent: ``done`` carries the replacement."""
    pieces = service.llm.chat_stream(_question(body, caller, request))

    def events() -> Iterator[str]:
        for piece in pieces:
            if isinstance(piece, ChatAnswer):
                yield f"event: done\ndata: {_response(piece).model_dump_json()}\n\n"
            else:
                yield f"event: token\ndata: {json.dumps({'text': piece})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
