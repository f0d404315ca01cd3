"""Typed errors of the core. The API maps each to one HTTP status, in one place.

Each error keeps its constructor arguments as ``args`` so that Celery can rebuild it from a result.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


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


class ConflictError(RecommenderError):
    """The work is already under way (e.g. a training run); ``holder`` identifies the running one."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message, holder)
        self.message = message
        self.holder = holder

    def __str__(self) -> str:
        return self.message


def unavailable(dependency: str, error: BaseException) -> DependencyUnavailableError:
    """The error a client sees: the dependency and a plain reason. The driver's own message (hosts, ports,
    SQL, paths) goes to the log only."""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    logger.warning("%s call failed: %s: %s", dependency, type(error).__name__, detail)
    lowered = f"{type(error).__name__} {detail}".lower()
    if "timeout" in lowered or "timed out" in lowered:
        reason = "timed out"
    elif any(word in lowered for word in ("connect", "refused", "unreachable", "resolve", "operational")):
        reason = "cannot connect"
    else:
        reason = "request failed"
    return DependencyUnavailableError(dependency, reason)


class ConfigurationError(RecommenderError):
    """Bad or inconsistent configuration, detected at start-up."""


class StoreLockedError(ConfigurationError):
    """The embedded store is already open in another process."""
