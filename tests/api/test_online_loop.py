"""The online loop through the real service: every list has an id and positions, events are attributed
to lists (SQLite and PostgreSQL), merchandising rules hold in every list of their placement, experiments
split users stably and report per arm; bad input is refused whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.demo import demo_events
from recommender.service import build_service
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings
from tests.postgres import fresh_postgres_database

SHOPPERS = ["demo-runner", "demo-cook", "new-visitor"]


def open_client(root: Path, embedder, **sections: dict) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    service = build_service(
        make_settings(root, online={"rules_refresh_seconds": 0}, **sections), embedder=embedder
    )
    import_demo_catalog(service)
    service.events.add(demo_events())
    with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
        yield client
    service.close()


@pytest.fixture
def shop(tmp_path: Path, embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from open_client(tmp_path, embedder)


def items(answer) -> list[str]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.text
    return [item["product_id"] for item in answer.json()["items"]]


def test_every_list_has_an_id_and_positions_and_is_kept_with_the_user(shop: TestClient) -> None:
    personal = shop.get("/users/demo-runner/recommendations?k=5&placement=home").json()
    posted = shop.post("/recommendations", json={"query": "kettle", "k": 3}).json()
    similar = shop.get("/products/run-001/similar?k=4&user_id=demo-runner").json()
    ids = {personal["recommendation_id"], posted["recommendation_id"], similar["recommendation_id"]}
    assert None not in ids and len(ids) == 3
    assert (
        personal["placement"] == "home"
        and posted["placement"] == "default"
        and similar["placement"] == "product"
    )
    for answer in (personal, posted, similar):
        assert [item["position"] for item in answer["items"]] == list(range(1, len(answer["items"]) + 1))
    exported = shop.get("/users/demo-runner/data").json()["served_lists"]
    shown = {entry["recommendation_id"]: entry for entry in exported}
    assert set(shown) == {personal["recommendation_id"], similar["recommendation_id"]}
    assert shown[personal["recommendation_id"]]["product_ids"] == items_of(personal)
    erased = shop.delete("/users/demo-runner").json()
    assert erased["served_lists"] == 2
    assert shop.get("/users/demo-runner/data").json()["served_lists"] == []


def items_of(answer: dict) -> list[str]:
    return [item["product_id"] for item in answer["items"]]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_events_are_attributed_to_the_list_they_came_from(tmp_path: Path, embedder, database: str) -> None:
    if database == "postgresql":
        with fresh_postgres_database() as url:
            for client in open_client(tmp_path, embedder, events={"url": url}):
                check_attribution(client)
        return
    for client in open_client(tmp_path, embedder):
        check_attribution(client)


def check_attribution(client: TestClient) -> None:
    shown = client.get("/users/demo-cook/recommendations?k=5&placement=home").json()
    listed = items_of(shown)
    clicked, bought, elsewhere = listed[1], listed[2], "gar-010"
    events = [
        {
            "user_id": "demo-cook",
            "product_id": clicked,
            "type": "click",
            "recommendation_id": shown["recommendation_id"],
        },
        {
            "user_id": "demo-cook",
            "product_id": bought,
            "type": "purchase",
        },  # no id: the last list that showed it
        {"user_id": "demo-cook", "product_id": elsewhere, "type": "purchase"},  # never shown: not attributed
        {
            "user_id": "demo-cook",
            "product_id": clicked,
            "type": "click",
            "recommendation_id": "not-a-list-id",
        },
    ]
    answer = client.post("/events", json={"events": events}).json()
    assert answer["accepted"] == 4
    assert answer["attributed"] == {"explicit": 1, "last_touch": 1}
    assert answer["unknown_recommendation_ids"] == ["not-a-list-id"]
    # A purchase from before the list was served is not given to it.
    early = {
        "user_id": "demo-cook",
        "product_id": bought,
        "type": "purchase",
        "timestamp": "2020-01-01T00:00:00Z",
    }
    assert client.post("/events", json={"events": [early]}).json()["attributed"] == {}


def test_a_search_passes_its_query_to_the_events_that_came_from_it(shop: TestClient) -> None:
    """The shop's encoder learns search from (query, chosen product) pairs: a list served for a query
    keeps it, and a click (named list) or a purchase (last touch) from that list carries it; an event of
    the shop's own search brings its query; a browse list's events carry none. The shopper's export shows
    the searches, and erasure removes them."""
    searched = shop.post("/recommendations", json={"query": "Kettle", "k": 5, "user_id": "demo-cook"}).json()
    browsed = shop.get("/users/demo-cook/recommendations?k=5").json()
    found = items_of(searched)
    browsed_only = next(pid for pid in items_of(browsed) if pid not in found)
    events = [
        {
            "user_id": "demo-cook",
            "product_id": found[0],
            "type": "click",
            "recommendation_id": searched["recommendation_id"],
        },
        {"user_id": "demo-cook", "product_id": found[1], "type": "purchase"},  # last touch: the search
        {
            "user_id": "demo-cook",
            "product_id": browsed_only,
            "type": "click",
            "recommendation_id": browsed["recommendation_id"],
        },
        {"user_id": "demo-runner", "product_id": "run-001", "type": "add_to_cart", "query": "trail shoes"},
        {"user_id": "demo-runner", "product_id": "run-002", "type": "view", "query": "trail shoes"},
    ]
    answer = shop.post("/events", json={"events": events})
    assert answer.status_code == 202, answer.text
    assert answer.json()["attributed"] == {"explicit": 2, "last_touch": 1}
    service = shop.app.state.recommender.service
    choices = {
        (choice.user_id, choice.query, choice.product_id) for choice in service.events.search_choices(100)
    }
    # The view is not a choice; the browse list's click has no query.
    assert choices == {
        ("demo-cook", "Kettle", found[0]),
        ("demo-cook", "Kettle", found[1]),
        ("demo-runner", "trail shoes", "run-001"),
    }
    exported = shop.get("/users/demo-cook/data").json()
    assert {(entry["query"], entry["product_id"]) for entry in exported["searches"]} == {
        ("Kettle", found[0]),
        ("Kettle", found[1]),
    }
    assert {entry["query"] for entry in exported["served_lists"]} == {"Kettle", None}
    shop.delete("/users/demo-cook")
    assert {choice.user_id for choice in service.events.search_choices(100)} == {"demo-runner"}
    assert shop.get("/users/demo-cook/data").json()["searches"] == []


def test_a_pin_holds_its_place_while_live_and_a_block_shows_nowhere(shop: TestClient) -> None:
    pin = shop.post(
        "/rules", json={"placement": "home", "action": "pin", "product_id": "bea-003", "position": 1}
    )
    assert pin.status_code == 201
    block = shop.post("/rules", json={"action": "block", "product_id": "kit-001"})
    assert block.status_code == 201
    for user in SHOPPERS:
        home = shop.get(f"/users/{user}/recommendations?k=6&placement=home").json()
        assert home["items"][0]["product_id"] == "bea-003"
        assert home["items"][0]["signal"] == "pinned" and home["items"][0]["rule"].startswith("pin rule")
        cart = shop.get(f"/users/{user}/recommendations?k=6&placement=cart").json()
        assert all(item["signal"] != "pinned" for item in cart["items"])  # another placement
        for answer in (
            shop.get(f"/users/{user}/recommendations?k=60&placement=home"),
            shop.post("/recommendations", json={"query": "Ferro cast iron skillet", "k": 60}),
            shop.get("/products/kit-003/similar?k=60"),
        ):
            assert "kit-001" not in items(answer)
    # Ended: nowhere pinned after it.
    rule_id = pin.json()["rule_id"]
    assert shop.delete(f"/rules/{rule_id}").status_code == 204
    ended = {
        "placement": "home",
        "action": "pin",
        "product_id": "bea-003",
        "position": 1,
        "ends_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    assert shop.post("/rules", json=ended).status_code == 201
    for user in SHOPPERS:
        home = shop.get(f"/users/{user}/recommendations?k=6&placement=home").json()
        assert all(item["signal"] != "pinned" for item in home["items"])
    assert [rule["action"] for rule in shop.get("/rules").json()] == ["block", "pin"]


def test_a_boost_moves_matching_products_up(shop: TestClient) -> None:
    before = items(shop.get("/users/demo-runner/recommendations?k=40&placement=home"))
    kitchen = [product for product in before if product.startswith("kit-")]
    assert kitchen, before
    rule = {"placement": "home", "action": "boost", "filter": {"category": "Home > Kitchen"}, "factor": 10}
    assert shop.post("/rules", json=rule).status_code == 201
    after = shop.get("/users/demo-runner/recommendations?k=40&placement=home").json()
    moved = [item for item in after["items"] if item["product_id"].startswith("kit-")]
    assert items_of(after).index(kitchen[0]) < before.index(kitchen[0])
    assert all(item["rule"].startswith("boost rule") for item in moved)


def test_bad_rules_are_refused_and_nothing_is_created(shop: TestClient) -> None:
    bad = [
        {"placement": "home", "action": "pin", "product_id": "no-such-product", "position": 1},
        {"placement": "home", "action": "pin", "product_id": "run-001"},
        {"placement": "home", "action": "boost", "filter": {"brands": ["X"]}},
        {"placement": "home", "action": "bury", "filter": {"brands": ["X"]}, "factor": 0.5},
        {"placement": "home", "action": "block"},
        {
            "action": "pin",
            "product_id": "run-001",
            "position": 1,
            "starts_at": "2030-01-02T00:00:00Z",
            "ends_at": "2030-01-01T00:00:00Z",
        },
    ]
    for rule in bad:
        answer = shop.post("/rules", json=rule)
        assert answer.status_code == 422, (rule, answer.text)
    assert "no-such-product" in str(shop.post("/rules", json=bad[0]).json()["detail"])
    assert shop.get("/rules").json() == []


def test_an_experiment_splits_users_stably_and_reports_per_arm(shop: TestClient) -> None:
    body = {
        "name": "ranker-test",
        "placement": "home",
        "arms": {"control": {}, "popular": {"variant": "popular"}},
        "traffic": {"control": 50, "popular": 50},
    }
    assert shop.post("/experiments", json=body).status_code == 201
    arms = {}
    for number in range(40):
        user = f"visitor-{number}"
        first = shop.get(f"/users/{user}/recommendations?k=5&placement=home").json()
        again = shop.get(f"/users/{user}/recommendations?k=5&placement=home").json()
        assert first["experiment"] == "ranker-test" and first["arm"] == again["arm"]
        arms[user] = first
        if number % 4 == 0:
            event = {
                "user_id": user,
                "product_id": first["items"][0]["product_id"],
                "type": "click",
                "recommendation_id": first["recommendation_id"],
            }
            shop.post("/events", json={"events": [event]})
    assert {answer["arm"] for answer in arms.values()} == {"control", "popular"}
    other = shop.get("/users/visitor-1/recommendations?k=5&placement=cart").json()
    assert other["experiment"] is None  # another placement
    report = shop.get("/experiments/ranker-test/report").json()
    by_arm = {arm["arm"]: arm for arm in report["arms"]}
    assert sum(arm["lists"] for arm in by_arm.values()) == 80
    assert sum(arm["clicks"] for arm in by_arm.values()) == 10
    assert report["attribution"] == {"explicit": 10}
    assert by_arm["control"]["difference"] is None and "ctr" in by_arm["popular"]["difference"]
    low, high = by_arm["popular"]["ctr_ci"]
    assert low <= by_arm["popular"]["ctr"] <= high
    assert shop.post("/experiments/ranker-test/stop").json()["state"] == "stopped"
    assert shop.get("/users/visitor-1/recommendations?k=5&placement=home").json()["experiment"] is None


def test_bad_experiments_are_refused_and_nothing_is_half_created(shop: TestClient) -> None:
    good = {
        "name": "a",
        "placement": "home",
        "arms": {"control": {}, "b": {"diversity": "mmr"}},
        "traffic": {"control": 50, "b": 50},
    }
    bad = [
        {**good, "arms": {"control": {}, "b": {"variant": "no-such-variant"}}},
        {**good, "traffic": {"control": 50, "b": 40}},
        {**good, "traffic": {"control": 50, "c": 50}},
        {**good, "arms": {"control": {}, "b": {"not_a_setting": 1}}},
        {**good, "arms": {"control": {}}, "traffic": {"control": 100}},
    ]
    for body in bad:
        assert shop.post("/experiments", json=body).status_code == 422, body
    assert shop.get("/experiments").json() == []
    assert shop.post("/experiments", json=good).status_code == 201
    overlapping = {**good, "name": "b", "placement": None}
    conflict = shop.post("/experiments", json=overlapping)
    assert conflict.status_code == 409 and "one running experiment per placement" in conflict.json()["detail"]
    assert shop.post("/experiments", json=good).status_code == 409  # the name is taken
    assert [experiment["name"] for experiment in shop.get("/experiments").json()] == ["a"]


def test_the_experiments_command_lists_reports_and_stops(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app as cli
    from recommender.online.experiments import ExperimentIn
    from recommender.pipeline.request import PipelineRequest

    settings = make_settings(tmp_path)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.loop.start_experiment(
        ExperimentIn(
            name="cli-test",
            arms={"control": {}, "fusion": {"variant": "fusion"}},
            traffic={"control": 50, "fusion": 50},
        )
    )
    for number in range(12):
        service.online.run(PipelineRequest(k=5, user_id=f"visitor-{number}"))
    service.close()
    monkeypatch.setenv("RECO_QDRANT__PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("RECO_EVENTS__URL", settings.events.url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["experiments", "list"])
    assert listed.exit_code == 0 and "cli-test" in listed.output and "running" in listed.output
    reported = runner.invoke(cli, ["experiments", "report", "cli-test"])
    assert reported.exit_code == 0, reported.output
    assert "control" in reported.output and "fusion" in reported.output
    assert runner.invoke(cli, ["experiments", "stop", "cli-test"]).exit_code == 0
    assert "stopped" in runner.invoke(cli, ["experiments", "list"]).output


def test_a_blocked_product_is_never_a_chat_alternative(shop: TestClient) -> None:
    question = {"product_id": "run-003", "message": "anything cheaper?"}
    before = [item["product_id"] for item in shop.post("/chat", json=question).json()["alternatives"]]
    assert before
    assert shop.post("/rules", json={"action": "block", "product_id": before[0]}).status_code == 201
    after = [item["product_id"] for item in shop.post("/chat", json=question).json()["alternatives"]]
    assert after and before[0] not in after
