"""Named leases in the event store's database: one holder at a time across processes, with an expiry
so that a holder that died does not block the next one forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, Database, LockRow
from recommender.errors import ConflictError

TRAINING = "training"


class Leases:
    """One tenant's leases: each tenant trains on its own, one run at a time."""

    def __init__(self, database: Database, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self.tenant = tenant

    def _key(self, name: str) -> str:
        return name if self.tenant == DEFAULT_TENANT else f"{name}@{self.tenant}"

    def acquire(self, name: str, holder: str, ttl_seconds: float) -> None:
        """Take (or, for the same holder, extend) the lease, or raise ConflictError naming its holder."""
        now = datetime.now(UTC)
        shown, name = name, self._key(name)

        def take(session: Session) -> str | None:
            row = session.get(LockRow, name)
            if row is not None and row.expires_at > now and row.holder != holder:
                return row.holder
            if row is not None:
                session.delete(row)
                session.flush()
            session.add(LockRow(name=name, holder=holder, expires_at=now + timedelta(seconds=ttl_seconds)))
            return None

        try:
            current = self._database.run(take)
        except IntegrityError:
            current = self.holder(shown) or "(another process)"  # both inserted at once; the other won
        if current is not None:
            raise ConflictError(f"a {shown} run is already in progress: {current}", holder=current)

    def release(self, name: str, holder: str | None = None) -> None:
        """Give the lease back (only if ``holder`` still holds it, when given)."""
        statement = delete(LockRow).where(LockRow.name == self._key(name))
        if holder is not None:
            statement = statement.where(LockRow.holder == holder)
        self._database.run(lambda session: session.execute(statement))

    def holder(self, name: str) -> str | None:
        def read(session: Session) -> str | None:
            row = session.get(LockRow, self._key(name))
            return row.holder if row is not None and row.expires_at > datetime.now(UTC) else None

        return self._database.run(read)
