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


class CrashingModel(RenamedModel):
    """The real model that dies after some documents, as a process killed mid-rebuild would."""

    def __init__(self, inner: SentenceTransformerEmbedder, name: str, crash_after: int) -> None:
        super().__init__(inner, name)
        self._crash_after = crash_after

    def encode_documents(self, texts: list[str]):
        if self.encoded + len(texts) > self._crash_after:
            raise KeyboardInterrupt("killed mid-rebuild")
        return super().encode_documents(texts)


def test_a_crash_while_re_embedding_loses_nothing(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = make_settings(tmp_path)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.close()
    rebuild = make_settings(tmp_path, qdrant={"on_model_change": "rebuild"})
    with pytest.raises(KeyboardInterrupt):
        build_service(rebuild, embedder=CrashingModel(embedder, "other-model", crash_after=0))
    # The old collection is whole and still serves with the old model.
    old = build_service(settings, embedder=embedder)
    try:
        assert old.catalog.count() == 60
        assert old.retriever.for_query("espresso", 1).items[0].product_id == "kit-008"
    finally:
        old.close()
    # The next start discards the partial copy and rebuilds from the old collection.
    rebuilt = build_service(rebuild, embedder=RenamedModel(embedder, "other-model"))
    try:
        assert rebuilt.catalog.count() == 60
    finally:
        rebuilt.close()
    assert sorted(path.name for path in (tmp_path / "qdrant").iterdir() if path.is_dir()) == [
        "reco_products",
        "reco_users",
    ]


def test_a_crash_during_the_switch_is_finished_from_the_complete_copy(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    import dataclasses

    from recommender.catalog import Catalog
    from recommender.database import Database
    from recommender.leases import Leases
    from recommender.rebuild import MARKER_TTL_SECONDS, REBUILD_SUFFIX
    from recommender.store.opening import open_collection, product_collection

    settings = make_settings(tmp_path)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    products = [service.catalog.get(f"kit-{index:03d}") for index in range(1, 11)]
    service.close()
    # The state a crash in the middle of the switch leaves: a complete copy under its marker, and the
    # products collection already dropped.
    renamed = RenamedModel(embedder, "other-model")
    target = product_collection(settings, renamed)  # type: ignore[arg-type]
    copy_spec = dataclasses.replace(target, name=target.name + REBUILD_SUFFIX)
    copy = open_collection(settings, copy_spec)
    Catalog(copy, renamed).upsert(products)  # type: ignore[arg-type]
    copy.close()
    Leases(Database(settings.events.url)).acquire(f"rebuilt:{copy_spec.name}", "complete", MARKER_TTL_SECONDS)
    stored_old = dataclasses.replace(target, embedding_model=embedder.model_name)
    open_collection(settings, stored_old).drop()

    rebuilt = build_service(make_settings(tmp_path, qdrant={"on_model_change": "rebuild"}), embedder=renamed)
    try:
        assert rebuilt.catalog.count() == 10
        assert rebuilt.retriever.similar("kit-001", 3).items
    finally:
        rebuilt.close()
    assert not (tmp_path / "qdrant" / copy_spec.name).exists()
