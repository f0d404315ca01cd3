"""Where chat conversations live: the event store's database, so that a conversation survives a restart
and its next turn may reach any API process or replica. Each expires ``ttl_seconds`` after its last turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, ConversationRow, Database

# A conversation keeps its latest turns; older ones no longer reach the prompt (which reads the last 6).
KEPT_TURNS = 20


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass
class Conversation:
    caller: str  # the API key's id
    user_id: str | None
    turns: list[Turn] = field(default_factory=list)


class ConversationStore:
    """One tenant's conversations: another tenant's conversation id is unknown here."""

    def __init__(self, database: Database, ttl_seconds: float, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self._ttl = timedelta(seconds=ttl_seconds)
        self.tenant = tenant
        self._mine = ConversationRow.tenant == tenant

    def load(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None when it is unknown or expired."""

        def read(session: Session) -> Conversation | None:
            row = session.get(ConversationRow, conversation_id)
            if row is None or row.tenant != self.tenant or row.expires_at <= datetime.now(UTC):
                return None
            return Conversation(row.caller, row.user_id, [Turn(**turn) for turn in row.turns])

        return self._database.run(read)

    def save(self, conversation_id: str, conversation: Conversation) -> None:
        """Write the conversation (its latest turns) with a new expiry; expired ones are removed meanwhile."""
        now = datetime.now(UTC)
        turns = [{"role": turn.role, "content": turn.content} for turn in conversation.turns[-KEPT_TURNS:]]

        def write(session: Session) -> None:
            session.execute(delete(ConversationRow).where(ConversationRow.expires_at <= now))
            existing = session.get(ConversationRow, conversation_id)
            if existing is not None and existing.tenant != self.tenant:
                # Ids are 144 random bits made by the server: only a forged id gets here. Never overwrite.
                raise ValueError("conversation id belongs to another tenant")
            session.merge(
                ConversationRow(
                    conversation_id=conversation_id,
                    tenant=self.tenant,
                    caller=conversation.caller,
                    user_id=conversation.user_id,
                    turns=turns,
                    expires_at=now + self._ttl,
                )
            )

        self._database.run(write)

    def of_user(self, user_id: str) -> dict[str, list[Turn]]:
        """Every live conversation of a user (for an export of what is held about them)."""

        def read(session: Session) -> dict[str, list[Turn]]:
            rows = session.scalars(
                select(ConversationRow)
                .where(
                    self._mine,
                    ConversationRow.user_id == user_id,
                    ConversationRow.expires_at > datetime.now(UTC),
                )
                .order_by(ConversationRow.conversation_id)
            )
            return {row.conversation_id: [Turn(**turn) for turn in row.turns] for row in rows}

        return self._database.run(read)

    def forget_user(self, user_id: str) -> int:
        """Erase every conversation of the user, expired or not; returns how many were live."""
        live = len(self.of_user(user_id))
        self._database.run(
            lambda session: session.execute(
                delete(ConversationRow).where(self._mine, ConversationRow.user_id == user_id)
            )
        )
        self._database.purge_deleted()  # the erased turns must not linger in the write-ahead log
        return live
