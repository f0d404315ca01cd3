"""The training job, for every caller (the Celery task, ``recommender train``, the evaluation): the shop's
encoder first where it is switched on, then the sequence model and the pipeline's parts.

The shop's encoder changes every stage at once (text source, item tower, ranker features), so besides its
own gate (held-out pairs and search, ``training.encoder``) it is judged on what the shop serves: the served
lists' NDCG@10 on the training job's validation users with the encoder serving and without it, the same
sequence model under both. Where it lowers them beyond noise it is withdrawn, the previous encoder serves
again and so does the model version trained over it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from recommender.service import RecommenderService
from recommender.training.encoder import EncoderReport
from recommender.training.job import TrainingReport
from recommender.training.served_check import compare_served, ranking_judged

logger = logging.getLogger(__name__)
Reopen = Callable[[RecommenderService], RecommenderService]


@dataclass
class JobOutcome:
    service: RecommenderService  # the one serving afterwards (another, when the encoder switched)
    encoder: EncoderReport | None = None
    training: TrainingReport | None = None


@dataclass
class EncoderStep:
    service: RecommenderService  # the one serving afterwards
    report: EncoderReport
    training: TrainingReport | None = None  # the parts trained over the shop's encoder, where it serves


def serve_shop_encoder(
    service: RecommenderService,
    reopen: Reopen,
    seed: int = 42,
    on_candidate: Callable[[RecommenderService], None] | None = None,
) -> EncoderStep:
    """Fine-tune the encoder; where its own gate publishes it, serve it (``reopen``: the rebuild path) and
    train the parts again over the serving sequence model; then compare the served lists on validation
    users with those of ``service`` as it served before. ``on_candidate`` sees the service with the new
    encoder before that decision is applied (the evaluation measures it there). Needs the training lease."""
    serving_model = service.models.current()
    previous = service.encoders.current(service.settings.embedding.model)
    before = service.served_validation(seed)
    report = service.fine_tune_encoder_now(seed)
    if not report.published:
        return EncoderStep(service, report)
    service = reopen(service)
    if serving_model is None:
        note = "no trained model served before: the served lists were not compared"
        return EncoderStep(service, _with_gate(service, report, {"note": note}))
    training = service.train_now(seed, reuse_sequence=True)
    gate = compare_served(service.served_validation(seed), before)
    gate["ranking"] = {
        "with": ranking_judged(service.models.current()),
        "without": ranking_judged(serving_model),
    }
    if on_candidate is not None:
        on_candidate(service)
    settings = service.settings.embedding
    gate["required_gain"] = settings.fine_tune_served_min_gain
    falls_short = bool(gate["lowers_validation"]) or (
        settings.fine_tune_served_min_gain > 0
        and "difference" in gate  # too few validation users to compare: nothing to judge on
        and gate["difference"] < settings.fine_tune_served_min_gain
    )
    refused = falls_short and settings.fine_tune_gate
    gate["served"] = not refused
    if not refused:
        if falls_short:
            gate["note"] = "kept although the served lists fell short (RECO_EMBEDDING__FINE_TUNE_GATE=false)"
        return EncoderStep(service, _with_gate(service, report, gate), training)
    reason = (
        f"the served lists fell short on {gate['users']} validation users (NDCG@10 "
        f"{gate['without_ndcg_at_10']:.4f} -> {gate['with_ndcg_at_10']:.4f}, {gate['difference']:+.4f} ± "
        f"{gate['standard_error']:.4f})"
    )
    logger.warning("withdrawing the shop's encoder v%d: %s", report.version, reason)
    report = dataclasses.replace(report, published=False, reason=f"{reason}; before that: {report.reason}")
    report = _with_gate(service, report, gate)
    service.encoders.restore(previous)
    service.encoders.discard_model(report.version)
    service = reopen(service)  # the previous encoder's vectors, re-embedded
    service.serve_model_again(serving_model)
    return EncoderStep(service, report)


def _with_gate(service: RecommenderService, report: EncoderReport, gate: dict) -> EncoderReport:
    report = dataclasses.replace(report, served_gate=gate)
    service.encoders.write_meta(report.version, report.as_dict())
    return report


def run_training_job(
    service: RecommenderService,
    reopen: Reopen,
    seed: int = 42,
    run_id: str | None = None,
    encoder_only: bool = False,
) -> JobOutcome:
    """The whole job under one lease. With RECO_EMBEDDING__FINE_TUNE: the sequence model and the parts
    over the text space serving now, then the encoder step (``serve_shop_encoder``), whose parts serve
    where it keeps the encoder. ``encoder_only``: the encoder step alone, judged against what serves."""
    outcome = JobOutcome(service)
    # One lease for the whole job, so that nobody starts another in between.
    run_id = service.training.begin(run_id)
    try:
        if not encoder_only:
            outcome.training = service.train_now(seed)
        if encoder_only or service.settings.embedding.fine_tune:
            step = serve_shop_encoder(outcome.service, reopen, seed)
            outcome.service, outcome.encoder = step.service, step.report
            outcome.training = step.training or outcome.training
    finally:
        outcome.service.training.end(run_id)
    return outcome
