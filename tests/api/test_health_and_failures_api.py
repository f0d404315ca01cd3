"""Readiness, and dependencies that are down: 503 with the reason, never a 500 with a traceback."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import build_service
from tests.conftest import LOOPBACK, make_settings
from tests.live_service import free_port


def test_ready_reports_backend_and_dependencies(client: TestClient, backend: str) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["vector_store"] == backend
    assert body["task_runner"] == "in-process worker"
    assert {item["name"] for item in body["dependencies"]} == {"vector store", "event store", "task broker"}
    assert client.get("/openapi.json").json()["info"]["title"] == "Semantic product recommender"


def test_event_store_down_gives_503_with_reason(tmp_path: Path, embedder) -> None:
    settings = make_settings(
        tmp_path, events={"url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    service = build_service(settings, embedder=embedder)
    with TestClient(create_app(settings, service), client=LOOPBACK) as client:
        response = client.post(
            "/events", json={"events": [{"user_id": "u", "product_id": "p", "type": "view"}]}
        )
        assert response.status_code == 503
        assert response.json()["dependency"] == "event store"
        assert response.json()["reason"] == "cannot connect"
        assert "127.0.0.1" not in response.text and "postgres" not in response.text.lower()
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
    service.close()


def test_qdrant_server_down_gives_503_with_reason(tmp_path: Path, embedder) -> None:
    settings = make_settings(
        tmp_path, qdrant={"url": f"http://127.0.0.1:{free_port()}", "timeout_seconds": 1}
    )
    service = build_service(settings, embedder=embedder)  # starts despite the store being down
    with TestClient(create_app(settings, service), raise_server_exceptions=False, client=LOOPBACK) as client:
        for response in (
            client.get("/users/u/recommendations"),
            client.post("/recommendations", json={"query": "tea"}),
            client.post("/products", json={"product_id": "p", "title": "t"}),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["dependency"] == "vector store"
            assert "Traceback" not in response.text
    service.close()


def test_broker_down_gives_503_and_marks_the_job_failed(tmp_path: Path, embedder) -> None:
    settings = make_settings(
        tmp_path,
        celery={"broker_url": f"redis://127.0.0.1:{free_port()}/0"},
        api={"allow_server_paths": True, "import_root": tmp_path},
    )
    service = build_service(settings, embedder=embedder)
    with TestClient(create_app(settings, service), client=LOOPBACK) as client:
        (tmp_path / "code.py").write_text("print()")
        response = client.post("/imports/from-path", json={"path": "code.py"})
        assert response.status_code == 422  # a .py file is not a catalog: checked before anything is queued
        catalog = tmp_path / "c.jsonl"
        catalog.write_text('{"product_id": "a", "title": "A"}\n')
        response = client.post("/imports/from-path", json={"path": str(catalog)})
        assert response.status_code == 503 and response.json()["dependency"] == "task broker"
        assert client.get("/health/ready").json()["task_runner"] == "celery broker"
    service.close()
