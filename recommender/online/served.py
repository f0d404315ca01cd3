"""The log of served lists: every list the API returns gets an id, and what it showed (to whom, where,
under which experiment arm, in which order) is kept for ``retention_days`` so that later clicks and sales
can be attributed to it. Erased with the user.

Recording must not slow the request: ``record`` only appends to a buffer, which a background thread
writes in one transaction every ``flush_seconds``. Reads flush first. A crash loses at most the last
``flush_seconds`` of the log (never an event).
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, Database, ServedListRow
from recommender.errors import RecommenderError

logger = logging.getLogger(__name__)
# Lists of a user read when looking for the last one that showed a product (last-touch attribution).
RECENT_LISTS = 200


@dataclass(frozen=True)
class ServedList:
    recommendation_id: str
    user_id: str | None
    placement: str
    experiment: str | None
    arm: str | None
    product_ids: list[str]
    served_at: datetime
    query: str | None = None  # the search this list answered

    def position_of(self, product_id: str) -> int | None:
        return self.product_ids.index(product_id) + 1 if product_id in self.product_ids else None


class ServedLists:
    def __init__(
        self,
        database: Database,
        tenant: str = DEFAULT_TENANT,
        retention_days: float = 30.0,
        flush_seconds: float = 0.25,
    ) -> None:
        self._database = database
        self.tenant = tenant
        self._retention = timedelta(days=retention_days)
        self._flush_seconds = flush_seconds
        self._pending: list[ServedList] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = datetime.min.replace(tzinfo=UTC)

    def record(
        self,
        user_id: str | None,
        placement: str,
        product_ids: list[str],
        experiment: str | None = None,
        arm: str | None = None,
        query: str | None = None,
    ) -> str:
        served = ServedList(
            secrets.token_hex(12),
            user_id,
            placement,
            experiment,
            arm,
            list(product_ids),
            datetime.now(UTC),
            query,
        )
        with self._lock:
            self._pending.append(served)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="served-lists", daemon=True)
                self._thread.start()
        return served.recommendation_id

    def flush(self) -> None:
        """Write what is buffered; older lists than the retention are deleted at most once an hour."""
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            now = datetime.now(UTC)
            purge = now - self._last_purge > timedelta(hours=1)
            if not pending and not purge:
                return
            # Plain rows in one executemany: the ORM's unit of work would cost the serving threads more.
            rows = [
                {
                    "recommendation_id": served.recommendation_id,
                    "tenant": self.tenant,
                    "user_id": served.user_id,
                    "placement": served.placement,
                    "experiment": served.experiment,
                    "arm": served.arm,
                    "product_ids": served.product_ids,
                    "served_at": served.served_at,
                    "query": served.query,
                }
                for served in pending
            ]

            def write(session: Session) -> None:
                if rows:
                    session.execute(insert(ServedListRow), rows)
                if purge:
                    session.execute(
                        delete(ServedListRow).where(
                            ServedListRow.tenant == self.tenant,
                            ServedListRow.served_at < now - self._retention,
                        )
                    )

            try:
                self._database.run(write)
            except Exception:
                with self._lock:  # kept for the next flush, not lost
                    self._pending = pending + self._pending
                raise
            if purge:
                self._last_purge = now

    def get(self, recommendation_id: str) -> ServedList | None:
        self.flush()

        def read(session: Session) -> ServedList | None:
            row = session.get(ServedListRow, recommendation_id)
            return _served(row) if row is not None and row.tenant == self.tenant else None

        return self._database.run(read)

    def of_user(self, user_id: str, since: datetime | None = None) -> list[ServedList]:
        """The user's lists, newest first (at most the latest ``RECENT_LISTS``)."""
        self.flush()
        statement = select(ServedListRow).where(
            ServedListRow.tenant == self.tenant, ServedListRow.user_id == user_id
        )
        if since is not None:
            statement = statement.where(ServedListRow.served_at >= since)
        statement = statement.order_by(ServedListRow.served_at.desc()).limit(RECENT_LISTS)
        return self._database.run(lambda session: [_served(row) for row in session.scalars(statement)])

    def of_experiment(self, experiment: str) -> list[ServedList]:
        self.flush()
        statement = select(ServedListRow).where(
            ServedListRow.tenant == self.tenant, ServedListRow.experiment == experiment
        )
        return self._database.run(lambda session: [_served(row) for row in session.scalars(statement)])

    def forget_user(self, user_id: str) -> int:
        self.flush()
        statement = delete(ServedListRow).where(
            ServedListRow.tenant == self.tenant, ServedListRow.user_id == user_id
        )

        def remove(session: Session) -> int:
            return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]

        removed = self._database.run(remove)
        self._database.purge_deleted()  # the erased lists must not linger in the write-ahead log
        return removed

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except RecommenderError as error:
            logger.warning("served lists not written at shutdown: %s", error)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._flush_seconds)
            try:
                self.flush()
            except Exception as error:  # the next round retries; the request path never sees this
                logger.warning("served lists not written yet: %s", error)


def _served(row: ServedListRow) -> ServedList:
    return ServedList(
        row.recommendation_id,
        row.user_id,
        row.placement,
        row.experiment,
        row.arm,
        list(row.product_ids),
        row.served_at,
        row.query,
    )


def as_export(served: ServedList) -> dict[str, Any]:
    return {
        "recommendation_id": served.recommendation_id,
        "placement": served.placement,
        "experiment": served.experiment,
        "arm": served.arm,
        "product_ids": served.product_ids,
        "served_at": served.served_at.isoformat(),
        "query": served.query,
    }
