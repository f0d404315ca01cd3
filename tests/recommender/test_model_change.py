"""A collection records its model; another model is refused, or rebuilt on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.embedding import SentenceTransformerEmbedder
from recommender.service import build_service
from recommender.store.base import ModelMismatchError
from tests.conftest import import_demo_catalog, make_settings


class RenamedModel:
    """The real model under another name, as if the user had configured a different model."""

    def __init__(self, inner: SentenceTransformerEmbedder, name: str) -> None:
        self._inner = inner
        self.model_name = name
        self.dimension = inner.dimension
        self.encoded = 0

    def encode_documents(self, texts: list[str]):
        self.encoded += len(texts)
        return self._inner.encode_documents(texts)

    def encode_queries(self, texts: list[str]):
        return self._inner.encode_queries(texts)


def test_starting_with_another_model_is_refused(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.close()
    with pytest.raises(ModelMismatchError, match="other-model.*RECO_QDRANT__ON_MODEL_CHANGE=rebuild"):
        build_service(settings, embedder=RenamedModel(embedder, "other-model"))


def test_rebuild_reembeds_every_product_with_the_new_model(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.close()
    renamed = RenamedModel(embedder, "other-model")
    rebuilt = build_service(make_settings(tmp_path, qdrant={"on_model_change": "rebuild"}), embedder=renamed)
    try:
        assert renamed.encoded == 60
        assert rebuilt.catalog.count() == 60
        assert rebuilt.retriever.for_query("espresso", 1).items[0].product_id == "kit-008"
    finally:
        rebuilt.close()
    # The collection now records the new model, so the old one is refused in turn.
    with pytest.raises(ModelMismatchError):
        build_service(settings, embedder=embedder)
