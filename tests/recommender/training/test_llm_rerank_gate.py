"""The LLM re-rank earns its place like the other optional stages: training measures the configured model's
re-rank on validation users (the API's path, as of the moment before each user's next event) and a version
whose gate refused it serves without it, saying why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.pipeline.request import PipelineRequest
from recommender.service import build_service
from recommender.training.parts import HeldOutView
from recommender.training.stages import gate_stages
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings
from tests.recommender.training.test_training_job import COLLAB, SMALL_MODEL, journey_events

LLM_USERS = 12
# Generous on a loaded 2-core machine, so that every re-rank of the gate is the model's, not a fallback.
BUDGET_SECONDS = 30.0


@pytest.mark.slow  # a training, and 12 re-ranks by the real tiny LLM
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_training_measures_the_configured_llm_rerank_and_a_refused_one_does_not_serve(
    tmp_path: Path, embedder, backend: str, gguf_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        backend,
        collab={**COLLAB, "models_path": tmp_path / "models"},
        pipeline={"ranker_min_users": 20},
        experimental={**SMALL_MODEL, "pipeline": {"llm_gate_users": LLM_USERS}},
        llm={"backend": "local", "model": str(gguf_path), "timeout_seconds": BUDGET_SECONDS},
    )
    service = build_service(settings, embedder=embedder)
    try:
        import_demo_catalog(service)
        service.events.add(journey_events())
        report = service.train()
        gate = report.stages["llm_rerank"]
        assert gate["users"] == LLM_USERS
        assert gate["fell_back"] == 0  # every re-rank was the model's, within the budget
        assert gate["gated"]
        assert gate["difference"] == pytest.approx(gate["with_ndcg_at_10"] - gate["without_ndcg_at_10"])
        assert gate["served"] is not gate["lowers_validation"]
        # The arm without the LLM is the served list as of before each next event: the same figures as the
        # served-lists check (which ranks without the LLM stage) on the same first users.
        served = list(service.served_validation().values())[:LLM_USERS]
        assert gate["without_ndcg_at_10"] == pytest.approx(sum(served) / LLM_USERS, abs=1e-9)

        # A version whose gate refused the re-rank serves the list without it, and says why.
        model = service.models.current()
        assert model is not None
        refused_gate = {**gate, "served": False, "lowers_validation": True}
        refused = dataclasses.replace(
            model,
            parts=dataclasses.replace(
                model.parts, stage_gate={**model.parts.stage_gate, "llm_rerank": refused_gate}
            ),
        )
        request = PipelineRequest(k=5, user_id="shopper-0", rerank=True)
        answer = service.pipeline.run(request, refused)
        assert answer.reranking is not None and answer.reranking["reranked"] is False
        assert answer.reranking["reason"].startswith("LLM re-rank off: validation NDCG@10")
        assert f"training of v{model.version}" in answer.reranking["reason"]
        assert answer.reranking["reason"] in answer.notes
        # With the gate off the settings alone decide: the model re-ranks.
        forced = service.pipeline.configured(gated_stages=[]).run(request, refused)
        assert forced.reranking is not None and forced.reranking["reranked"] is True

        # Not gated, not measured: each user would cost a model call (an endpoint's, perhaps a paid one).
        view = HeldOutView.of(service.events.all_events(), service.settings, 42)
        ungated = gate_stages(
            service.pipeline, view.as_of(model), view.sample, view.stats_as_of, [], 2000, LLM_USERS
        )
        assert "llm_rerank" not in ungated

        with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
            shown = client.get("/models/sequence").json()
        assert shown["stages"]["llm_rerank"]["users"] == LLM_USERS
        assert shown["stages"]["llm_rerank"]["fell_back"] == 0
    finally:
        service.close()
