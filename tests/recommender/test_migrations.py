"""The event store's schema migrations (Alembic): a new database, a database of the previous release (made
by that release's code: tests/fixtures/release_0_1_0), an older install, and the switches around them."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from cli.main import app
from recommender.database import Base, Database, schema
from recommender.errors import ConfigurationError, DependencyUnavailableError
from recommender.events import EventStore
from recommender.intake.jobs import JobStore
from recommender.leases import Leases
from recommender.llm.conversation_store import ConversationStore
from tests.postgres import fresh_postgres_database

RELEASE = Path(__file__).parents[1] / "fixtures" / "release_0_1_0"
EXPECTED = json.loads((RELEASE / "expected.json").read_text())
TEN_YEARS = 10 * 365 * 24 * 3600


def schema_differences(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def assert_release_data_intact(database: Database, backend: str = "sqlite") -> None:
    expected = EXPECTED[backend]
    events = EventStore(database)
    assert events.count() == expected["events"]
    assert events.all_user_ids() == expected["users"]
    history = events.history("user/with é ünïcode", limit=100)
    assert len(history) == 8 and all(event.occurred_at.tzinfo is not None for event in history)
    assert [event.value for event in events.all_events() if event.value is not None]
    jobs = JobStore(database)
    for job_id, state in expected["jobs"].items():
        assert jobs.get(job_id).state.value == state
    finished = next(job_id for job_id, state in expected["jobs"].items() if state == "succeeded")
    job = jobs.get(finished)
    assert (job.succeeded, job.failed, job.total, job.mapping) == (2, 1, 3, {"name": "title"})
    assert job.errors[0].reason == "not a number"
    assert Leases(database).holder("training") == "worker-1"
    conversation = ConversationStore(database, TEN_YEARS).load(expected["conversation_id"])
    assert conversation is not None
    assert [turn.content for turn in conversation.turns] == ["why this?", "Because."]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_new_database_gets_exactly_the_tables_the_code_declares(backend: str, tmp_path: Path) -> None:
    # A table changed without a migration shows here as a difference.
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'events.db'}")
        EventStore(database).count()
        assert schema.current_revision(database.engine) == schema.head_revision()
        assert schema_differences(database) == []
        database.close()
        return
    with fresh_postgres_database() as url:
        database = Database(url)
        EventStore(database).count()
        assert schema.current_revision(database.engine) == schema.head_revision()
        assert schema_differences(database) == []
        database.close()


def test_the_previous_release_s_sqlite_database_upgrades_without_losing_a_row(tmp_path: Path) -> None:
    shutil.copy(RELEASE / "events.db", tmp_path / "events.db")
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    assert schema.current_revision(database.engine) is None  # made by create_all, before migrations
    assert_release_data_intact(database)
    assert schema.current_revision(database.engine) == schema.head_revision()
    assert schema_differences(database) == []
    database.close()


@pytest.mark.postgres
def test_the_previous_release_s_postgresql_database_upgrades_without_losing_a_row() -> None:
    with fresh_postgres_database() as url:
        dump = (RELEASE / "postgres.sql").read_text()
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as raw:
            raw.execute(dump)  # type: ignore[arg-type]  (a pg_dump script: plain statements, no parameters)
        database = Database(url)
        assert schema.current_revision(database.engine) is None
        assert_release_data_intact(database, "postgresql")
        assert schema.current_revision(database.engine) == schema.head_revision()
        assert schema_differences(database) == []
        database.close()


def test_an_older_install_gets_the_columns_and_tables_it_lacks_and_keeps_its_rows(tmp_path: Path) -> None:
    # Before import jobs kept their file, mapping and total, and before conversations were stored.
    path = tmp_path / "events.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE import_jobs (job_id VARCHAR(64) NOT NULL PRIMARY KEY, "
                "state VARCHAR(16) NOT NULL, source TEXT NOT NULL, file_format VARCHAR(16) NOT NULL, "
                "processed INTEGER NOT NULL, "
                "succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, embedded INTEGER NOT NULL, "
                "unchanged INTEGER NOT NULL, errors JSON NOT NULL, message TEXT NOT NULL, "
                "created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO import_jobs VALUES "
                "('old-job', 'succeeded', 'a.csv', 'csv', 5, 5, 0, 5, 0, '[]', '', "
                "'2020-01-01 00:00:00', NULL, NULL)"
            )
        )
    engine.dispose()
    database = Database(f"sqlite:///{path}")
    job = JobStore(database).get("old-job")
    assert (job.succeeded, job.path, job.total) == (5, None, None)
    assert {"path", "mapping", "total", "owns_file"} <= {
        column["name"] for column in inspect(database.engine).get_columns("import_jobs")
    }
    assert {"interaction_events", "locks", "conversations"} <= set(inspect(database.engine).get_table_names())
    assert schema_differences(database) == []
    database.close()


def test_with_migration_on_start_off_a_behind_schema_is_a_503_until_the_command_upgrades_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(RELEASE / "events.db", tmp_path / "events.db")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with pytest.raises(DependencyUnavailableError) as raised:
        EventStore(Database(url, migrate=False)).count()
    assert raised.value.dependency == "event store" and "recommender db upgrade" in raised.value.reason

    monkeypatch.setenv("RECO_EVENTS__URL", url)
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current"])
    assert before.exit_code == 0 and "behind" in before.output
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"migrated from (none) to {schema.head_revision()}" in upgraded.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert "nothing to do" in again.output

    database = Database(url, migrate=False)
    assert_release_data_intact(database)
    database.close()


def test_a_schema_written_by_a_newer_release_is_refused_with_the_reason(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    database = Database(url)
    EventStore(database).count()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    database.close()
    with pytest.raises(ConfigurationError, match="revision f00d, which this release does not know"):
        EventStore(Database(url)).count()


def _migrate(url: str) -> str | None:
    database = Database(url)
    try:
        return schema.upgrade(database.engine)[1]
    finally:
        database.close()


def test_processes_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_migrate, [url] * 3)
    assert results == [schema.head_revision()] * 3
