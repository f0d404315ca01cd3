"""The online loop: served lists, event attribution, merchandising rules and experiments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def tenant() -> sa.Column:
    return sa.Column("tenant", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    with op.batch_alter_table("interaction_events") as batch:
        batch.add_column(sa.Column("recommendation_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("attribution", sa.String(16), nullable=True))
        batch.create_index("ix_events_recommendation", ["recommendation_id"])
    op.create_table(
        "served_lists",
        sa.Column("recommendation_id", sa.String(32), primary_key=True),
        tenant(),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("placement", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("product_ids", sa.JSON, nullable=False),
        sa.Column("served_at", STAMP, nullable=False),
    )
    op.create_index("ix_served_tenant_user_time", "served_lists", ["tenant", "user_id", "served_at"])
    op.create_index("ix_served_tenant_experiment", "served_lists", ["tenant", "experiment"])
    op.create_index("ix_served_time", "served_lists", ["served_at"])
    op.create_table(
        "merch_rules",
        sa.Column("rule_id", sa.String(32), primary_key=True),
        tenant(),
        sa.Column("placement", sa.String(64), nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("product_id", sa.String(256), nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("filter", sa.JSON, nullable=True),
        sa.Column("factor", sa.Float, nullable=True),
        sa.Column("starts_at", STAMP, nullable=True),
        sa.Column("ends_at", STAMP, nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
    )
    op.create_index("ix_rules_tenant", "merch_rules", ["tenant"])
    op.create_table(
        "experiments",
        sa.Column("tenant", sa.String(64), primary_key=True, server_default="default"),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("placement", sa.String(64), nullable=True),
        sa.Column("arms", sa.JSON, nullable=False),
        sa.Column("traffic", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("stopped_at", STAMP, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("experiments")
    op.drop_table("merch_rules")
    op.drop_table("served_lists")
    with op.batch_alter_table("interaction_events") as batch:
        batch.drop_index("ix_events_recommendation")
        batch.drop_column("attribution")
        batch.drop_column("recommendation_id")
