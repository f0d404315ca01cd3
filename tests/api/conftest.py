from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import RecommenderService
from tests.conftest import LOOPBACK


@pytest.fixture
def client(service: RecommenderService) -> Iterator[TestClient]:
    with TestClient(create_app(service.settings, service), client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_service: RecommenderService) -> Iterator[TestClient]:
    with TestClient(create_app(demo_service.settings, demo_service), client=LOOPBACK) as test_client:
        yield test_client


def wait_for_job(
    client: TestClient, job_id: str, timeout: float = 60.0, headers: dict[str, str] | None = None
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/imports/{job_id}", headers=headers).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"import {job_id} did not finish")


def ids(response) -> list[str]:
    return [item["product_id"] for item in response.json()["items"]]
