"""The one place that maps settings to implementations and wires the core together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from recommender.catalog import Catalog
from recommender.database import Database
from recommender.embedding import Embedder, build_embedder
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
from recommender.pipeline.registry import ModelRegistry
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
from recommender.training.job import TrainingReport, train_and_publish
from recommender.training.runs import TrainingRuns

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
    backend: str = field(default="embedded")
    tenant: str = field(default=DEFAULT_TENANT)

    def train(self, seed: int = 42, run_id: str | None = None) -> TrainingReport:
        """The training job (the Celery task and `recommender train` call this): sequence model, then the
        pipeline's parts over it, published together; holds the training lease."""
        report = self.training.run(
            lambda: train_and_publish(
                self.events, self.catalog, self.products, self.models, self.settings, self.pipeline, seed
            ),
            run_id,
        )
        # Training rewrote the learned vector of every product, which leaves them outside the HNSW graph
        # (at 100k products, searches went from 2 to 10 ms) until the index is rebuilt.
        self.catalog.optimize_in_background()
        # The new model serves with statistics of every event it was trained on, whenever a background
        # recomputation would have finished (an evaluation ranks right after this).
        self.pipeline.settle_statistics()
        return report

    def close(self) -> None:
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
    embedder = embedder or build_embedder(settings.embedding)
    if settings.qdrant.on_model_change == "rebuild":
        rebuild_if_model_changed(settings, embedder)
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
    catalog = Catalog(products, embedder)
    profiles = ProfileService(events, catalog, users, settings.recommend)
    models = ModelRegistry(settings.collab.models_path)
    retriever = Retriever(products, catalog, embedder, events, settings.recommend)
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
        products, catalog, embedder, events, profiles, retriever, models, settings, llm, rules=rule_book
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
            settings.embedding.max_text_chars,
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
        backend=backend,
        tenant=tenant,
    )
