"""The service the tasks work on: the API process hands its own over; a worker process builds one."""

from __future__ import annotations

import threading

from recommender.service import RecommenderService, build_service
from recommender.settings import get_settings

_service: RecommenderService | None = None
_lock = threading.Lock()


def use_service(service: RecommenderService | None) -> None:
    """Share an already built service (the API process does this: an embedded store allows one opener)."""
    global _service
    with _lock:
        _service = service


def get_service() -> RecommenderService:
    global _service
    with _lock:
        if _service is None:
            _service = build_service(get_settings())
        return _service
