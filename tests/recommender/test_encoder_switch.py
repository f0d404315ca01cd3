"""Switching a tenant's encoder while requests arrive: one switch at a time per tenant.

A request checks every 30 s whether a worker published an encoder. When that check came due while the
training job was itself re-embedding the catalog into the copy collection, the request started a second
rebuild of the same copy and failed with the store's lock (a 500 in the API). Here the version published is
the configured model saved as version 1: real weights, under the shop's name, so the switch re-embeds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import recommender.tenancy as tenancy
from recommender.embedding import build_embedder
from recommender.embedding.engines import SentenceTransformerEmbedder
from recommender.embedding.versions import EncoderVersions
from recommender.errors import ConflictError
from recommender.leases import Leases
from recommender.service import RecommenderService, build_service
from recommender.settings import Settings
from recommender.tenancy import TenantServices
from tests.conftest import import_demo_catalog, make_settings


def serving_with_a_published_copy(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> tuple[Settings, RecommenderService, EncoderVersions]:
    """A service over the demo catalog, and the configured model published as the shop's encoder v1."""
    settings = make_settings(
        tmp_path, collab={"models_path": tmp_path / "models"}, embedding={"backend": "torch"}
    )
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    versions = EncoderVersions(settings.collab.models_path)
    embedder._model.save(str(versions.folder(1)))
    versions.write_meta(1, {"base_model": settings.embedding.model})
    versions.publish(1)
    return settings, service, versions


def test_a_request_during_an_encoder_switch_is_served_by_the_old_service(
    tmp_path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, service, versions = serving_with_a_published_copy(tmp_path, embedder)
    assert service.encoder_pending()
    products = service.products.count()

    rebuilding, may_finish = threading.Event(), threading.Event()
    real_prepare_rebuild = tenancy.prepare_rebuild

    def held_in_the_rebuild(*args: Any) -> None:
        """The first rebuild (the worker's) waits inside until the request below was answered."""
        if not rebuilding.is_set():
            rebuilding.set()
            assert may_finish.wait(120)
        real_prepare_rebuild(*args)

    monkeypatch.setattr(tenancy, "prepare_rebuild", held_in_the_rebuild)
    tenants = TenantServices(settings, default=service)
    switched: list[Any] = []
    worker = threading.Thread(target=lambda: switched.append(tenants.switch_encoder()))
    worker.start()
    try:
        assert rebuilding.wait(60)
        during = tenants.get()  # the encoder check is due: the first one for this registry
        assert during is service and not during._closed
        assert during.products.count() == products
    finally:
        may_finish.set()
        worker.join(300)
    try:
        assert switched and switched[0] is not service
        assert switched[0].embedder.model_name == versions.current().model_name
        assert tenants.get() is switched[0] and service._closed
    finally:
        tenants.close()


def test_a_switch_another_process_is_making_is_followed_not_repeated(
    tmp_path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the switch lease (here: taken by hand under another holder's name): a request
    serves the old service without embedding anything, and once the lease is free and the collection holds
    the published model, the next request's check opens the service again without a second rebuild."""
    settings, service, versions = serving_with_a_published_copy(tmp_path, embedder)
    products = service.products.count()
    rebuilds: list[int] = []
    real_prepare_rebuild = tenancy.prepare_rebuild
    monkeypatch.setattr(
        tenancy, "prepare_rebuild", lambda *args: rebuilds.append(real_prepare_rebuild(*args))
    )
    leases = Leases(service.database)
    leases.acquire(tenancy.SWITCH_LEASE, "another-host:1234:1", 60)
    tenants = TenantServices(settings, default=service)
    try:
        assert tenants.get() is service and not service._closed  # the check is due: the first one
        assert rebuilds == []
        monkeypatch.setattr(tenancy, "SWITCH_WAIT_SECONDS", 0.0)
        with pytest.raises(ConflictError, match="another-host:1234:1"):
            tenants.switch_encoder()  # a caller that must see it done is told who is switching
        # The other process's switch, as it would run there: re-embed into the copy, then switch.
        other_embedder = build_embedder(settings.embedding, versions.current())
        real_prepare_rebuild(service.settings, other_embedder, service.products)
        service.close()
        build_service(settings, other_embedder).close()
        leases.release(tenancy.SWITCH_LEASE)
        followed = tenants.get()  # following: checked at once, as the collection changed under it
        assert followed is not service
        assert followed.embedder.model_name == versions.current().model_name
        assert rebuilds == []  # followed, not embedded again
        assert followed.products.count() == products
    finally:
        tenants.close()
