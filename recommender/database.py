"""The relational database behind the event store and the import-job records (SQLAlchemy 2)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from recommender.errors import unavailable

ResultT = TypeVar("ResultT")
logger = logging.getLogger(__name__)
# The database cannot be reached, dropped the connection, timed out or is locked: "unavailable" (503,
# retried).
# Any other error (a constraint, bad data, a bug) is raised as it is.
CONNECTION_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no zone, so it is restored on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "interaction_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(256))
    product_id: Mapped[str] = mapped_column(String(256))
    event_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_events_user_time", "user_id", "occurred_at"),
        Index("ix_events_product", "product_id"),
    )


class ImportJobRow(Base):
    __tablename__ = "import_jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    embedded: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    # The file the job reads, so that a job interrupted by a crash can be resumed; null for older rows.
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The field mapping the import applies (source column -> field), kept so that a resumed job uses it too.
    mapping: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # Rows in the file, counted when the job starts (for progress); null until then.
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # True when the file is an upload that the service owns and deletes once the job has ended.
    owns_file: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LockRow(Base):
    """A named lease (e.g. one training run at a time across processes), taken by inserting the row."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConversationRow(Base):
    """A chat conversation, shared by every worker and replica; it belongs to one API key and user."""

    __tablename__ = "conversations"

    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    turns: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_conversations_user", "user_id"),
        Index("ix_conversations_expiry", "expires_at"),
    )


class Database:
    """Engine plus session factory; every call maps database failures to DependencyUnavailableError."""

    def __init__(self, url: str) -> None:
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
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if parsed.drivername.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_wal)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Created on first use, so that a database that is down at start-up gives 503s, not a dead service.
        self._schema_ready = False
        # The first calls may come from several threads at once (start-up recovery, a request): one creates.
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
                        Base.metadata.create_all(self.engine)
                        _add_missing_columns(self.engine)
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


def _add_missing_columns(engine: Engine) -> None:
    """Nullable columns added since a table was created are added to it (databases of older versions)."""
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            existing = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in existing and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
