"""A fresh database on the machine's PostgreSQL (127.0.0.1:5432), dropped afterwards; a test that needs one
fails in CI (CI=true) and is skipped elsewhere when no server runs."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def require_postgres() -> None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return
    except OSError:
        message = "no PostgreSQL server on 127.0.0.1:5432 (CI machines have one)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Yields the SQLAlchemy URL of a new, empty database."""
    require_postgres()
    name = f"reco_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
