"""Typed errors of the core. The API maps each to one HTTP status, in one place.

Each error keeps its constructor arguments as ``args`` so that Celery can rebuild it from a result.
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class for errors the core raises on purpose."""


class NotFoundError(RecommenderError):
    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(kind, identifier)
        self.kind = kind
        self.identifier = identifier

    def __str__(self) -> str:
        return f"unknown {self.kind}: {self.identifier!r}"


class InvalidInputError(RecommenderError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class DependencyUnavailableError(RecommenderError):
    """A backing service (vector store, event store, broker) cannot be reached or refused the call."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(dependency, reason)
        self.dependency = dependency
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.dependency} unavailable: {self.reason}"


class ConfigurationError(RecommenderError):
    """Bad or inconsistent configuration, detected at start-up."""


class StoreLockedError(ConfigurationError):
    """The embedded store is already open in another process."""
