"""The shop's encoder judged on what the shop serves: the training job serves it, trains the parts over
it, compares the served lists on validation users with those before, and where they fall short withdraws
it; the previous encoder and the model version trained over it then serve again, list for list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.models import InteractionEvent
from recommender.service import RecommenderService, build_service, switch_encoder
from recommender.settings import Settings
from recommender.training.served_check import ranking_judged
from recommender.training_job import run_training_job
from tests.conftest import import_demo_catalog, make_settings
from tests.shop_histories import bundle_histories

BASE_MODEL = "all-MiniLM-L6-v2"


def gate_settings(tmp_path: Path, min_gain: float) -> Settings:
    """A short run of each part: these tests follow the path (publish, judge, withdraw), not the quality;
    8 steps already take the held-out pairs from 0 to about 0.1, so the encoder's own gate publishes it."""
    return make_settings(
        tmp_path,
        collab={"epochs": 5, "min_users": 10, "models_path": tmp_path / "models"},
        experimental={"collab": {"hidden": 32, "max_length": 10, "dropout": 0.1}},
        embedding={
            "backend": "torch",
            "fine_tune": True,
            "fine_tune_max_steps": 8,
            "fine_tune_batch_size": 16,
            "fine_tune_learning_rate": 1e-4,
            "fine_tune_query_tolerance": 1.0,  # the search check has its own tests
            "fine_tune_served_min_gain": min_gain,
        },
    )


@pytest.fixture
def shop(tmp_path: Path, embedder) -> Iterator[tuple[RecommenderService, Settings]]:  # type: ignore[no-untyped-def]
    # A gain of a whole NDCG point per user cannot happen: the encoder must be withdrawn.
    settings = gate_settings(tmp_path, min_gain=1.0)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.events.add(bundle_histories(150))
    service.events.add([InteractionEvent(user_id="newcomer", product_id="run-003", type="purchase")])
    yield service, settings
    service.close()  # the job closed it already where it switched encoders


def lists(service: RecommenderService) -> dict[str, list[str]]:
    return {
        user: [item.product_id for item in service.pipeline.for_user(user, 8).items]
        for user in ("shopper-3", "shopper-40", "newcomer")
    }


def test_an_encoder_that_falls_short_on_the_served_lists_is_withdrawn_and_the_old_state_serves(shop) -> None:  # type: ignore[no-untyped-def]
    service, settings = shop
    outcome = run_training_job(service, lambda old: switch_encoder(old, settings))
    try:
        served = outcome.service
        report, training = outcome.encoder, outcome.training
        assert report is not None and training is not None

        # Its own gate published it (held-out pairs, search); the served lists then judged it.
        gate = report.served_gate
        assert gate["users"] >= 10 and gate["required_gain"] == 1.0
        assert {"with_ndcg_at_10", "without_ndcg_at_10", "standard_error"} <= set(gate)
        assert gate["served"] is False and not report.published
        assert report.reason.startswith("the served lists fell short"), report.reason
        stored = served.encoders.latest()
        assert stored is not None and stored.meta["served_gate"] == gate and not stored.meta["published"]
        assert [path.name for path in stored.path.iterdir()] == ["encoder.json"]  # the weights are gone

        # What served before serves again: the base model's vectors, the model trained over them.
        assert served.embedder.model_name == BASE_MODEL and not served.encoder_pending()
        assert served.encoders.current(BASE_MODEL) is None
        current = served.models.current()
        assert current is not None and current.version == training.version == 1
        # Each arm says how its ranking was judged; a learned ranker never on the events it learned from.
        assert gate["ranking"]["without"] == ranking_judged(current)
        assert "in sample" not in gate["ranking"]["with"] + gate["ranking"]["without"]
        restored = lists(served)
        assert all(len(items) == 8 for items in restored.values())
        # The served lists on the validation users are those the gate measured before the encoder.
        figures = served.served_validation()
        assert sum(figures.values()) / len(figures) == pytest.approx(gate["without_ndcg_at_10"], abs=1e-4)
    finally:
        outcome.service.close()

    # Opened afresh over the same folders, the restored state is what a restart serves.
    reopened = build_service(settings)
    try:
        assert reopened.embedder.model_name == BASE_MODEL
        assert reopened.models.current().version == 1  # type: ignore[union-attr]
        assert lists(reopened) == restored
    finally:
        reopened.close()
