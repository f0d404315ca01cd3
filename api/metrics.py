"""Prometheus metrics: request latency by route and status, plus the core's counters and the queue depth."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import METRICS

REQUEST_SECONDS = Histogram(
    "recommender_http_request_seconds",
    "HTTP request latency, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("recommender_task_queue_depth", "Tasks waiting in the Celery queue (-1: unknown).")

router = APIRouter(tags=["operations"])


@router.get("/metrics", dependencies=[METRICS], response_class=Response)
def metrics() -> Response:
    """Prometheus text format. Needs a key with the ``metrics`` scope (when keys are configured)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
