"""Rankings wait in the event loop, first come first served, and reach a thread only when a slot is free;
a request that will call a language model skips that queue."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from api.rankings import Rankings
from recommender.models import RecommendationList
from recommender.pipeline.request import PipelineRequest
from recommender.service import RecommenderService


def watch_runs(monkeypatch: pytest.MonkeyPatch, service: RecommenderService) -> tuple[list[str], list[int]]:
    """Wraps the real pipeline's ``run``: the order rankings started in and how many ran at once."""
    pipeline, started, in_flight, lock = service.pipeline, [], [0], threading.Lock()
    most = [0]
    real_run = pipeline.run

    def watched(request: PipelineRequest) -> RecommendationList:
        with lock:
            started.append(str(request.user_id))
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.02)  # long enough for every other request to arrive meanwhile
            return real_run(request)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(pipeline, "run", watched)
    return started, most


def send_eight(service: RecommenderService, rankings: Rankings) -> list[RecommendationList]:
    results: list[RecommendationList] = []

    async def one(user: str) -> None:
        results.append(await rankings.run(service.pipeline, PipelineRequest(k=3, user_id=user)))

    async def all_eight() -> None:
        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(one, f"user-{index}")
                await anyio.sleep(0.002)  # they arrive in this order

    anyio.run(all_eight)
    return results


def test_rankings_run_one_at_a_time_in_arrival_order(
    demo_service: RecommenderService, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, most = watch_runs(monkeypatch, demo_service)
    results = send_eight(demo_service, Rankings(concurrency=1))
    assert len(results) == 8 and all(len(result.items) == 3 for result in results)
    assert most == [1]  # the others waited without a thread
    assert started == [f"user-{index}" for index in range(8)]


def test_a_request_that_calls_a_language_model_does_not_hold_the_queue(
    demo_service: RecommenderService, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, most = watch_runs(monkeypatch, demo_service)
    monkeypatch.setattr(demo_service.pipeline, "calls_a_model", lambda request: True)
    send_eight(demo_service, Rankings(concurrency=1))
    assert len(started) == 8 and most[0] > 1  # seconds of model time must not queue the others
