from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ids

TEAPOT = {
    "product_id": "tea-1",
    "title": "Glass teapot with infuser",
    "category": "Home > Kitchen > Tea",
    "brand": "Leafy",
    "price": 30,
    "attributes": {"colour": "clear"},
}


def test_create_then_replace_then_get(client: TestClient) -> None:
    created = client.post("/products", json=TEAPOT)
    assert created.status_code == 201 and created.json()["created"] is True
    replaced = client.post("/products", json={**TEAPOT, "price": 25})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    assert client.get("/products/tea-1").json()["product"]["price"] == 25


def test_new_product_is_recommendable_as_soon_as_the_call_returns(client: TestClient) -> None:
    client.post("/products", json=TEAPOT)
    response = client.post("/recommendations", json={"query": "something to brew loose leaf tea"})
    assert ids(response)[0] == "tea-1"
    assert response.json()["items"][0]["product"]["brand"] == "Leafy"


def test_patch_put_and_delete(client: TestClient) -> None:
    client.post("/products", json=TEAPOT)
    patched = client.patch("/products/tea-1", json={"price": 12.5, "attributes": {"size": "1L"}})
    assert patched.status_code == 200
    assert patched.json()["product"]["attributes"] == {"colour": "clear", "size": "1L"}
    assert client.put("/products/tea-1", json={**TEAPOT, "product_id": "other"}).status_code == 422
    assert client.put("/products/tea-1", json={**TEAPOT, "title": "Iron teapot"}).json()["product"][
        "title"
    ] == ("Iron teapot")
    assert client.delete("/products/tea-1").status_code == 204
    missing = client.delete("/products/tea-1")
    assert missing.status_code == 404 and missing.json()["id"] == "tea-1"
    assert client.get("/products/tea-1").status_code == 404


def test_invalid_products_get_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/products", json={"product_id": "x", "title": "", "price": -3})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert ("body", "title") in fields and ("body", "price") in fields
    bad_patch = client.patch("/products/tea-x", json={"price": 1})
    assert bad_patch.status_code == 404
    client.post("/products", json=TEAPOT)
    assert client.patch("/products/tea-1", json={"price": "free"}).status_code == 422


def test_similar_products_and_unknown_product(demo_client: TestClient) -> None:
    response = demo_client.get("/products/kit-005/similar", params={"k": 3})
    assert response.status_code == 200 and response.json()["signal"] == "similar"
    assert all(item["product"]["category"].startswith("Home") for item in response.json()["items"])
    missing = demo_client.get("/products/nope/similar")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
