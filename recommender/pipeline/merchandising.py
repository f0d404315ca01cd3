"""Merchandising rules: standing decisions a merchandiser makes once per placement, applied after ranking
in every list of that placement (the API, the web page, the evaluation).

- ``pin``: a product at a position (1-based), whatever ranking says;
- ``boost`` / ``bury``: products matching a filter (or one product) move up or down: a factor f divides
  (boost) or multiplies (bury) their rank, so boost 2 takes rank 10 to about 5;
- ``block``: a product, or every product matching a filter, is never shown.

Each may have a start and an end. A rule with no placement applies to every placement.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, Database, MerchRuleRow
from recommender.errors import NotFoundError
from recommender.models import Identifier, ProductFilter
from recommender.store.base import VectorStore
from recommender.store.conditions import conditions_for

Placement = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
DEFAULT_PLACEMENT = "default"
# The chat's alternatives ("anything cheaper?") leave out what rules block on this placement (or on all).
CHAT_PLACEMENT = "chat"
# A filter is resolved to its matching products through the store, at most this often (catalog changes
# in another process show within this time).
MATCHES_MAX_AGE_SECONDS = 60.0


class RuleAction(StrEnum):
    PIN = "pin"
    BOOST = "boost"
    BURY = "bury"
    BLOCK = "block"


class MerchRule(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rule_id: str | None = Field(default=None, description="Made by the service.")
    placement: Placement | None = Field(default=None, description="None: every placement.")
    action: RuleAction
    product_id: Identifier | None = None
    position: int | None = Field(default=None, ge=1, le=200, description="pin: the 1-based position.")
    filter: ProductFilter | None = Field(default=None, description="boost, bury, block: which products.")
    factor: float | None = Field(default=None, gt=1, le=1000, description="boost, bury: how far they move.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> MerchRule:
        if self.action is RuleAction.PIN and (self.product_id is None or self.position is None):
            raise ValueError("a pin needs product_id and position")
        if self.action is not RuleAction.PIN and self.position is not None:
            raise ValueError("only a pin has a position")
        if self.action is not RuleAction.PIN and (self.product_id is None) == (self.filter is None):
            raise ValueError(f"a {self.action.value} rule needs either product_id or filter")
        if self.action in (RuleAction.BOOST, RuleAction.BURY) and self.factor is None:
            raise ValueError(f"a {self.action.value} rule needs a factor above 1")
        if self.action in (RuleAction.PIN, RuleAction.BLOCK) and self.factor is not None:
            raise ValueError(f"a {self.action.value} rule has no factor")
        for name in ("starts_at", "ends_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                setattr(self, name, moment.replace(tzinfo=UTC))
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def live(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )

    def applies_to(self, placement: str) -> bool:
        return self.placement is None or self.placement == placement

    @property
    def label(self) -> str:
        return f"{self.action.value} rule {self.rule_id}"


class RuleStore:
    """One tenant's rules in the event store's database."""

    def __init__(self, database: Database, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self.tenant = tenant
        # Bumped on this process's changes: the rule book reloads at once instead of at its next refresh.
        self.generation = 0

    def add(self, rule: MerchRule) -> MerchRule:
        stored = rule.model_copy(update={"rule_id": uuid.uuid4().hex[:16]})
        row = MerchRuleRow(
            rule_id=stored.rule_id,
            tenant=self.tenant,
            placement=stored.placement,
            action=stored.action.value,
            product_id=stored.product_id,
            position=stored.position,
            filter=stored.filter.model_dump(exclude_defaults=True) if stored.filter else None,
            factor=stored.factor,
            starts_at=stored.starts_at,
            ends_at=stored.ends_at,
            created_at=datetime.now(UTC),
        )
        self._database.run(lambda session: session.add(row))
        self.generation += 1
        return stored

    def all(self) -> list[MerchRule]:
        statement = (
            select(MerchRuleRow).where(MerchRuleRow.tenant == self.tenant).order_by(MerchRuleRow.created_at)
        )
        return self._database.run(lambda session: [_rule(row) for row in session.scalars(statement)])

    def delete(self, rule_id: str) -> None:
        def remove(session: Session) -> int:
            result = session.execute(
                delete(MerchRuleRow).where(
                    MerchRuleRow.tenant == self.tenant, MerchRuleRow.rule_id == rule_id
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        if not self._database.run(remove):
            raise NotFoundError("rule", rule_id)
        self.generation += 1


def _rule(row: MerchRuleRow) -> MerchRule:
    return MerchRule(
        rule_id=row.rule_id,
        placement=row.placement,
        action=RuleAction(row.action),
        product_id=row.product_id,
        position=row.position,
        filter=ProductFilter.model_validate(row.filter) if row.filter else None,
        factor=row.factor,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


@dataclass
class ActiveRules:
    """The rules live for one request, with each filter resolved to product ids."""

    blocked: set[str] = field(default_factory=set)
    pins: list[tuple[int, str, str]] = field(default_factory=list)  # (position, product id, label)
    moves: list[tuple[frozenset[str], float, str]] = field(default_factory=list)  # (ids, rank factor, label)

    def __bool__(self) -> bool:
        return bool(self.blocked or self.pins or self.moves)

    def reorder(self, product_ids: Sequence[str]) -> tuple[list[int], dict[str, str]]:
        """Indexes of ``product_ids`` in their order after boosts and buries, and the moved products'
        rule labels. A product's key is its rank times the factors of its bury rules, divided by those of
        its boost rules; ties keep the ranking's order."""
        keys, moved = [], {}
        for index, product_id in enumerate(product_ids):
            key = float(index + 1)
            for ids, factor, label in self.moves:
                if product_id in ids:
                    key *= factor
                    moved[product_id] = label
            keys.append((key, index))
        return [index for _, index in sorted(keys)], moved


class RuleBook:
    """The live rules of one tenant, cached: re-read every ``refresh_seconds`` (another process's changes
    show within that time), at once after this process's changes."""

    def __init__(
        self,
        store: RuleStore,
        products: VectorStore,
        catalog_generation: Callable[[], int],
        refresh_seconds: float,
    ) -> None:
        self._store = store
        self._products = products
        self._catalog_generation = catalog_generation
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._rules: list[MerchRule] = []
        self._loaded_at = -float("inf")
        self._loaded_generation = -1
        self._matches: dict[str, frozenset[str]] = {}
        self._matches_key: tuple[int, float] = (-1, -float("inf"))

    def active(self, placement: str, now: datetime | None = None) -> ActiveRules:
        now = now or datetime.now(UTC)
        rules = [rule for rule in self._current() if rule.applies_to(placement) and rule.live(now)]
        active = ActiveRules()
        for rule in rules:
            ids = frozenset([rule.product_id]) if rule.product_id else self._matching(rule)
            if rule.action is RuleAction.BLOCK:
                active.blocked |= ids
            elif rule.action is RuleAction.PIN:
                assert rule.product_id is not None and rule.position is not None
                active.pins.append((rule.position, rule.product_id, rule.label))
            else:
                assert rule.factor is not None
                factor = 1.0 / rule.factor if rule.action is RuleAction.BOOST else rule.factor
                active.moves.append((ids, factor, rule.label))
        active.pins = [pin for pin in sorted(active.pins) if pin[1] not in active.blocked]
        return active

    def _current(self) -> list[MerchRule]:
        with self._lock:
            stale = time.monotonic() - self._loaded_at > self._refresh
            if stale or self._loaded_generation != self._store.generation:
                self._loaded_generation = self._store.generation
                self._rules = self._store.all()
                self._loaded_at = time.monotonic()
            return self._rules

    def _matching(self, rule: MerchRule) -> frozenset[str]:
        key = (self._catalog_generation(), time.monotonic() // MATCHES_MAX_AGE_SECONDS)
        with self._lock:
            if key != self._matches_key:
                self._matches, self._matches_key = {}, key
            cache_key = rule.model_dump_json(include={"filter"})
            found = self._matches.get(cache_key)
            if found is None:
                found = self._matches[cache_key] = self._scan(rule.filter)
            return found

    def _scan(self, product_filter: ProductFilter | None) -> frozenset[str]:
        conditions = conditions_for(product_filter)
        ids: set[str] = set()
        offset: str | None = None
        while True:
            page, offset = self._products.scroll(1000, offset, conditions)
            ids.update(str(point.payload.get("product_id")) for point in page)
            if offset is None or not page:
                return frozenset(ids)
