"""Training runs one at a time: a second request gets 409 with the running id."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_second_training_request_gets_409_with_the_running_id(client: TestClient, service) -> None:
    running = service.training.begin()  # a run in progress, e.g. in another process
    response = client.post("/models/sequence/train")
    assert response.status_code == 409 and response.json()["running"] == running
    assert client.get("/models/sequence").json()["training_run"] == running
    service.training.end(running)
    accepted = client.post("/models/sequence/train")
    assert accepted.status_code == 202
