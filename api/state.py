"""What the app holds for its lifetime: the core service and the task queue (plus its in-process worker)."""

from __future__ import annotations

from dataclasses import dataclass

from api.rankings import Rankings
from ingest.celery_app import TaskQueue
from ingest.in_process import InProcessWorker
from recommender.service import RecommenderService
from recommender.tenancy import TenantServices


@dataclass
class AppState:
    started_with: RecommenderService  # the implicit tenant's, as built at start (a switch replaces it)
    tenants: TenantServices
    queue: TaskQueue
    worker: InProcessWorker | None
    rankings: Rankings

    @property
    def service(self) -> RecommenderService:
        """The implicit tenant's service now."""
        return self.tenants.get()

    @property
    def task_runner(self) -> str:
        return "in-process worker" if self.worker is not None else "celery broker"
