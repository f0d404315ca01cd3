"""A Celery worker on a thread of the current process, for the default set-up without a broker.

The same task code runs as with a broker; requests return at once while the work goes on here.
"""

from __future__ import annotations

import threading

from celery import Celery
from celery.worker import WorkController


class InProcessWorker:
    def __init__(self, app: Celery, concurrency: int = 2) -> None:
        # Task tracing looks the app up as the current one; make it so, as a worker process does.
        app.set_default()
        app.finalize(auto=True)
        self._ready = threading.Event()
        self._controller = WorkController(
            app=app,
            pool="threads",
            concurrency=concurrency,
            hostname="in-process@recommender",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda _consumer: self._ready.set(),
            loglevel="WARNING",
        )
        self._thread = threading.Thread(target=self._controller.start, name="celery-in-process", daemon=True)

    def start(self, timeout_seconds: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_seconds) or not self._thread.is_alive():
            raise RuntimeError("the in-process Celery worker did not start; see the log above")

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Returns once running tasks have finished (the controller's warm shutdown waits for its pool). The
        consumer loop notices the stop only when its 2 s wait on the in-memory queue ends (Celery's synloop
        drains with a fixed timeout), so this does not wait for that: the thread ends by itself, with
        nothing left to do, instead of holding up every shutdown by up to 2 s."""
        self._controller.stop(in_sighandler=False)
        self._thread.join(min(timeout_seconds, 0.1))
