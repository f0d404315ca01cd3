"""Tenants: one deployment serving several shops, each invisible to the others.

A tenant's service has its own collections, event-store rows, import jobs, conversations, leases and model
versions (``Settings.for_tenant`` names them); the embedding model, and the chat model where the LLM
settings agree, are loaded once and shared. Services are built on a tenant's first request.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from recommender.embedding import build_embedder
from recommender.errors import ConflictError
from recommender.leases import Leases
from recommender.rebuild import collection_holds, prepare_rebuild
from recommender.service import RecommenderService, build_service
from recommender.settings import DEFAULT_TENANT, Settings
from recommender.store.opening import stored_metadata
from recommender.store.shared import HostAddress

# How often a tenant's service checks whether another process changed the shop's encoder: sooner when the
# pointer file changed, and while another process is switching it, at every request whose collection that
# process has replaced (otherwise every FOLLOW_SECONDS).
ENCODER_CHECK_SECONDS = 30.0
FOLLOW_SECONDS = 1.0
# One switch of a tenant's encoder at a time across processes: the first re-embeds the catalog, the others
# then find the collection switched and only open their service again. A switch that died frees it after this.
SWITCH_LEASE = "shop-encoder switch"
SWITCH_LEASE_SECONDS = 3600.0
# How long a caller that must see the switch done (the withdrawal route, the training job) waits for another
# process's switch before it is told that one is in progress (a 409 naming the holder).
SWITCH_WAIT_SECONDS = 900.0


def configured_tenants(settings: Settings) -> list[str]:
    """The implicit tenant first, then every tenant that an API key or a settings override names."""
    named = {grant.tenant for grant in settings.api.resolved_keys().values()} | set(
        settings.tenants.overrides
    )
    return [DEFAULT_TENANT, *sorted(named - {DEFAULT_TENANT})]


class TenantServices:
    def __init__(
        self,
        settings: Settings,
        default: RecommenderService | None = None,
        store_host: HostAddress | None = None,
    ) -> None:
        """``default``: the implicit tenant's service, already built (the API builds it at start-up)."""
        self._settings = settings
        self._store_host = store_host
        self._services: dict[str, RecommenderService] = {}
        if default is not None:
            self._services[DEFAULT_TENANT] = default
        self._lock = threading.Lock()
        self._encoder_checked: dict[str, float] = {}
        self._pointer_seen: dict[str, tuple[int, int] | None] = {}
        self._following: set[str] = set()  # tenants whose encoder another process is switching
        # One encoder switch at a time per tenant: two would re-embed into the same copy collection.
        self._switching: dict[str, threading.Lock] = {}

    def get(self, tenant: str = DEFAULT_TENANT) -> RecommenderService:
        service = self._get(tenant)
        if self._encoder_check_due(tenant, service) and service.encoder_pending():
            # Another process (a worker, another API process) published or withdrew the shop's encoder:
            # serve what it chose. A request does not wait for a switch another thread or process is
            # making: the old service serves on.
            service = self.switch_encoder(tenant, wait=False)
        return service

    def _encoder_check_due(self, tenant: str, service: RecommenderService) -> bool:
        now = time.monotonic()
        pointer = service.encoders.pointer_signature()
        if tenant in self._following and _replaced_under(service):
            return True
        with self._lock:
            changed = self._pointer_seen.get(tenant, pointer) != pointer
            self._pointer_seen[tenant] = pointer
            if not changed and now - self._encoder_checked.get(tenant, 0.0) < ENCODER_CHECK_SECONDS:
                return False
            self._encoder_checked[tenant] = now
            return True

    def _check_again_soon(self, tenant: str) -> None:
        with self._lock:
            self._encoder_checked[tenant] = time.monotonic() - ENCODER_CHECK_SECONDS + FOLLOW_SECONDS

    def switch_encoder(self, tenant: str = DEFAULT_TENANT, wait: bool = True) -> RecommenderService:
        """Serve the tenant's published encoder (or the configured model, after a withdrawal): every product
        is re-embedded into a copy while the old service keeps serving, then the service is opened again
        over the copy (a short pause for that tenant's requests). The old service, if it is not the one
        its owner closes itself, is closed. While another thread or process switches that tenant's encoder,
        this waits for it (up to ``SWITCH_WAIT_SECONDS``, then ConflictError naming the holder) and then
        serves what it chose (without embedding the catalog again), or with ``wait=False`` returns the
        service serving now and checks again within ``FOLLOW_SECONDS``."""
        with self._lock:
            switching = self._switching.setdefault(tenant, threading.Lock())
        if not switching.acquire(blocking=wait):
            return self._get(tenant)
        try:
            leases = Leases(self._get(tenant).database, tenant)
            holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
            deadline = time.monotonic() + SWITCH_WAIT_SECONDS
            while True:
                try:
                    leases.acquire(SWITCH_LEASE, holder, SWITCH_LEASE_SECONDS)
                    break
                except ConflictError:
                    if not wait:
                        self._following.add(tenant)
                        self._check_again_soon(tenant)
                        return self._get(tenant)
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(FOLLOW_SECONDS)
            try:
                service = self._switch_encoder(tenant)
                self._following.discard(tenant)
                return service
            finally:
                leases.release(SWITCH_LEASE, holder)
        finally:
            switching.release()

    def _switch_encoder(self, tenant: str) -> RecommenderService:
        old = self._get(tenant)
        if not old.encoder_pending():
            return old
        published = old.encoders.current(old.settings.embedding.model)
        embedder = build_embedder(old.settings.embedding, published)
        if not collection_holds(old.settings, embedder):  # else another process switched it already
            prepare_rebuild(old.settings, embedder, old.products, self._store_host)
        with self._lock:
            old.close()
            service = build_service(self._settings, embedder, store_host=self._store_host, tenant=tenant)
            self._services[tenant] = service
        return service

    def _get(self, tenant: str) -> RecommenderService:
        with self._lock:
            service = self._services.get(tenant)
            if service is None:
                shared = next(iter(self._services.values()), None)
                service = build_service(
                    self._settings, store_host=self._store_host, tenant=tenant, share_from=shared
                )
                self._services[tenant] = service
            return service

    def started(self) -> dict[str, RecommenderService]:
        """The services built so far, by tenant."""
        with self._lock:
            return dict(self._services)

    def close(self, keep: RecommenderService | None = None) -> None:
        """Closes every service this registry built (``keep``: one its owner closes itself)."""
        with self._lock:
            services, self._services = list(self._services.values()), {}
        for service in services:
            if service is not keep:
                service.close()


def _replaced_under(service: RecommenderService) -> bool:
    """Whether the products collection ``service`` reads now holds another model's vectors (another
    process switched it): one small file read (a call to a Qdrant server)."""
    stored = stored_metadata(service.settings, service.products.spec)
    return stored is not None and stored.get("embedding_model") != service.products.spec.embedding_model
