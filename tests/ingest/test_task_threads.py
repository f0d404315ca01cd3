"""A task leaves no OpenMP threads behind on the worker thread that ran it: a worker's threads outlive their
tasks, and such threads slowed every later training in the process (recommender/openmp.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ingest.celery_app import _register, create_celery_app
from recommender.settings import CelerySettings
from tests.recommender.test_openmp import settled, threads_now, train_lightgbm


def test_a_task_that_trained_hands_back_its_openmp_threads() -> None:
    app = create_celery_app(CelerySettings())
    _register(app, "tests.train_lightgbm", train_lightgbm, {"bind": True})
    worker = ThreadPoolExecutor(1)  # as a worker's thread: it runs task after task
    try:
        worker.submit(lambda: None).result()
        import lightgbm  # noqa: F401  (its import starts threads of its own: before the count)

        before = threads_now()
        worker.submit(train_lightgbm).result()
        assert settled(before), "a training outside a task keeps its team (what the task must hand back)"
        ran = worker.submit(lambda: app.tasks["tests.train_lightgbm"].apply(throw=True)).result()
        assert ran.successful()
        assert settled(before) == set()
    finally:
        worker.shutdown()
