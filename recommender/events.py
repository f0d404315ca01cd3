"""Durable interaction events: write batches, read a user's history, count popularity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select

from recommender.database import DEFAULT_TENANT, Database, EventRow
from recommender.models import EventType, InteractionEvent

# A user's newest events (building the statement cost more than running it against SQLite).
_HISTORY = (
    select(EventRow.product_id, EventRow.event_type, EventRow.value, EventRow.occurred_at)
    .where(EventRow.tenant == bindparam("tenant"), EventRow.user_id == bindparam("user_id"))
    .order_by(EventRow.occurred_at.desc(), EventRow.event_id.desc())
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class StoredEvent:
    user_id: str
    product_id: str
    event_type: EventType
    value: float | None
    occurred_at: datetime


@dataclass(frozen=True)
class SearchChoice:
    user_id: str
    query: str
    product_id: str  # clicked, put in the cart or bought after the search


# The actions that say a search found what the shopper wanted (a view may be a glance at a wrong answer).
SEARCH_CHOICES = (EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)


@dataclass(frozen=True)
class AttributedEvent:
    recommendation_id: str
    user_id: str
    product_id: str
    event_type: EventType
    value: float | None
    attribution: str


@dataclass(frozen=True)
class ItemActivity:
    product_id: str
    users: int
    first_seen: datetime
    last_seen: datetime


class EventStore:
    """One tenant's events: every read and write is limited to ``tenant``'s rows."""

    def __init__(self, database: Database, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self.tenant = tenant
        self._mine = EventRow.tenant == tenant
        # Bumped on every write from this process: caches of aggregates compare it to know they are stale.
        self.generation = 0

    def add(
        self,
        events: Sequence[InteractionEvent],
        links: Sequence[tuple[str | None, str | None]] | None = None,
        queries: Sequence[str | None] | None = None,
    ) -> int:
        """Store the events; ``links``: per event, the served list it is attributed to and by which rule;
        ``queries``: per event, the search it came from (else the event's own ``query``)."""
        received_at = datetime.now(UTC)
        links = links or [(None, None)] * len(events)
        queries = queries or [event.query for event in events]
        rows = [
            EventRow(
                tenant=self.tenant,
                user_id=event.user_id,
                product_id=event.product_id,
                event_type=event.event_type.value,
                value=event.value,
                occurred_at=event.timestamp,
                received_at=received_at,
                recommendation_id=recommendation_id,
                attribution=rule,
                query=query,
            )
            for event, (recommendation_id, rule), query in zip(events, links, queries, strict=True)
        ]
        self._database.run(lambda session: session.add_all(rows))
        self.generation += 1
        return len(rows)

    def history(self, user_id: str, limit: int) -> list[StoredEvent]:
        """The user's most recent events, newest first."""
        # Columns, not ORM objects, and a statement built once: this read is on every personalised request.
        rows = self._database.run(
            lambda session: session.execute(
                _HISTORY, {"tenant": self.tenant, "user_id": user_id, "limit": limit}
            ).all()
        )
        return [
            StoredEvent(user_id, product_id, EventType(kind), value, occurred_at)
            for product_id, kind, value, occurred_at in rows
        ]

    def products_with_events(self, user_id: str, event_types: Sequence[EventType]) -> set[str]:
        # No DISTINCT: with it SQLite reads the (tenant, product) index, every event of the shop in product
        # order, instead of this user's rows through (tenant, user, time): 126 ms against 0.5 ms for one
        # ML-100k user, on every request of a user whose history is longer than the history limit.
        statement = select(EventRow.product_id).where(
            self._mine,
            EventRow.user_id == user_id,
            EventRow.event_type.in_([kind.value for kind in event_types]),
        )
        return set(self._database.run(lambda session: list(session.scalars(statement))))

    def most_popular(self, limit: int) -> list[tuple[str, int]]:
        """(product id, number of distinct users) pairs, most popular first."""
        users = func.count(func.distinct(EventRow.user_id))
        statement = (
            select(EventRow.product_id, users)
            .where(self._mine)
            .group_by(EventRow.product_id)
            .order_by(users.desc(), EventRow.product_id)
            .limit(limit)
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        return [(product_id, int(count)) for product_id, count in rows]

    def item_activity(self) -> list[ItemActivity]:
        """Per product: distinct users, first and last event time."""
        statement = (
            select(
                EventRow.product_id,
                func.count(func.distinct(EventRow.user_id)),
                func.min(EventRow.occurred_at),
                func.max(EventRow.occurred_at),
            )
            .where(self._mine)
            .group_by(EventRow.product_id)
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        return [
            ItemActivity(pid, int(users), _aware(first), _aware(last)) for pid, users, first, last in rows
        ]

    def recent_users(self, since: datetime) -> dict[str, int]:
        """Distinct users per product among events at or after ``since``."""
        statement = (
            select(EventRow.product_id, func.count(func.distinct(EventRow.user_id)))
            .where(self._mine, EventRow.occurred_at >= since)
            .group_by(EventRow.product_id)
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        return {product_id: int(users) for product_id, users in rows}

    def all_user_ids(self) -> list[str]:
        statement = select(EventRow.user_id).where(self._mine).distinct().order_by(EventRow.user_id)
        return list(self._database.run(lambda session: list(session.scalars(statement))))

    def engagement_sequences(self) -> dict[str, list[str]]:
        """Every user's products in time order, every event type, without immediate repeats: what the
        user engaged with next, which the sequence model learns (a low rating was still watched or
        bought; the text profile and the ranker read its sign)."""
        statement = (
            select(EventRow.user_id, EventRow.product_id)
            .where(self._mine)
            .order_by(EventRow.user_id, EventRow.occurred_at, EventRow.event_id)
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        sequences: dict[str, list[str]] = {}
        for user_id, product_id in rows:
            sequence = sequences.setdefault(user_id, [])
            if not sequence or sequence[-1] != product_id:
                sequence.append(product_id)
        return sequences

    def search_choices(self, limit: int) -> list[SearchChoice]:
        """The newest ``limit`` clicks, add-to-carts and purchases that came from a search, oldest first:
        what this shop's shoppers chose after which query."""
        statement = (
            select(EventRow.user_id, EventRow.query, EventRow.product_id)
            .where(
                self._mine,
                EventRow.query.is_not(None),
                EventRow.event_type.in_([kind.value for kind in SEARCH_CHOICES]),
            )
            .order_by(EventRow.occurred_at.desc(), EventRow.event_id.desc())
            .limit(limit)
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        return [
            SearchChoice(user_id, query or "", product_id) for user_id, query, product_id in reversed(rows)
        ]

    def searches_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's events that came from a search, with the query, newest first (the user's data)."""
        statement = (
            select(EventRow.query, EventRow.product_id, EventRow.event_type, EventRow.occurred_at)
            .where(self._mine, EventRow.user_id == user_id, EventRow.query.is_not(None))
            .order_by(EventRow.occurred_at.desc(), EventRow.event_id.desc())
        )
        rows = self._database.run(lambda session: list(session.execute(statement)))
        return [
            {"query": query, "product_id": product_id, "event_type": kind, "occurred_at": occurred_at}
            for query, product_id, kind, occurred_at in rows
        ]

    def all_events(self) -> list[StoredEvent]:
        """Every event, oldest first (training reads them to cut each user's history at a moment)."""
        statement = select(EventRow).where(self._mine).order_by(EventRow.occurred_at, EventRow.event_id)
        rows = self._database.run(lambda session: list(session.scalars(statement)))
        return [
            StoredEvent(row.user_id, row.product_id, EventType(row.event_type), row.value, row.occurred_at)
            for row in rows
        ]

    def delete_user(self, user_id: str) -> int:
        """Erase every event of a user; returns how many there were."""
        statement = delete(EventRow).where(self._mine, EventRow.user_id == user_id)
        removed = self._database.run(lambda session: session.execute(statement).rowcount)  # type: ignore[attr-defined]
        self.generation += 1
        self._database.purge_deleted()
        return int(removed or 0)

    def attributed_to(self, recommendation_ids: Sequence[str]) -> list[AttributedEvent]:
        """The events attributed to these lists."""
        found: list[AttributedEvent] = []
        ids = list(recommendation_ids)
        for start in range(0, len(ids), 500):
            statement = select(
                EventRow.recommendation_id,
                EventRow.user_id,
                EventRow.product_id,
                EventRow.event_type,
                EventRow.value,
                EventRow.attribution,
            ).where(self._mine, EventRow.recommendation_id.in_(ids[start : start + 500]))
            rows: list[Any] = self._database.run(
                lambda session, statement=statement: list(session.execute(statement))  # type: ignore[misc]
            )
            found.extend(
                AttributedEvent(rid, user, product, EventType(kind), value, rule)
                for rid, user, product, kind, value, rule in rows
            )
        return found

    def count(self) -> int:
        total = self._database.run(
            lambda session: session.scalar(select(func.count(EventRow.event_id)).where(self._mine))
        )
        return int(total or 0)

    def fingerprint(self) -> tuple[int, int]:
        """How many events there are and the newest event id: equal only if no event was added or erased
        since (by any process). Cheap next to the aggregates it lets a cache skip."""
        statement = select(func.count(EventRow.event_id), func.max(EventRow.event_id)).where(self._mine)
        count, newest = self._database.run(lambda session: session.execute(statement).one())
        return int(count or 0), int(newest or 0)

    def ping(self) -> None:
        self._database.run(lambda session: session.execute(select(1)))


def _aware(value: datetime) -> datetime:
    """Aggregates bypass the column type's conversion on some drivers: make naive UTC values aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
