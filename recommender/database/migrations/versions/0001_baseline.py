"""Baseline: the schema of release 0.1.0, the last made by ``create_all``.

A new database gets these tables. A database of 0.1.0 or older has some or all of them and no revision:
what is missing is added (older installs lack the import jobs' ``path``, ``mapping``, ``total`` and
``owns_file``, and the conversations table), and nothing that exists is touched.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def tables() -> list[sa.Table]:
    metadata = sa.MetaData()
    return [
        sa.Table(
            "interaction_events",
            metadata,
            sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("user_id", sa.String(256), nullable=False),
            sa.Column("product_id", sa.String(256), nullable=False),
            sa.Column("event_type", sa.String(32), nullable=False),
            sa.Column("value", sa.Float, nullable=True),
            sa.Column("occurred_at", STAMP, nullable=False),
            sa.Column("received_at", STAMP, nullable=False),
            sa.Index("ix_events_user_time", "user_id", "occurred_at"),
            sa.Index("ix_events_product", "product_id"),
        ),
        sa.Table(
            "import_jobs",
            metadata,
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("file_format", sa.String(16), nullable=False),
            sa.Column("processed", sa.Integer, nullable=False),
            sa.Column("succeeded", sa.Integer, nullable=False),
            sa.Column("failed", sa.Integer, nullable=False),
            sa.Column("embedded", sa.Integer, nullable=False),
            sa.Column("unchanged", sa.Integer, nullable=False),
            sa.Column("errors", sa.JSON, nullable=False),
            sa.Column("message", sa.Text, nullable=False),
            sa.Column("path", sa.Text, nullable=True),
            sa.Column("mapping", sa.JSON, nullable=True),
            sa.Column("total", sa.Integer, nullable=True),
            sa.Column("owns_file", sa.Integer, nullable=True),
            sa.Column("created_at", STAMP, nullable=False),
            sa.Column("started_at", STAMP, nullable=True),
            sa.Column("finished_at", STAMP, nullable=True),
        ),
        sa.Table(
            "locks",
            metadata,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(64), nullable=False),
            sa.Column("expires_at", STAMP, nullable=False),
        ),
        sa.Table(
            "conversations",
            metadata,
            sa.Column("conversation_id", sa.String(64), primary_key=True),
            sa.Column("caller", sa.String(64), nullable=False),
            sa.Column("user_id", sa.String(256), nullable=True),
            sa.Column("turns", sa.JSON, nullable=False),
            sa.Column("expires_at", STAMP, nullable=False),
            sa.Index("ix_conversations_user", "user_id"),
            sa.Index("ix_conversations_expiry", "expires_at"),
        ),
    ]


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    existing_tables = set(inspector.get_table_names())
    for table in tables():
        if table.name not in existing_tables:
            table.create(connection)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        for column in missing:
            # Only nullable columns were ever added to an existing table before migrations.
            op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(connection)


def downgrade() -> None:
    for table in reversed(tables()):
        op.drop_table(table.name)
