"""The services the tasks work on, one per tenant: the API process hands its own over; a worker process
builds them on a tenant's first task."""

from __future__ import annotations

import threading

from recommender.service import RecommenderService
from recommender.settings import DEFAULT_TENANT, get_settings
from recommender.tenancy import TenantServices

_tenants: TenantServices | None = None
_lock = threading.Lock()


def use_tenants(tenants: TenantServices | None) -> None:
    """Share already built services (the API process does this: an embedded store allows one opener)."""
    global _tenants
    with _lock:
        _tenants = tenants


def use_service(service: RecommenderService | None) -> None:
    """Share one already built service as the implicit tenant's."""
    use_tenants(TenantServices(service.settings, default=service) if service is not None else None)


def get_service(tenant: str = DEFAULT_TENANT) -> RecommenderService:
    return _registry().get(tenant)


def switch_encoder(tenant: str = DEFAULT_TENANT) -> RecommenderService:
    """Serve the tenant's published encoder now (see ``TenantServices.switch_encoder``)."""
    return _registry().switch_encoder(tenant)


def _registry() -> TenantServices:
    global _tenants
    with _lock:
        if _tenants is None:
            _tenants = TenantServices(get_settings())
        return _tenants
