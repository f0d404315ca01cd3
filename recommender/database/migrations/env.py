"""Alembic's environment: migrations run on the connection that ``schema.upgrade`` hands over (in its
transaction), or on one opened from the URL that ``alembic -x url=...`` names when run by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from recommender.database.tables import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite alters a table by copying it: Alembic's batch mode does that for every ALTER.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("name the database: alembic -x url=sqlite:///data/events.db upgrade head")
    engine = create_engine(url)
    with engine.begin() as own_connection:
        run_on(own_connection)
    engine.dispose()
