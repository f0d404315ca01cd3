"""Search queries: the query a served list answered, and the query an event came from (the list's, when
the event is attributed to one, or the one the shop sent), so that the shop's encoder can learn which
products its shoppers chose after which searches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("served_lists") as batch:
        batch.add_column(sa.Column("query", sa.Text, nullable=True))
    with op.batch_alter_table("interaction_events") as batch:
        batch.add_column(sa.Column("query", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction_events") as batch:
        batch.drop_column("query")
    with op.batch_alter_table("served_lists") as batch:
        batch.drop_column("query")
