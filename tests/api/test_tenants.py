"""Two shops on one deployment: a key of one tenant never reads, lists, recommends, erases, imports,
trains or chats about anything of the other, through every kind of route; and a tenant's lists are the
lists a deployment of its own would serve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.demo import demo_catalog_path
from recommender.service import build_service
from tests.api.conftest import wait_for_job
from tests.conftest import LOOPBACK, make_settings

KEY_A = "tenant-a-key-0123456789abcdef"
KEY_B = "tenant-b-key-0123456789abcdef"
KEY_DEFAULT = "implicit-key-0123456789abcdef"
ALL = ["read", "write", "admin", "metrics"]
KEYS = {
    KEY_A: {"scopes": ALL, "tenant": "shop-a"},
    KEY_B: {"scopes": ALL, "tenant": "shop-b"},
    KEY_DEFAULT: ALL,
}
DEMO = [json.loads(line) for line in demo_catalog_path().read_text().splitlines() if line.strip()]
# Shop A sells running and kitchen products, shop B beauty and books; both have a product "shared-1".
CATALOG_A = [p for p in DEMO if p["product_id"].startswith(("run-", "kit-"))]
CATALOG_B = [p for p in DEMO if p["product_id"].startswith(("bea-", "boo-"))]
SHARED_A = {"product_id": "shared-1", "title": "Shop A trail running vest", "category": "Sports > Running"}
SHARED_B = {"product_id": "shared-1", "title": "Shop B lavender night cream", "category": "Beauty > Skin"}


def events_for(catalog: list[dict], users: list[str]) -> list[dict]:
    ids = [product["product_id"] for product in catalog]
    return [
        {"user_id": user, "product_id": ids[(number * 3 + step) % len(ids)], "type": "purchase"}
        for number, user in enumerate(users)
        for step in range(3)
    ]


USERS = ["ann", "bob", "cy", "dee"]
EVENTS_A = events_for(CATALOG_A, USERS)
EVENTS_B = events_for(CATALOG_B, USERS)  # the same user ids, in the other shop


def as_(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def load(client: TestClient, key: str, catalog: list[dict], shared: dict, events: list[dict]) -> None:
    assert client.post("/products", json=[*catalog, shared], headers=as_(key)).status_code == 200
    answer = client.post("/events", json={"events": events}, headers=as_(key))
    assert answer.status_code == 202 and answer.json()["accepted"] == len(events)


@pytest.fixture
def two_shops(tmp_path: Path, embedder) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, api={"keys": KEYS})
    service = build_service(settings, embedder=embedder)
    with TestClient(create_app(settings, service), client=LOOPBACK) as client:
        load(client, KEY_A, CATALOG_A, SHARED_A, EVENTS_A)
        load(client, KEY_B, CATALOG_B, SHARED_B, EVENTS_B)
        yield client
    service.close()


def product_ids(answer) -> set[str]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.text
    return {item["product_id"] for item in answer.json()["items"]}


def test_each_key_sees_only_its_own_shop(two_shops: TestClient) -> None:
    client = two_shops
    own_a = {p["product_id"] for p in CATALOG_A} | {"shared-1"}
    own_b = {p["product_id"] for p in CATALOG_B} | {"shared-1"}
    b_only = CATALOG_B[0]["product_id"]
    # Products: the other shop's ids are unknown; a shared id is each shop's own product.
    assert client.get(f"/products/{b_only}", headers=as_(KEY_A)).status_code == 404
    assert client.get(f"/products/{b_only}/similar", headers=as_(KEY_A)).status_code == 404
    assert (
        client.get("/products/shared-1", headers=as_(KEY_A)).json()["product"]["title"] == SHARED_A["title"]
    )
    assert (
        client.get("/products/shared-1", headers=as_(KEY_B)).json()["product"]["title"] == SHARED_B["title"]
    )
    assert product_ids(client.get("/products/shared-1/similar?k=50", headers=as_(KEY_A))) <= own_a
    # Changes and deletions reach one's own shop only.
    assert client.delete(f"/products/{b_only}", headers=as_(KEY_A)).status_code == 404
    assert client.patch(f"/products/{b_only}", json={"price": 1}, headers=as_(KEY_A)).status_code == 404
    assert client.get(f"/products/{b_only}", headers=as_(KEY_B)).status_code == 200
    # Recommendations, personal and by query, come from one's own catalog and history.
    for user in USERS:
        assert product_ids(client.get(f"/users/{user}/recommendations?k=40", headers=as_(KEY_A))) <= own_a
        assert product_ids(client.get(f"/users/{user}/recommendations?k=40", headers=as_(KEY_B))) <= own_b
    query = {"query": "lavender cream for the night", "k": 40}
    assert product_ids(client.post("/recommendations", json=query, headers=as_(KEY_A))) <= own_a
    # The implicit tenant holds nothing of either shop.
    assert client.get("/products/shared-1", headers=as_(KEY_DEFAULT)).status_code == 404
    assert client.get("/users/ann/data", headers=as_(KEY_DEFAULT)).json()["events"] == []


def test_user_data_erasure_and_conversations_stay_within_a_shop(two_shops: TestClient) -> None:
    client = two_shops
    exported = client.get("/users/ann/data", headers=as_(KEY_A)).json()
    assert {event["product_id"] for event in exported["events"]} <= {p["product_id"] for p in CATALOG_A}
    chat = client.post(
        "/chat",
        json={"product_id": "shared-1", "message": "why this item?", "user_id": "ann"},
        headers=as_(KEY_A),
    )
    assert chat.status_code == 200
    conversation = chat.json()["conversation_id"]
    follow_up = {
        "product_id": "shared-1",
        "message": "anything cheaper?",
        "user_id": "ann",
        "conversation_id": conversation,
    }
    assert client.post("/chat", json=follow_up, headers=as_(KEY_B)).status_code == 404
    assert conversation not in client.get("/users/ann/data", headers=as_(KEY_B)).json()["conversations"]
    # Shop A erases ann: shop B's ann keeps her events, and A's conversation is gone.
    assert client.delete("/users/ann", headers=as_(KEY_A)).status_code == 200
    assert client.get("/users/ann/data", headers=as_(KEY_A)).json()["events"] == []
    assert len(client.get("/users/ann/data", headers=as_(KEY_B)).json()["events"]) == 3


def test_imports_and_training_belong_to_one_shop(two_shops: TestClient, tmp_path: Path) -> None:
    client = two_shops
    upload = tmp_path / "more.jsonl"
    upload.write_text(json.dumps({"product_id": "a-import-1", "title": "Shop A imported running cap"}) + "\n")
    with upload.open("rb") as file:
        started = client.post("/imports", files={"file": ("more.jsonl", file)}, headers=as_(KEY_A))
    assert started.status_code == 202
    job_id = started.json()["job_id"]
    assert wait_for_job(client, job_id, headers=as_(KEY_A))["state"] == "succeeded"
    assert client.get(f"/imports/{job_id}", headers=as_(KEY_B)).status_code == 404
    assert client.get("/products/a-import-1", headers=as_(KEY_A)).status_code == 200
    assert client.get("/products/a-import-1", headers=as_(KEY_B)).status_code == 404
    # Each shop's model state is its own.
    assert client.get("/models/sequence", headers=as_(KEY_A)).json()["version"] is None
    assert client.get("/models/sequence", headers=as_(KEY_B)).json()["version"] is None


def test_a_shop_s_lists_are_those_of_a_deployment_of_its_own(
    two_shops: TestClient, tmp_path: Path, embedder
) -> None:
    settings = make_settings(tmp_path / "alone", api={"keys": {KEY_DEFAULT: ALL}})
    alone = build_service(settings, embedder=embedder)
    with TestClient(create_app(settings, alone), client=LOOPBACK) as client:
        load(client, KEY_DEFAULT, CATALOG_A, SHARED_A, EVENTS_A)
        for user in USERS:
            path = f"/users/{user}/recommendations?k=10"
            shared_deployment = two_shops.get(path, headers=as_(KEY_A)).json()["items"]
            own_deployment = client.get(path, headers=as_(KEY_DEFAULT)).json()["items"]
            assert [item["product_id"] for item in shared_deployment] == [
                item["product_id"] for item in own_deployment
            ]
    alone.close()
