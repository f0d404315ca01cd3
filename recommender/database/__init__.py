"""The relational database behind the event store, import jobs, leases, conversations, served lists, rules
and experiments (SQLAlchemy 2): its tables, the connection, and the schema's migrations (Alembic)."""

from recommender.database.connection import CONNECTION_ERRORS, Database
from recommender.database.tables import (
    DEFAULT_TENANT,
    Base,
    ConversationRow,
    EventRow,
    ExperimentRow,
    ImportJobRow,
    LockRow,
    MerchRuleRow,
    ServedListRow,
    UtcDateTime,
)

__all__ = [
    "CONNECTION_ERRORS",
    "DEFAULT_TENANT",
    "Base",
    "ConversationRow",
    "Database",
    "EventRow",
    "ExperimentRow",
    "ImportJobRow",
    "LockRow",
    "MerchRuleRow",
    "ServedListRow",
    "UtcDateTime",
]
