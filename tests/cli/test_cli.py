"""The ``recommender`` command: ingest with a report, and demo serving the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app
from recommender.demo import demo_catalog_path
from recommender.models import EventType, InteractionEvent
from recommender.service import build_service
from recommender.settings import get_settings
from tests.live_service import free_port, live_service, running
from tests.shop_histories import bundle_histories


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "RECO_QDRANT__PATH": str(tmp_path / "qdrant"),
        "RECO_EVENTS__URL": f"sqlite:///{tmp_path / 'events.db'}",
        "RECO_API__UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_ingest_reports_bad_rows_and_imports_the_rest(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("product_id,title,price\np1,Garden hose,20\np2,,5\np3,Watering can,12\n")
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1, result.output
    assert "2 ok, 1 failed" in result.output
    assert "title" in result.output and "3" in result.output  # line 3, field title
    again = CliRunner().invoke(app, ["ingest", str(path)])
    assert "0 embedded, 2 unchanged" in again.output


def test_ingest_refuses_an_unknown_format(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "catalog.xlsx"
    path.write_text("x")
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2 and "cannot tell the format" in result.output


def test_eval_refuses_a_split_it_cannot_measure_and_an_unknown_variant(tmp_path: Path) -> None:
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    result = CliRunner().invoke(app, ["eval", str(data), "--split", "sideways"])
    assert result.exit_code == 2 and "choose both, warm or cold" in result.output
    result = CliRunner().invoke(app, ["eval", str(data), "--split", "cold", "--cold-share", "0"])
    assert result.exit_code == 2 and "--cold-share above 0" in result.output
    result = CliRunner().invoke(app, ["eval", str(data), "--out", str(tmp_path), "--variants", "bogus"])
    assert result.exit_code == 2 and "unknown variants ['bogus']" in result.output, result.output


@pytest.mark.slow  # the demo started as a process (about 18 s)
def test_demo_serves_the_demo_catalog(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with running(
        [sys.executable, "-c", "from cli.main import main; main()", "demo", "--port", str(port)],
        f"http://127.0.0.1:{port}/health/ready",
        log_path=log,
        env={**os.environ, **cli_env, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
        timeout=120,
    ):
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
        assert ready.json()["products"] == 60
        runner = httpx.get(f"http://127.0.0.1:{port}/users/demo-runner/recommendations", timeout=10).json()
        assert runner["signal"] == "profile"
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
    assert f"http://127.0.0.1:{port}/docs" in log.read_text()


def test_ingest_with_a_field_mapping(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "saas.jsonl"
    path.write_text(
        '{"id": "notion", "name": "Notion", "Body (HTML)": "<p>Docs</p>", "colour": "black"}\n'
        '{"id": "figma", "name": "Figma", "Body (HTML)": "Design", "colour": "purple"}\n'
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"name": "title"}')
    result = CliRunner().invoke(
        app, ["ingest", str(path), "--mapping", str(mapping), "--map", "Body (HTML)=description"]
    )
    assert result.exit_code == 0, result.output
    assert "2 ok, 0 failed" in result.output
    assert result.output.count("colour") == 1  # the column matching no field is reported once


@pytest.mark.slow  # two servers started as processes (about 15 s)
def test_serve_writes_an_access_log_line_per_request_unless_turned_off(tmp_path: Path) -> None:
    logs = {}
    for setting in ("true", "false"):
        root = tmp_path / setting
        root.mkdir()
        port = free_port()
        with live_service(root, port, RECO_API__ACCESS_LOG=setting):
            response = httpx.get(f"http://127.0.0.1:{port}/products/nothing-here/similar", timeout=30)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/json"
        logs[setting] = (root / f"server-{port}.log").read_text()
    assert '"GET /products/nothing-here/similar HTTP/1.1" 404' in logs["true"]
    assert "nothing-here" not in logs["false"]
    assert "Application startup complete" in logs["false"]


def test_train_encoder_fine_tunes_publishes_and_serves_the_shops_encoder(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env = {
        "RECO_COLLAB__MODELS_PATH": str(tmp_path / "models"),
        "RECO_EMBEDDING__BACKEND": "torch",
        "RECO_EMBEDDING__FINE_TUNE_MAX_STEPS": "12",
        "RECO_EMBEDDING__FINE_TUNE_BATCH_SIZE": "16",
        "RECO_EMBEDDING__FINE_TUNE_LEARNING_RATE": "1e-4",
        "RECO_EMBEDDING__FINE_TUNE_QUERY_TOLERANCE": "1.0",  # the search check has its own tests
    }
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    assert CliRunner().invoke(app, ["ingest", str(demo_catalog_path())]).exit_code == 0
    service = build_service(get_settings())
    service.events.add(bundle_histories(150))
    # Fifty shoppers' searches on the shop's own search (the event brings its query): the choices of 40
    # are trained on, 10 shoppers' are held out to check search.
    searches = [("gift for a runner", "run"), ("something for the kitchen", "kit")]
    service.events.add(
        [
            InteractionEvent(
                user_id=f"searcher-{user}",
                product_id=f"{searches[user % 2][1]}-{user % 10 + 1:03d}",
                type=EventType.CLICK,
                query=searches[user % 2][0],
            )
            for user in range(50)
        ]
    )
    service.close()

    result = CliRunner().invoke(app, ["train", "--encoder"])
    assert result.exit_code == 0, result.output
    assert "encoder all-MiniLM-L6-v2@shop-v1: published" in result.output
    assert "the shop's searches: 40 (query, chosen product) pairs trained on, 10 held out" in result.output
    assert "search 'searches' precision@5" in result.output
    assert "search 'titles' precision@5" in result.output
    # Nothing was trained before it, so there were no served lists to compare it on; no parts retrained.
    assert "served lists: no trained model served before" in result.output
    assert "published v" not in result.output

    reopened = build_service(get_settings())
    try:
        assert reopened.embedder.model_name == "all-MiniLM-L6-v2@shop-v1"
        assert reopened.catalog.count() == 60  # every product re-embedded with it
    finally:
        reopened.close()
