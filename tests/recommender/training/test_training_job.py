"""The trained sequence model in service: trained from stored events, published into the collection,
fused at request time, swapped atomically."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.errors import InvalidInputError
from recommender.models import InteractionEvent
from recommender.pipeline.registry import SLOTS
from recommender.service import RecommenderService, build_service
from recommender.training.parts import HeldOutView
from recommender.training.stages import judging_models
from recommender.training.user_split import judges
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings

# Shopping journeys that cross categories: text similarity alone cannot know that runners buy blenders.
JOURNEYS = [
    ["run-001", "kit-010", "boo-002", "gar-005"],
    ["bea-001", "ele-006", "gar-009", "boo-004"],
    ["ele-005", "bea-008", "run-009", "kit-004"],
]
COLLAB = {"epochs": 150, "min_users": 10}
# A small model for 12 products: the architecture is among the experimental knobs.
SMALL_MODEL = {"collab": {"hidden": 32, "max_length": 10, "dropout": 0.1}}


def journey_events(users: int = 60) -> list[InteractionEvent]:
    rng = random.Random(3)
    start = datetime.now(UTC) - timedelta(days=1)
    events = []
    for user in range(users):
        journey = JOURNEYS[user % len(JOURNEYS)]
        for step, product in enumerate(journey * 2):
            events.append(
                InteractionEvent(
                    user_id=f"shopper-{user}",
                    product_id=product,
                    type=rng.choice(["view", "click", "purchase"]),
                    timestamp=start + timedelta(minutes=user * 10 + step),
                )
            )
    return events


@pytest.fixture
def trained_service(tmp_path: Path, embedder, backend: str) -> RecommenderService:
    settings = make_settings(
        tmp_path, backend, collab={**COLLAB, "models_path": tmp_path / "models"}, experimental=SMALL_MODEL
    )
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.events.add(journey_events())
    yield service
    service.close()


def ids(result) -> list[str]:
    return [item.product_id for item in result.items]


def test_a_trained_model_changes_what_a_user_with_history_gets(trained_service: RecommenderService) -> None:
    service = trained_service
    service.events.add([InteractionEvent(user_id="newcomer", product_id="run-001", type="purchase")])
    before = service.pipeline.for_user("newcomer", 5)
    assert before.signal.value == "profile" and "kit-010" not in ids(before)

    report = service.train()
    assert (report.version, report.slot, report.items) == (1, SLOTS[0], 12)

    after = service.pipeline.for_user("newcomer", 5)
    assert after.signal.value == "hybrid" and "v1" in after.notes[0]
    assert "kit-010" in ids(after)[:3]  # the next step of the journey, from another category
    # Products the model never saw are still reachable through the text list.
    assert set(ids(service.pipeline.for_user("newcomer", 20))) - {p for j in JOURNEYS for p in j}


def test_a_new_version_goes_to_the_other_slot_and_switches_atomically(
    trained_service: RecommenderService,
) -> None:
    service = trained_service
    service.train()
    assert service.models.next_version() == (2, SLOTS[1])
    service.models.save(2, SLOTS[1], service.models.current().model, service.models.current().product_ids)
    assert service.models.current().version == 1  # saved but not active: v1 still serves
    report = service.train()
    assert (report.version, report.slot) == (2, SLOTS[1])
    assert service.models.current().version == 2


def test_training_needs_enough_users(tmp_path: Path, embedder) -> None:
    service = build_service(
        make_settings(tmp_path, collab={**COLLAB, "models_path": tmp_path / "m"}, experimental=SMALL_MODEL),
        embedder=embedder,
    )
    try:
        import_demo_catalog(service)
        service.events.add(journey_events(users=3))
        with pytest.raises(InvalidInputError, match="at least 10 users"):
            service.train()
    finally:
        service.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_training_through_the_api_and_the_in_process_worker(trained_service: RecommenderService) -> None:
    with TestClient(create_app(trained_service.settings, trained_service), client=LOOPBACK) as client:
        assert client.get("/models/sequence").json()["version"] is None
        assert client.post("/models/sequence/train").status_code == 202
        deadline = time.monotonic() + 120
        while client.get("/models/sequence").json()["version"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/models/sequence").json()["version"] == 1
        response = client.get("/users/shopper-0/recommendations", params={"k": 5})
        assert response.json()["signal"] == "hybrid"


def test_the_ranker_is_published_with_the_model_and_serves(trained_service: RecommenderService) -> None:
    service = trained_service
    service.settings.pipeline = service.settings.pipeline.model_copy(update={"ranker_min_users": 20})
    # On these journeys the sequence model's own order alone is best (the test below): here only rank fusion
    # competes with the learned ranker, so that the ranker's publication is what is checked.
    experiments = service.settings.experimental
    service.settings.experimental = experiments.model_copy(
        update={"pipeline": experiments.pipeline.model_copy(update={"ranker_source_orders": False})}
    )
    # Six shoppers whose next product is one the catalog lacks: no source can return it.
    start = datetime.now(UTC) - timedelta(hours=2)
    service.events.add(
        [
            InteractionEvent(
                user_id=f"elsewhere-{user}",
                product_id=product,
                type="view",
                timestamp=start + timedelta(minutes=step),
            )
            for user in range(6)
            for step, product in enumerate([*JOURNEYS[0], f"not-in-catalog-{user}"])
        ]
    )
    report = service.train()
    assert report.ranker.startswith("learned ranker from")
    published = service.models.current()
    assert published is not None and published.parts.ranker is not None
    meta = published.parts.ranker.meta
    assert meta["sampled_users"] == 66 and meta["users"] <= 60
    assert meta["candidate_recall"] == pytest.approx(meta["users"] / 66)
    # The sequence model's epoch was chosen on some users' held-out products; the gate judged the others.
    shoppers = [f"shopper-{user}" for user in range(60)] + [f"elsewhere-{user}" for user in range(6)]
    assert published.training["choosing_users_apart"] and report.ranker_validation["judges_apart"]
    assert published.training["choosing_users"] == sum(not judges(user, 0.5) for user in shoppers)
    assert report.ranker_validation["trained_users"] == meta["users"] > report.ranker_validation["users"]
    assert published.parts.ranker.compiled  # its trees as machine code (the compiled-ranker extra)
    # The fold rankers' mean serves: no ranker refitted on every user.
    assert published.parts.ranker.fold_mean and not (service.models.directory(1) / "ranker.txt").exists()
    # The gate's cross-fitted rankers are kept with it: each user it trained on was held out by one fold,
    # and every gate judges that user's list with the ranker fitted without them.
    ranker = published.parts.ranker
    assert ranker.cross_fitted
    folds = json.loads((service.models.directory(1) / "ranker_folds.json").read_text())["users"]
    trained_on = {user for fold in folds for user in fold}
    assert len(folds) == 5 and sum(map(len, folds)) == len(trained_on) == meta["users"]
    sample = HeldOutView.of(service.events.all_events(), service.settings, 42).sample
    judging = judging_models(published, sample)
    for item, model in zip(sample, judging, strict=True):
        if item.user_id not in trained_on:  # the ranker never saw them: judged by the published one
            assert model is published
            continue
        fold = next(index for index, users in enumerate(folds) if item.user_id in users)
        assert model.parts.ranker is ranker.held_out_for(item.user_id)
        assert (
            model.parts.ranker.booster.model_to_string()
            == lightgbm.Booster(
                model_file=str(service.models.directory(1) / f"ranker-fold-{fold}.txt")
            ).model_to_string()
        )
        assert model.parts.ranker is not ranker and not model.parts.ranker.fold_mean
    assert len({id(model) for model in judging} - {id(published)}) == 5  # one model per fold
    importance = published.parts.ranker.importance()
    assert abs(sum(importance.values()) - 1.0) < 1e-6 and max(importance.values()) > 0
    result = service.pipeline.for_user("shopper-0", 5)
    assert any("learned ranker of v1" in note for note in result.notes)
    # The next version has its own ranker; the pointer switches both at once.
    service.train()
    assert service.models.current().version == 2
    assert (service.models.directory(2) / "ranker_folds.json").exists()
    assert any("v2" in note for note in service.pipeline.for_user("shopper-0", 5).notes)
    # A ranker trained on other item features is not used (its attribute columns would read nothing).
    other_features = service.pipeline.configured(item_features=["price"])
    notes = other_features.for_user("shopper-0", 5).notes
    assert any(note.startswith("rank fusion") for note in notes)
    assert not any(note.startswith("ranked by the learned ranker") for note in notes)


def test_where_the_sequence_models_own_order_is_best_it_serves_and_says_why(
    trained_service: RecommenderService,
) -> None:
    """On these journeys the sequence model alone finds every validation user's next product first: the
    learned ranker cannot beat that, so the gate (where by default the sources' own orders compete) serves
    collab's own order (not fusion, which mixes in text and popularity), and the notes and the report give
    the figures."""
    service = trained_service
    report = service.train()
    gate = report.ranker_validation
    assert gate["serves"] == "collab" and not gate["published"]
    assert gate["sources"]["collab"] == max(gate["sources"].values()) > gate["fusion_ndcg_at_10"]
    assert gate["sources"]["collab"] >= gate["ranker_ndcg_at_10"]
    assert report.ranker.startswith("the collab source's own order serves: the learned ranker scored")
    published = service.models.current()
    assert published.parts.ranker is None and published.parts.served_source == "collab"
    assert not (service.models.directory(published.version) / "ranker.txt").exists()
    assert not (service.models.directory(published.version) / "ranker_folds.json").exists()

    plain = {"diversity": "none", "new_product_slots": 0}
    served = service.pipeline.configured(**plain).for_user("shopper-0", 8)
    alone = service.pipeline.configured(**plain, sources=["collab"], ranker="fusion").for_user("shopper-0", 8)
    fusion = service.pipeline.configured(**plain, ranker="fusion").for_user("shopper-0", 8)
    assert [item.product_id for item in served.items] == [item.product_id for item in alone.items]
    assert [item.product_id for item in served.items] != [item.product_id for item in fusion.items]
    assert any(
        note.startswith("ranked by the collab source's own order: the collab source's own order serves")
        for note in served.notes
    )
    # Rank fusion configured: fusion ranks, whatever the gate chose.
    assert not any(note.startswith("ranked by the collab") for note in fusion.notes)


def test_too_few_users_for_a_ranker_falls_back_to_fusion_and_says_so(
    trained_service: RecommenderService,
) -> None:
    service = trained_service
    service.settings.pipeline = service.settings.pipeline.model_copy(update={"ranker_min_users": 1000})
    report = service.train()
    assert "too few users" in report.ranker
    assert service.models.current().parts.ranker is None
    result = service.pipeline.for_user("shopper-0", 5)
    assert result.signal.value == "hybrid"
    assert any(note.startswith("rank fusion: too few users") for note in result.notes)


def test_training_rebuilds_the_vector_index_and_closing_waits_for_it(
    trained_service: RecommenderService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training rewrites every product's learned vector; a large embedded catalog re-indexes afterwards
    (here the threshold is lowered to the demo catalog), in the background, and close() waits for it."""
    import threading

    monkeypatch.setattr("recommender.catalog.OPTIMIZE_THRESHOLD_POINTS", 1)
    store = trained_service.products
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []
    original = store.optimize

    def slow_optimize() -> None:
        started.set()
        release.wait(10)
        original()
        finished.append(True)

    monkeypatch.setattr(store, "optimize", slow_optimize)
    trained_service.train()
    assert started.wait(10) and not finished  # running off the request path
    assert trained_service.pipeline.for_user("shopper-1", 5).items  # serving meanwhile
    closer = threading.Thread(target=trained_service.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive()  # close() waits for the index build
    release.set()
    closer.join(30)
    assert finished == [True] and not closer.is_alive()


def test_new_products_take_a_place_in_a_share_of_the_lists_and_more_places_when_many(
    trained_service: RecommenderService,
) -> None:
    service = trained_service
    service.train()
    tower = service.models.current().parts.tower
    assert tower is not None and tower.reference_states is not None and len(tower.cold_ids) == 48
    shoppers = [f"shopper-{index}" for index in range(60)]

    def keep_new(kept: set[str]) -> None:
        """Every other product gets an event after training."""
        service.events.add(
            [
                InteractionEvent(user_id="stocktaker", product_id=pid, type="view")
                for pid in tower.product_ids
                if pid not in kept
            ]
        )
        # The lists read the statistics with that batch in them: on a loaded machine the recomputation
        # would otherwise run in the background while the statistics without it serve.
        service.pipeline.settle_statistics()

    # A new collection: 20 of 60 products without events, each in 15% of the lists, is 3 places in
    # every list; with the places bounded at one, one place.
    still_new = set(sorted(tower.cold_ids)[:20])
    keep_new(still_new)

    def new_in_each_list(pipeline) -> list[int]:
        with_events = pipeline.item_stats().users
        return [sum(pid not in with_events for pid in ids(pipeline.for_user(user, 10))) for user in shoppers]

    grown = new_in_each_list(service.pipeline.configured(new_product_list_share=0.15))
    bounded = new_in_each_list(
        service.pipeline.configured(new_product_list_share=0.15, new_product_slots_max=1)
    )
    assert min(grown) >= 3 and min(bounded) >= 1
    assert sum(grown) - sum(bounded) >= 60  # about two more places in every list

    still_new = set(sorted(tower.cold_ids)[:2])  # now 2 of 60 products are still without events
    keep_new(still_new)

    def lists_with_a_new_product(pipeline) -> int:
        return sum(bool(set(ids(pipeline.for_user(user, 10))) & still_new) for user in shoppers)

    every_list = lists_with_a_new_product(service.pipeline.configured(new_product_exposure="every_list"))
    assert every_list == 60
    # Each new product in about 15% of the lists: two take a place in about 30% of them.
    shared = lists_with_a_new_product(service.pipeline.configured(new_product_list_share=0.15))
    assert 5 <= shared <= 40
    assert lists_with_a_new_product(service.pipeline.configured(new_product_list_share=0.5)) == 60


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_an_optional_stage_that_lowers_validation_is_switched_off_by_the_gate(
    tmp_path: Path, embedder, backend: str
) -> None:
    # Every place of the first page kept for products without events: the held-out next products (which
    # have events) can never be in it, so validation must say the stage costs. The shoppers view the
    # journeys' products in random order, so their next product is not always the ranker's first.
    pipeline = {
        "ranker_min_users": 20,
        "new_product_slots": 10,
        "gated_stages": ["new_product_places", "diversity"],
    }
    experimental = {
        **SMALL_MODEL,
        "pipeline": {"new_product_exposure": "every_list", "new_product_page": 10},
    }
    settings = make_settings(
        tmp_path,
        backend,
        collab={**COLLAB, "models_path": tmp_path / "models"},
        pipeline=pipeline,
        experimental=experimental,
    )
    service = build_service(settings, embedder=embedder)
    try:
        import_demo_catalog(service)
        rng = random.Random(5)
        journey_products = sorted({product for journey in JOURNEYS for product in journey})
        start = datetime.now(UTC) - timedelta(days=1)
        service.events.add(
            [
                InteractionEvent(
                    user_id=f"shopper-{user}",
                    product_id=product,
                    type="view",
                    timestamp=start + timedelta(minutes=user * 10 + step),
                )
                for user in range(60)
                for step, product in enumerate(rng.sample(journey_products, 6))
            ]
        )
        report = service.train()
        gate = report.stages["new_product_places"]
        assert gate["users"] == 60
        assert gate["with_ndcg_at_10"] < gate["without_ndcg_at_10"]
        assert gate["lowers_validation"] and not gate["served"]
        assert "diversity" not in report.stages  # not switched on, so not measured
        served = service.pipeline.for_user("shopper-0", 10)
        assert any(note.startswith("new product places off") for note in served.notes)
        assert set(ids(served)) & set(journey_products)
        # With the gate off the settings alone decide: the whole page goes to products without events.
        forced = service.pipeline.configured(gated_stages=[]).for_user("shopper-0", 10)
        assert not set(ids(forced)) & set(journey_products)
        with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
            shown = client.get("/models/sequence").json()
        assert shown["stages"]["new_product_places"]["served"] is False
        assert shown["ranker_validation"]["fusion_ndcg_at_10"] > 0
        assert shown["training"]["best_epoch"] == report.best_epoch
        assert len(shown["training"]["validation_curve"]) >= 1
    finally:
        service.close()
