"""The relational database behind the event store, import jobs, leases and conversations (SQLAlchemy 2):
its tables, the connection, and the schema's migrations (Alembic)."""

from recommender.database.connection import CONNECTION_ERRORS, Database
from recommender.database.tables import (
    DEFAULT_TENANT,
    Base,
    ConversationRow,
    EventRow,
    ImportJobRow,
    LockRow,
    UtcDateTime,
)

__all__ = [
    "CONNECTION_ERRORS",
    "DEFAULT_TENANT",
    "Base",
    "ConversationRow",
    "Database",
    "EventRow",
    "ImportJobRow",
    "LockRow",
    "UtcDateTime",
]
