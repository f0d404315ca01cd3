"""Prometheus metrics: request latency by route and status, plus the core's counters and the queue depth.

With several API processes (``recommender serve --workers N``) the command sets ``PROMETHEUS_MULTIPROC_DIR``
and every process writes its counts there; whichever process answers /metrics sums them all
(prometheus_client's multiprocess mode), so a scrape does not depend on which process it reached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import METRICS, Queue

REQUEST_SECONDS = Histogram(
    "recommender_http_request_seconds",
    "HTTP request latency, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

router = APIRouter(tags=["operations"])


class QueueDepth:
    """The queue's depth, asked when scraped (one broker call per scrape, in the process that answers)."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self._depth = depth

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "recommender_task_queue_depth", "Tasks waiting in the Celery queue (-1: unknown).", self._depth()
        )


def counted_registry() -> CollectorRegistry:
    """This process's metrics, or every API process's summed when they share a multiprocess folder."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


@router.get("/metrics", dependencies=[METRICS], response_class=Response)
def metrics(queue: Queue) -> Response:
    """Prometheus text format. Needs a key with the ``metrics`` scope (when keys are configured)."""
    depth = CollectorRegistry()
    depth.register(QueueDepth(queue.depth))
    return Response(
        generate_latest(counted_registry()) + generate_latest(depth), media_type=CONTENT_TYPE_LATEST
    )


class RequestMetrics:
    """Times every request, labelled by the route template (``/products/{product_id}``), not the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            # Starlette's route.path_format is the template without converters (``{product_id}``, not
            # ``{product_id:path}``).
            template = getattr(route, "path_format", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
