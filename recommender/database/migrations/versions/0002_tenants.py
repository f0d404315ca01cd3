"""Tenants: every event, import job and conversation belongs to one shop.

Existing rows go to the implicit tenant ("default"), which a deployment without tenants keeps using; the
per-user and per-product indexes lead with the tenant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("interaction_events", "import_jobs", "conversations")
INDEXES = {
    # table: [(old name, old columns), (new name, new columns)]
    "interaction_events": [
        (
            "ix_events_user_time",
            ["user_id", "occurred_at"],
            "ix_events_tenant_user_time",
            ["tenant", "user_id", "occurred_at"],
        ),
        ("ix_events_product", ["product_id"], "ix_events_tenant_product", ["tenant", "product_id"]),
    ],
    "conversations": [
        ("ix_conversations_user", ["user_id"], "ix_conversations_tenant_user", ["tenant", "user_id"]),
    ],
}


def upgrade() -> None:
    for table in TABLES:
        # Batch mode: SQLite rebuilds the table (it cannot add a NOT NULL column with an index otherwise).
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant", sa.String(64), nullable=False, server_default="default"))
            for old, _, new, columns in INDEXES.get(table, []):
                batch.drop_index(old)
                batch.create_index(new, columns)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for old, old_columns, new, _ in INDEXES.get(table, []):
                batch.drop_index(new)
                batch.create_index(old, old_columns)
            batch.drop_column("tenant")
