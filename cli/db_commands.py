"""``recommender db``: the event store's schema (Alembic migrations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from recommender.settings import get_settings

db_app = typer.Typer(help="The event store's schema: see and apply migrations.", no_args_is_help=True)
console = Console()
ResultT = TypeVar("ResultT")


def _on_database(work: Callable[..., ResultT]) -> ResultT:
    """Runs ``work(engine)`` on the configured event store; a database that cannot be reached is named."""
    from recommender.database import CONNECTION_ERRORS, Database
    from recommender.errors import unavailable

    database = Database(get_settings().events.url, migrate=False)
    try:
        return work(database.engine)
    except CONNECTION_ERRORS as error:
        raise unavailable("event store", error) from error
    finally:
        database.close()


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="Target revision (default: this release's).")] = "head",
) -> None:
    """Migrate the configured event store (RECO_EVENTS__URL) to this release's schema."""
    from recommender.database import schema

    before, after = _on_database(lambda engine: schema.upgrade(engine, revision))
    if before == after:
        console.print(f"event store schema at {after}: nothing to do")
    else:
        console.print(f"event store schema migrated from {before or '(none)'} to {after}")


@db_app.command()
def current() -> None:
    """Print the event store's schema revision and this release's."""
    from recommender.database import schema

    revision = _on_database(schema.current_revision)
    head = schema.head_revision()
    state = "up to date" if revision == head else "behind: run `recommender db upgrade`"
    console.print(f"event store schema {revision or '(none)'}; this release {head}: {state}")
