"""The in-process transformers route: re-rank by label logits, explanation and chat, with a real model
(SmolLM2-135M-Instruct read through transformers' GGUF loader; a model directory takes the same path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.errors import ConfigurationError
from recommender.llm.chat import TransformersChat, build_chat_model
from recommender.llm.conversation import ChatQuestion
from recommender.llm.rerank import max_displacement
from recommender.models import InteractionEvent
from recommender.settings import LLMConfig
from tests.recommender.llm.conftest import FUNCTIONAL_BUDGET, llm_service


@pytest.mark.slow  # the model loaded through transformers (about 25 s)
def test_transformers_runtime_reranks_explains_and_chats(tmp_path: Path, embedder, gguf_path: Path) -> None:
    settings = {
        "backend": "local",
        "local_runtime": "transformers",
        "model": str(gguf_path),
        "timeout_seconds": FUNCTIONAL_BUDGET,
    }
    service = llm_service(tmp_path, embedder, **settings)
    assert isinstance(service.llm.chat_model, TransformersChat)
    service.events.add([InteractionEvent(user_id="u", product_id="bea-006", type="purchase")])
    retrieval = [item.product_id for item in service.pipeline.for_user("u", 50).items][:20]
    result = service.llm.recommend(lambda depth: service.pipeline.for_user("u", depth), 20, user_id="u")
    assert result.reranking["reranked"] is True and result.reranking["method"] == "label-logits"
    after = [item.product_id for item in result.items]
    assert all(retrieval.index(pid) - after.index(pid) <= max_displacement(0.3, 20) for pid in retrieval)
    explained = service.llm.recommend(
        lambda depth: service.pipeline.for_user("u", depth), 1, user_id="u", rerank=False, explain=True
    )
    assert explained.items[0].explanation["text"]
    answer = service.llm.chat(ChatQuestion("bea-007", "Why this one?", "u"))
    assert answer.answer and answer.source in ("llm", "template")
    service.close()


def test_a_model_directory_selects_transformers(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot load the Hugging Face model"):
        build_chat_model(LLMConfig(backend="local", model=str(tmp_path)))  # a directory, but no model in it
