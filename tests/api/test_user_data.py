"""A shopper's data: exported whole, and erased from every store that holds it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import build_service
from tests.api.conftest import ids
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings

USER = "shopper-7f3a9c"


def test_export_then_erase_leaves_nothing_of_the_user_anywhere(
    tmp_path: Path, embedder, gguf_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        llm={"backend": "local", "model": str(gguf_path), "timeout_seconds": 60},
        experimental={"llm": {"rerank_top_n": 5}},
    )
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    try:
        with TestClient(create_app(settings, service), client=LOOPBACK) as client:
            events = [
                {"user_id": USER, "product_id": product, "type": "purchase"}
                for product in ("kit-001", "kit-004")
            ]
            events.append({"user_id": "someone-else", "product_id": "kit-002", "type": "view"})
            assert client.post("/events", json={"events": events}).status_code == 202
            service.profiles.refresh([USER, "someone-else"])
            reranked = client.get(f"/users/{USER}/recommendations", params={"k": 3})
            assert reranked.status_code == 200 and ids(reranked)
            chat = client.post(
                "/chat", json={"product_id": "kit-004", "message": "why?", "user_id": USER}
            ).json()

            exported = client.get(f"/users/{USER}/data").json()
            assert [event["product_id"] for event in exported["events"]] == ["kit-004", "kit-001"] or sorted(
                event["product_id"] for event in exported["events"]
            ) == ["kit-001", "kit-004"]
            assert len(exported["profile"]["vector"]) == embedder.dimension
            assert list(exported["conversations"]) == [chat["conversation_id"]]

            erased = client.delete(f"/users/{USER}").json()
            assert erased["events"] == 2 and erased["profile"] is True and erased["conversations"] == 1
            assert erased["cached_llm_outputs"] >= 1

            again = client.get(f"/users/{USER}/data").json()
            assert again["events"] == [] and again["profile"] is None and again["conversations"] == {}
            # Someone else's data is untouched.
            assert len(client.get("/users/someone-else/data").json()["events"]) == 1
            # The conversation is gone for its owner too.
            follow_up = {
                "product_id": "kit-004",
                "message": "and?",
                "user_id": USER,
                "conversation_id": chat["conversation_id"],
            }
            assert client.post("/chat", json=follow_up).status_code == 404
            # The next training run sees none of the user's events.
            assert USER not in service.events.engagement_sequences()

        _assert_nowhere(service, settings)
    finally:
        service.close()


def _assert_nowhere(service, settings) -> None:
    # Every point of both vector collections, payloads included.
    for store in (service.products, service.users):
        offset = None
        while True:
            points, offset = store.scroll(256, offset)
            assert all(USER not in repr(point.payload) and USER not in point.point_id for point in points)
            if offset is None:
                break
    # Every row of every table of the event store, and the database files' raw bytes (deleted rows are
    # overwritten and the write-ahead log is checkpointed).
    database_path = Path(settings.events.url.removeprefix("sqlite:///"))
    with sqlite3.connect(database_path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in connection.execute(f"SELECT * FROM {table}"):  # noqa: S608 (table names from the schema)
                assert USER not in repr(row), table
    for file in database_path.parent.glob(database_path.name + "*"):
        assert USER.encode() not in file.read_bytes(), file.name
    # In-memory holders: conversations and the LLM's cache.
    assert service.llm.conversations.of_user(USER) == {}
    assert len(service.llm.reranker._cache) == 0
