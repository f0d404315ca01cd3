"""The one place that maps settings to implementations and wires the core together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from recommender.catalog import Catalog
from recommender.database import Database
from recommender.embedding import CrossLingualEmbedder, Embedder, build_embedder
from recommender.embedding.versions import SHOP_MARK, EncoderVersion, EncoderVersions
from recommender.errors import DependencyUnavailableError
from recommender.events import EventStore
from recommender.intake.importer import CatalogImporter
from recommender.intake.jobs import JobStore
from recommender.leases import Leases
from recommender.llm.chat import build_chat_model
from recommender.llm.conversation_store import ConversationStore
from recommender.llm.features import LLMFeatures
from recommender.llm.prompting import check_templates
from recommender.online.experiments import Experiments, ExperimentStore
from recommender.online.loop import OnlineLoop
from recommender.online.served import ServedLists
from recommender.online.serving import OnlineRecommender
from recommender.pipeline.merchandising import CHAT_PLACEMENT, RuleBook, RuleStore
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.registry import ModelRegistry, PublishedModel
from recommender.pipeline.stats import LiveItemStats
from recommender.privacy import UserData
from recommender.profiles import ProfileService
from recommender.rebuild import rebuild_if_model_changed
from recommender.retrieval import Retriever
from recommender.settings import DEFAULT_TENANT, Settings
from recommender.store import VectorStore
from recommender.store.opening import (
    open_vector_stores,
)
from recommender.store.shared import HostAddress
from recommender.training.encoder import EncoderReport, fine_tune_and_publish
from recommender.training.job import TrainingReport, restore_version, train_and_publish
from recommender.training.runs import TrainingRuns
from recommender.training.served_check import served_validation

logger = logging.getLogger(__name__)


@dataclass
class RecommenderService:
    settings: Settings
    embedder: Embedder
    products: VectorStore
    users: VectorStore
    database: Database
    events: EventStore
    jobs: JobStore
    catalog: Catalog
    importer: CatalogImporter
    profiles: ProfileService
    retriever: Retriever
    models: ModelRegistry
    training: TrainingRuns
    llm: LLMFeatures
    user_data: UserData
    pipeline: Pipeline
    online: OnlineRecommender
    loop: OnlineLoop
    encoders: EncoderVersions
    backend: str = field(default="embedded")
    tenant: str = field(default=DEFAULT_TENANT)
    _closed: bool = field(default=False, init=False, repr=False)

    def train(
        self, seed: int = 42, run_id: str | None = None, reuse_sequence: bool = False
    ) -> TrainingReport:
        """The training job's sequence model and parts (``recommender.training_job`` runs the whole job),
        under the training lease. ``reuse_sequence``: keep the serving sequence model and train only the parts
        (after the shop's encoder started serving)."""
        return self.training.run(lambda: self.train_now(seed, reuse_sequence), run_id)

    def train_now(self, seed: int = 42, reuse_sequence: bool = False) -> TrainingReport:
        """``train`` for a caller that holds the training lease: sequence model, then the pipeline's parts
        over it, published together."""
        report = train_and_publish(
            self.events,
            self.catalog,
            self.products,
            self.models,
            self.settings,
            self.pipeline,
            seed,
            reuse_sequence,
        )
        # Training rewrote the learned vector of every product, which leaves them outside the HNSW graph
        # (at 100k products, searches went from 2 to 10 ms) until the index is rebuilt.
        self.catalog.optimize_in_background()
        # The new model serves with statistics of every event it was trained on, whenever a background
        # recomputation would have finished (an evaluation ranks right after this).
        self.pipeline.settle_statistics()
        return report

    def fine_tune_encoder_now(self, seed: int = 42) -> EncoderReport:
        """Fine-tune the embedding model on the stored events and publish it where it earns its place (see
        ``training.encoder``), for a caller that holds the training lease. A published encoder serves once
        the service is opened again (``switch_encoder``): the rebuild path re-embeds the catalog first."""
        return fine_tune_and_publish(
            self.events, self.catalog, self.embedder, self.encoders, self.settings.embedding, seed
        )

    def served_validation(self, seed: int = 42) -> dict[str, float]:
        """Per validation user, NDCG@10 of what serves now (see ``training.served_check``); empty before the
        first training."""
        model = self.models.current()
        if model is None:
            return {}
        return served_validation(self.pipeline, model, self.events, self.settings, seed)

    def serve_model_again(self, model: PublishedModel) -> None:
        """Serve an earlier model version again (its vectors written back first), under the training lease."""
        restore_version(model, self.products, self.models)
        self.catalog.optimize_in_background()
        self.pipeline.settle_statistics()

    def encoder_pending(self) -> bool:
        """A published encoder (or its withdrawal) that this service does not serve yet."""
        published = self.encoders.current(self.settings.embedding.model)
        serving = _main_model_name(self.embedder)
        if published is None:
            return SHOP_MARK in serving
        return serving != published.model_name

    def close(self) -> None:
        if self._closed:
            return  # a service replaced by a switch of encoder, closed again by its owner
        self._closed = True
        self.loop.served.close()  # the buffered served lists are written before the database closes
        self.catalog.wait_for_index()  # the store must not close under its index builder
        self.products.close()
        self.users.close()
        self.database.close()


def build_service(
    settings: Settings,
    embedder: Embedder | None = None,
    store_host: HostAddress | None = None,
    tenant: str = DEFAULT_TENANT,
    share_from: RecommenderService | None = None,
) -> RecommenderService:
    """Build every part from settings, for one tenant (a shop: its own collections, rows and models).
    Pass ``embedder`` to share an already loaded model, ``store_host`` when this is one of several API
    processes over one embedded store, and ``share_from`` (another tenant's service) to share its
    embedding model and, where the LLM settings agree, its chat model."""
    settings = settings.for_tenant(tenant)
    if share_from is not None:
        embedder = embedder or share_from.embedder
    encoders = EncoderVersions(settings.collab.models_path)
    embedder = _serving_embedder(settings, encoders.current(settings.embedding.model), embedder)
    if settings.qdrant.on_model_change == "rebuild":
        rebuild_if_model_changed(settings, embedder, store_host=store_host)
    elif encoders.ever_trained():
        # Publishing (or withdrawing) the shop's encoder asks for its rebuild; another model follows the
        # setting. A store that is down is said below (requests get 503 until it is back).
        try:
            rebuild_if_model_changed(settings, embedder, shop_encoders_only=True, store_host=store_host)
        except Exception as error:  # the store's client raises its own errors when it cannot connect
            logger.warning("the shop's encoder switch waits for the vector store: %s", error)
    products, users, backend = open_vector_stores(settings, embedder, store_host)
    for store in (products, users):
        try:
            # Opens (or checks) the collection now: another model's vectors must fail at start-up.
            store.count()
        except DependencyUnavailableError as error:
            logger.warning("starting without the vector store (requests get 503 until it is back): %s", error)
    database = Database(settings.events.url, migrate=settings.events.migrate_on_start)
    events = EventStore(database, tenant)
    jobs = JobStore(database, tenant)
    catalog = Catalog(products, embedder, settings.embedding.max_text_chars)
    profiles = ProfileService(events, catalog, users, settings.recommend)
    models = ModelRegistry(settings.collab.models_path)
    # One set of item statistics for the pipeline's sources and the popular list that fills a short page.
    stats = LiveItemStats(events, settings.pipeline_config.recent_days)
    retriever = Retriever(
        products, catalog, embedder, settings.recommend, lambda limit: stats.get().most_popular(limit)
    )
    calls = None
    if share_from is not None and share_from.settings.llm_config == settings.llm_config:
        chat_model, calls = share_from.llm.chat_model, share_from.llm.calls
    else:
        chat_model = build_chat_model(settings.llm_config)
    if chat_model is not None:
        check_templates()
    conversations = ConversationStore(database, settings.llm.conversation_ttl_seconds, tenant)
    rules = RuleStore(database, tenant)
    rule_book = RuleBook(rules, products, lambda: catalog.generation, settings.online.rules_refresh_seconds)
    llm = LLMFeatures(
        chat_model,
        settings.llm_config,
        retriever,
        catalog,
        events,
        conversations,
        calls,
        blocked=lambda: rule_book.active(CHAT_PLACEMENT).blocked,
    )
    pipeline = Pipeline(
        products,
        catalog,
        embedder,
        events,
        profiles,
        retriever,
        models,
        settings,
        llm,
        stats=stats,
        rules=rule_book,
    )
    served = ServedLists(database, tenant, settings.online.served_list_retention_days)
    experiment_store = ExperimentStore(database, tenant)
    experiments = Experiments(experiment_store, settings.online.rules_refresh_seconds)
    return RecommenderService(
        settings=settings,
        embedder=embedder,
        products=products,
        users=users,
        database=database,
        events=events,
        jobs=jobs,
        catalog=catalog,
        importer=CatalogImporter(
            catalog,
            jobs,
            upload_retention_hours=settings.api.upload_retention_hours,
            max_parquet_bytes=int(settings.api.max_parquet_uncompressed_megabytes * 1024 * 1024),
            upload_dir=Path(settings.api.upload_dir),
        ),
        profiles=profiles,
        retriever=retriever,
        models=models,
        training=TrainingRuns(Leases(database, tenant), settings.collab_config),
        llm=llm,
        user_data=UserData(events, users, llm, served),
        pipeline=pipeline,
        online=OnlineRecommender(pipeline, served, experiments, settings.online.record_served_lists),
        loop=OnlineLoop(events, catalog, served, rules, experiment_store, settings.online),
        encoders=encoders,
        backend=backend,
        tenant=tenant,
    )


def _main_model_name(embedder: Embedder) -> str:
    return (embedder.main if isinstance(embedder, CrossLingualEmbedder) else embedder).model_name


def _serving_embedder(settings: Settings, encoder: EncoderVersion | None, given: Embedder | None) -> Embedder:
    """The shop's published encoder when there is one, else the configured model; ``given`` (a loaded
    model to share) when it is already the right one."""
    wanted = encoder.model_name if encoder is not None else settings.embedding.model
    if given is not None and _main_model_name(given) == wanted:
        return given
    if given is not None and encoder is None and SHOP_MARK not in _main_model_name(given):
        return given  # a model the caller chose (a test's, another name for the configured one)
    return build_embedder(settings.embedding, encoder)


def switch_encoder(service: RecommenderService, deployment_settings: Settings) -> RecommenderService:
    """Close ``service`` and open its tenant again, so that the published encoder serves: the rebuild path
    re-embeds every product into a copy, then switches once (crash-safe, see ``recommender.rebuild``).
    ``deployment_settings``: the settings before ``for_tenant`` (what ``build_service`` was given)."""
    tenant = service.tenant
    service.close()
    return build_service(deployment_settings, tenant=tenant)
