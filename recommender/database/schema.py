"""Brings the event store's schema to this release's revision with Alembic (``migrations/``, package data).

A database made before migrations existed (release 0.1.0, ``create_all``) has tables but no revision: the
first migration adopts it as it is, adding what older installs lack. One process migrates at a time: a
PostgreSQL advisory lock, or a lock file beside a SQLite database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from filelock import FileLock
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from recommender.errors import ConfigurationError, DependencyUnavailableError

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key: any constant that no other code of this database uses.
POSTGRES_LOCK_KEY = 0x5EC0_DB


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations in the package"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (revision before, revision after)."""
    with _one_migrator(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        before = MigrationContext.configure(connection).get_current_revision()
        check_known(before)
        if before != head_revision() or revision != "head":
            command.upgrade(alembic_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        logger.info("event store schema migrated from %s to %s", before or "(none)", after)
    return before, after


def ensure_schema(engine: Engine, migrate: bool) -> None:
    """Called on a database's first use: migrate, or with ``migrate`` off check that no migration is due."""
    if migrate:
        upgrade(engine)
        return
    current = current_revision(engine)
    check_known(current)
    if current != head_revision():
        raise DependencyUnavailableError(
            "event store",
            f"its schema is at revision {current or '(none)'}, this release needs {head_revision()}: "
            "run `recommender db upgrade` (or set RECO_EVENTS__MIGRATE_ON_START=true)",
        )


def check_known(revision: str | None) -> None:
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError as error:
        raise ConfigurationError(
            f"the event store's schema is at revision {revision}, which this release does not know: "
            "a newer release wrote it (run that release, or restore a backup made by this one)"
        ) from error


@contextmanager
def _one_migrator(engine: Engine) -> Iterator[None]:
    """Across processes: a SQLite file's migrations wait for each other on a lock file beside it."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with FileLock(f"{database}.migrate.lock", timeout=120):
        yield
