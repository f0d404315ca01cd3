"""API keys and scopes, keys never in the URL, loopback-only without keys, rate limits, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import RecommenderService, build_service
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings

READ_KEY = "read-key-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
METRICS_KEY = "metrics-key-0123456789abcdef"
KEYS = {
    READ_KEY: ["read"],
    WRITE_KEY: ["read", "write"],
    ADMIN_KEY: ["read", "write", "admin"],
    METRICS_KEY: ["metrics"],
}


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[RecommenderService]:
    root = tmp_path_factory.mktemp("keyed")
    service = build_service(
        make_settings(root, api={"keys": KEYS, "rate_limits": {"chat": "3/minute"}}), embedder=embedder
    )
    import_demo_catalog(service)
    yield service
    service.close()


@pytest.fixture
def keyed(keyed_service: RecommenderService) -> Iterator[TestClient]:
    with TestClient(create_app(keyed_service.settings, keyed_service), client=LOOPBACK) as client:
        yield client


# (method, path, body, scope it needs)
OPERATIONS = [
    ("GET", "/users/demo-runner/recommendations", None, "read"),
    ("POST", "/recommendations", {"query": "tea"}, "read"),
    ("GET", "/products/kit-001", None, "read"),
    ("GET", "/products/kit-001/similar", None, "read"),
    ("GET", "/models/sequence", None, "read"),
    ("POST", "/events", {"events": [{"user_id": "s1", "product_id": "kit-001", "type": "view"}]}, "write"),
    ("PATCH", "/products/kit-001", {"price": 12.5}, "write"),
    ("DELETE", "/products/no-such-product", None, "write"),
    ("GET", "/imports/0123", None, "admin"),
    ("POST", "/imports/from-path", {"path": "catalog.csv"}, "admin"),
    ("GET", "/users/s1/data", None, "admin"),
    ("DELETE", "/users/nobody", None, "admin"),
    ("GET", "/metrics", None, "metrics"),
]


@pytest.mark.parametrize(("method", "path", "body", "scope"), OPERATIONS)
def test_every_operation_needs_a_key_with_its_scope(keyed: TestClient, method, path, body, scope) -> None:
    missing = keyed.request(method, path, json=body)
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    assert "WWW-Authenticate" in missing.headers
    wrong = keyed.request(method, path, json=body, headers={"X-API-Key": "not-a-key-0123456789"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the API key is not valid"
    holders = [key for key, scopes in KEYS.items() if scope in scopes]
    lacking = [key for key, scopes in KEYS.items() if scope not in scopes]
    for key in lacking:
        refused = keyed.request(method, path, json=body, headers={"X-API-Key": key})
        assert refused.status_code == 403 and repr(scope) in refused.json()["detail"]
    for key in holders:
        allowed = keyed.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert allowed.status_code != 401 and "scope" not in allowed.text, (key, allowed.text)


def test_a_key_in_the_query_string_is_refused_even_when_valid(keyed: TestClient) -> None:
    for name in ("api_key", "key", "token"):
        response = keyed.get("/products/kit-001", params={name: ADMIN_KEY})
        assert response.status_code == 401 and "query string" in response.json()["detail"]
        # Refused even alongside a valid header: the URL has leaked it already.
        response = keyed.get("/products/kit-001", params={name: ADMIN_KEY}, headers={"X-API-Key": ADMIN_KEY})
        assert response.status_code == 401


def test_health_stays_open_and_docs_show_the_security_schemes(keyed: TestClient) -> None:
    assert keyed.get("/health").status_code == 200
    schema = keyed.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key" and schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/recommendations"]["post"]["security"]


def test_keys_are_never_logged(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    keyed.get("/products/kit-001", headers={"X-API-Key": ADMIN_KEY})
    keyed.get("/products/kit-001", headers={"X-API-Key": "wrong-key-0123456789abcdef"})
    assert ADMIN_KEY not in caplog.text and "wrong-key-0123456789abcdef" not in caplog.text


def test_chat_is_rate_limited_per_key_with_retry_after(keyed: TestClient) -> None:
    body = {"product_id": "kit-001", "message": "why this item?"}
    answers = [keyed.post("/chat", json=body, headers={"X-API-Key": WRITE_KEY}) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1 and "rate limit" in answers[-1].json()["detail"]
    # Another key has its own budget.
    assert keyed.post("/chat", json=body, headers={"X-API-Key": READ_KEY}).status_code == 200


def test_metrics_report_requests_by_route_template(keyed: TestClient) -> None:
    keyed.get("/products/kit-002", headers={"X-API-Key": READ_KEY})
    text = keyed.get("/metrics", headers={"X-API-Key": METRICS_KEY}).text
    assert (
        'recommender_http_request_seconds_count{method="GET",route="/products/{product_id}",status="200"}'
        in text
    )
    assert "recommender_task_queue_depth" in text and "recommender_import_rows_total" in text


def test_keys_file_is_read_and_a_broken_one_stops_start_up(tmp_path: Path, embedder) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"file-key-0123456789abcdef": ["read"]}))
    settings = make_settings(tmp_path, api={"keys_file": keys_file})
    service = build_service(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, service), client=LOOPBACK) as client:
            assert client.get("/models/sequence").status_code == 401
            ok = client.get("/models/sequence", headers={"X-API-Key": "file-key-0123456789abcdef"})
            assert ok.status_code == 200
        keys_file.write_text('{"k": "not a list"')
        with pytest.raises(ValueError, match="keys_file"):
            create_app(settings, service)
    finally:
        service.close()


def test_short_keys_are_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        make_settings(tmp_path, api={"keys": {"short": ["read"]}})


def test_serving_beyond_loopback_without_keys_refuses_to_start(tmp_path: Path) -> None:
    environment = {"RECO_QDRANT__PATH": str(tmp_path / "q"), "RECO_EVENTS__URL": f"sqlite:///{tmp_path}/e.db"}
    result = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_base_environment(), **environment},
    )
    assert result.returncode != 0
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr
    assert "RECO_API__KEYS" in result.stderr


def _base_environment() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith("RECO_API__")}


def test_without_keys_only_loopback_callers_are_served(service) -> None:
    from api.security import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("::ffff:127.0.0.1")
    assert not _is_loopback("10.0.0.5") and not _is_loopback("192.168.1.2") and not _is_loopback(None)
    with TestClient(create_app(service.settings, service), client=("203.0.113.9", 5000)) as remote:
        response = remote.get("/models/sequence")
        assert response.status_code == 403 and "loopback" in response.json()["detail"]
