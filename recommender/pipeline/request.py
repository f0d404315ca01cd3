"""What a caller asks the pipeline for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from recommender.events import StoredEvent
from recommender.models import ProductFilter

ContextValue = str | int | float


@dataclass
class PipelineRequest:
    """A user, a query, session clicks or examples (the most specific present decides the sources).

    ``history`` replaces the user's stored events (newest first): training and evaluation use it to ask
    what the pipeline would have answered at an earlier moment, so that no later event leaks in.
    ``context`` carries request context: ``hour`` (0-23), ``weekday`` (0 = Monday), ``channel``,
    ``device`` or any key a trained ranker declared; ``time`` (a datetime) fills hour and weekday.
    """

    k: int
    user_id: str | None = None
    query: str | None = None
    session: Sequence[str] = ()
    positive: Sequence[str] = ()
    negative: Sequence[str] = ()
    filters: ProductFilter | None = None
    context: dict[str, ContextValue] = field(default_factory=dict)
    exclude: Sequence[str] = ()
    history: list[StoredEvent] | None = None
    time: datetime | None = None
    rerank: bool = False
    explain: bool = False
    language: str = "en"
    # Where the list is shown (home, product, cart, email...): merchandising rules and experiments are per
    # placement.
    placement: str = "default"

    @property
    def personal(self) -> bool:
        """No query, session or examples: the configured personal sources answer."""
        return not (self.query or self.session or self.positive or self.negative)
