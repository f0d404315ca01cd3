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


def test_an_id_with_a_slash_is_reachable_by_every_route(client: TestClient) -> None:
    sku = {**TEAPOT, "product_id": "SKU/123"}
    assert client.post("/products", json=sku).status_code == 201
    for path in ("/products/SKU%2F123", "/products/SKU/123"):
        assert client.get(path).json()["product"]["product_id"] == "SKU/123", path
    assert client.patch("/products/SKU%2F123", json={"price": 9}).json()["product"]["price"] == 9
    assert client.put("/products/SKU%2F123", json={**sku, "title": "Clay teapot"}).status_code == 200
    similar = client.get("/products/SKU%2F123/similar", params={"k": 3})
    assert similar.status_code == 200 and "SKU/123" not in ids(similar)
    assert client.delete("/products/SKU%2F123").status_code == 204
    assert client.get("/products/SKU%2F123").status_code == 404


def test_users_with_a_slash_in_their_id_are_reachable(client: TestClient) -> None:
    client.post("/products", json=TEAPOT)
    event = {"user_id": "shop/42", "product_id": "tea-1", "type": "purchase"}
    assert client.post("/events", json={"events": [event]}).json()["accepted"] == 1
    assert client.get("/users/shop%2F42/recommendations").status_code == 200
    assert len(client.get("/users/shop%2F42/data").json()["events"]) == 1
    assert client.delete("/users/shop%2F42").json()["events"] == 1


def test_not_a_number_and_infinity_are_422_not_500(client: TestClient) -> None:
    for body in (
        '{"product_id": "n", "title": "Teapot", "price": NaN}',
        '{"product_id": "n", "title": "Teapot", "price": Infinity}',
        '{"product_id": "n", "title": "Teapot", "attributes": {"weight": -Infinity}}',
    ):
        response = client.post("/products", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (body, response.text)
    client.post("/products", json=TEAPOT)
    patched = client.patch(
        "/products/tea-1", content='{"price": NaN}', headers={"Content-Type": "application/json"}
    )
    assert patched.status_code == 422
    query = client.post(
        "/recommendations",
        content='{"query": "tea", "filters": {"price_max": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert query.status_code == 422
    assert client.get("/products/tea-1").json()["product"]["price"] == 30


def test_attributes_may_hold_several_values_and_filters_match_any(client: TestClient) -> None:
    shirt = {
        "product_id": "shirt-1",
        "title": "Linen shirt",
        "category": "Clothing > Shirts",
        "attributes": {"sizes": ["M", "XL", "XXL"], "colour": "white"},
    }
    assert client.post("/products", json=shirt).status_code == 201
    assert client.post("/products", json={**TEAPOT, "attributes": {"sizes": ["S"]}}).status_code == 201
    assert client.get("/products/shirt-1").json()["product"]["attributes"]["sizes"] == ["M", "XL", "XXL"]
    for wanted, expected in ((["xl"], ["shirt-1"]), (["XXL", "S"], ["shirt-1", "tea-1"]), ("L", [])):
        response = client.post(
            "/recommendations", json={"query": "something", "filters": {"attributes": {"sizes": wanted}}}
        )
        assert sorted(ids(response)) == expected, wanted
    too_many = {**shirt, "attributes": {"sizes": [str(size) for size in range(101)]}}
    assert client.post("/products", json=too_many).status_code == 422


def test_a_list_of_products_is_answered_item_by_item(client: TestClient) -> None:
    client.post("/products", json=TEAPOT)
    response = client.post(
        "/products",
        json=[
            {**TEAPOT, "price": 20},
            {"product_id": "mug-1", "title": "Stoneware mug", "attributes": {"colours": ["blue", "green"]}},
            {"product_id": "bad", "title": "", "price": 3},
            {"product_id": "mug-1", "title": "Second mug with the same id"},
            "not an object",
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["replaced"], body["rejected"]) == (1, 1, 3)
    assert [(item["index"], item["status"], item["field"]) for item in body["items"]] == [
        (0, "replaced", None),
        (1, "created", None),
        (2, "rejected", "title"),
        (3, "rejected", "product_id"),
        (4, "rejected", None),
    ]
    assert client.get("/products/tea-1").json()["product"]["price"] == 20
    assert client.get("/products/mug-1").json()["product"]["title"] == "Stoneware mug"
    assert client.get("/products/bad").status_code == 404
    too_many = [{"product_id": f"p{index}", "title": "t"} for index in range(1001)]
    assert client.post("/products", json=too_many).status_code == 422


def test_ids_no_url_could_reach_are_refused(client: TestClient) -> None:
    for product_id in ("..", "a/../b", "./a", "a\u0000b", "tab\there"):
        response = client.post("/products", json={**TEAPOT, "product_id": product_id})
        assert response.status_code == 422, product_id
    event = {"user_id": "a/..", "product_id": "tea-1", "type": "view"}
    assert client.post("/events", json={"events": [event]}).json()["rejected"][0]["field"] == "user_id"
    assert client.post("/products", json={**TEAPOT, "product_id": "v1.2/a..b"}).status_code == 201
