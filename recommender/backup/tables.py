"""One tenant's rows of the event store's tables to JSON Lines and back, read as one consistent snapshot,
and written into a database of either kind (a SQLite backup restores into PostgreSQL and the other way
round).

Values are JSON: datetimes as ISO 8601 in UTC, JSON columns as they are. Leases are not kept: a restored
installation starts with no training run in progress."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, func, select, text

SKIPPED_TABLES = {"locks", "alembic_version"}
BATCH = 1000


def dump_tables(engine: Engine, folder: Path, tenant: str) -> dict[str, int]:
    """One file per table (``<table>.jsonl``) with ``tenant``'s rows; returns the row count of each."""
    counts: dict[str, int] = {}
    with _snapshot(engine) as connection:
        metadata = MetaData()
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            if table.name in SKIPPED_TABLES:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            statement = select(table).order_by(*order)
            if "tenant" in table.columns:
                statement = statement.where(table.columns["tenant"] == tenant)
            rows = connection.execute(statement)
            with (folder / f"{table.name}.jsonl").open("w", encoding="utf-8") as file:
                counts[table.name] = 0
                for row in rows.mappings():
                    file.write(json.dumps({key: _encode(value) for key, value in row.items()}) + "\n")
                    counts[table.name] += 1
    return counts


def delete_tenant_rows(connection: Connection, tables: list[str], tenant: str) -> None:
    metadata = MetaData()
    metadata.reflect(connection)
    for name in tables:
        table = metadata.tables[name]
        if "tenant" in table.columns:
            connection.execute(table.delete().where(table.columns["tenant"] == tenant))


def load_tables(connection: Connection, folder: Path, tables: list[str], tenant: str) -> None:
    """Inserts the dumped rows, as ``tenant``'s, into the tables of the same names (at the backup's schema
    revision)."""
    metadata = MetaData()
    metadata.reflect(connection)
    for name in tables:
        table = metadata.tables[name]
        stamps = {column.name for column in table.columns if isinstance(column.type, DateTime)}
        batch: list[dict[str, Any]] = []
        with (folder / f"{name}.jsonl").open(encoding="utf-8") as file:
            for line in file:
                row = json.loads(line)
                if "tenant" in table.columns:
                    row["tenant"] = tenant
                for key in stamps & row.keys():
                    row[key] = _stamp(row[key], connection.dialect.name)
                batch.append(row)
                if len(batch) == BATCH:
                    connection.execute(table.insert(), batch)
                    batch = []
        if batch:
            connection.execute(table.insert(), batch)
        if connection.dialect.name == "postgresql":
            _advance_sequences(connection, table.name, [column.name for column in table.primary_key.columns])


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one moment of the database while writers go on."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # SQLite's own online backup copies a consistent image; the dump reads the copy.
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "snapshot.db"
            source = sqlite3.connect(str(engine.url.database))
            target = sqlite3.connect(str(copy))
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
            snapshot = create_engine(f"sqlite:///{copy}")
            try:
                with snapshot.connect() as connection:
                    yield connection
            finally:
                snapshot.dispose()
                shutil.rmtree(folder, ignore_errors=True)
        return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def _advance_sequences(connection: Connection, table: str, key_columns: list[str]) -> None:
    """Rows came in with their ids: a serial column's sequence must continue after the largest."""
    for column in key_columns:
        sequence = connection.execute(select(func.pg_get_serial_sequence(table, column))).scalar_one_or_none()
        if sequence:
            largest = f'SELECT COALESCE(MAX("{column}"), 0) + 1 FROM "{table}"'
            connection.execute(text(f"SELECT setval(:sequence, ({largest}), false)"), {"sequence": sequence})


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    return value


def _stamp(value: str | None, dialect: str) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value).astimezone(UTC)
    # SQLite keeps no zone: the tables store UTC without one (recommender.database.tables.UtcDateTime).
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment
