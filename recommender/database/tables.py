"""The event store's tables. A change here needs a migration in ``migrations/versions``: a test compares
the migrated schema with these."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from recommender.settings import DEFAULT_TENANT


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no zone, so it is restored on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def tenant_column() -> Mapped[str]:
    """Every row belongs to one tenant (a shop); a deployment without tenants has only the default one."""
    return mapped_column(String(64), server_default=DEFAULT_TENANT)


class EventRow(Base):
    __tablename__ = "interaction_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = tenant_column()
    user_id: Mapped[str] = mapped_column(String(256))
    product_id: Mapped[str] = mapped_column(String(256))
    event_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The served list this event is attributed to, and by which rule ("explicit": the client named it;
    # "last_touch": the latest list that showed the product to the user within the window).
    recommendation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attribution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The search this action came from: its list's query, or the one the shop sent with the event.
    query: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_events_tenant_user_time", "tenant", "user_id", "occurred_at"),
        Index("ix_events_tenant_product", "tenant", "product_id"),
        Index("ix_events_recommendation", "recommendation_id"),
    )


class ImportJobRow(Base):
    __tablename__ = "import_jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    embedded: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    # The file the job reads, so that a job interrupted by a crash can be resumed; null for older rows.
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The field mapping the import applies (source column -> field), kept so that a resumed job uses it too.
    mapping: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # Rows in the file, counted when the job starts (for progress); null until then.
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # True when the file is an upload that the service owns and deletes once the job has ended.
    owns_file: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LockRow(Base):
    """A named lease (e.g. one training run at a time across processes), taken by inserting the row."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConversationRow(Base):
    """A chat conversation, shared by every worker and replica; it belongs to one API key and user."""

    __tablename__ = "conversations"

    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    caller: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    turns: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_conversations_tenant_user", "tenant", "user_id"),
        Index("ix_conversations_expiry", "expires_at"),
    )


class ServedListRow(Base):
    """A list the API served: what it showed, to whom, where, under which experiment arm."""

    __tablename__ = "served_lists"

    recommendation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    placement: Mapped[str] = mapped_column(String(64))
    experiment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    product_ids: Mapped[list[str]] = mapped_column(JSON)
    served_at: Mapped[datetime] = mapped_column(UtcDateTime())
    query: Mapped[str | None] = mapped_column(Text, nullable=True)  # the search this list answered

    __table_args__ = (
        Index("ix_served_tenant_user_time", "tenant", "user_id", "served_at"),
        Index("ix_served_tenant_experiment", "tenant", "experiment"),
        Index("ix_served_time", "served_at"),
    )


class MerchRuleRow(Base):
    """A merchandiser's standing rule for a placement: pin, boost, bury or block, between two times."""

    __tablename__ = "merch_rules"

    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    placement: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(8))
    product_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    filter: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    factor: Mapped[float | None] = mapped_column(Float, nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_rules_tenant", "tenant"),)


class ExperimentRow(Base):
    """An A/B experiment: arms (pipeline overrides), their traffic shares, and its state."""

    __tablename__ = "experiments"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True, server_default=DEFAULT_TENANT)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    placement: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arms: Mapped[dict[str, dict[str, object]]] = mapped_column(JSON)
    traffic: Mapped[dict[str, float]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
