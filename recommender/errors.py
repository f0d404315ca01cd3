"""Typed errors of the core. The API maps each to one HTTP status, in one place."""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class for errors the core raises on purpose."""


class NotFoundError(RecommenderError):
    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"unknown {kind}: {identifier!r}")
        self.kind = kind
        self.identifier = identifier


class InvalidInputError(RecommenderError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DependencyUnavailableError(RecommenderError):
    """A backing service (vector store, event store, broker) cannot be reached or refused the call."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason


class ConfigurationError(RecommenderError):
    """Bad or inconsistent configuration, detected at start-up."""


class StoreLockedError(ConfigurationError):
    """The embedded store is already open in another process."""
