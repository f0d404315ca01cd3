"""The connection to the event store's database: sessions, failures mapped to "unavailable", and the schema
brought to this release's revision on first use (``schema.py``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from recommender.database.schema import ensure_schema
from recommender.errors import unavailable

ResultT = TypeVar("ResultT")
logger = logging.getLogger(__name__)
# The database cannot be reached, dropped the connection, timed out or is locked: "unavailable" (503,
# retried).
# Any other error (a constraint, bad data, a bug) is raised as it is.
CONNECTION_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


class Database:
    """Engine plus session factory; every call maps database failures to DependencyUnavailableError.

    ``migrate``: bring an older schema to this release's revision on first use (Alembic); when false, a
    schema that is not at it makes every call a 503 that says to run ``recommender db upgrade``.
    """

    def __init__(self, url: str, migrate: bool = True) -> None:
        parsed = make_url(url)
        connect_args: dict[str, object] = {}
        if parsed.drivername.startswith("sqlite"):
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # The API's threads and the in-process worker share one file.
            connect_args = {"check_same_thread": False, "timeout": 30}
        else:
            connect_args = {"connect_timeout": 5}
        self.url = url
        self.migrate = migrate
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if parsed.drivername.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_wal)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Checked on first use, so that a database that is down at start-up gives 503s, not a dead service.
        self._schema_ready = False
        # The first calls may come from several threads at once (start-up recovery, a request): one migrates.
        self._schema_lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def run(self, work: Callable[[Session], ResultT]) -> ResultT:
        try:
            if not self._schema_ready:
                with self._schema_lock:
                    if not self._schema_ready:
                        ensure_schema(self.engine, migrate=self.migrate)
                        self._schema_ready = True
            with self.session() as session:
                return work(session)
        except CONNECTION_ERRORS as error:
            # The driver's message names hosts, users and SQL: it goes to the log, never to a client.
            raise unavailable("event store", error) from error

    def purge_deleted(self) -> None:
        """After an erasure: SQLite's write-ahead log still holds the old pages until a checkpoint."""
        if self.engine.dialect.name == "sqlite":
            self.run(lambda session: session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")))

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_wal(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # Erased rows are overwritten with zeros, not left readable in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
