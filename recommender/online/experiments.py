"""A/B experiments: arms are pipeline configurations, users are assigned by a stable hash, and the report
compares what shoppers did with each arm's lists.

An arm is a named variant (``{"variant": "popular"}``, the names `recommender eval --variants` uses), a raw
set of pipeline settings (``{"diversity": "mmr"}``), or both (the raw settings change the variant). The
user's arm is the bucket of sha256(experiment, user id) in the traffic shares, so a user keeps their arm
for the whole experiment. Requests without a user id are not in experiments. At most one running
experiment per placement (one without a placement covers every placement).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, Database, ExperimentRow
from recommender.errors import ConflictError, InvalidInputError, NotFoundError
from recommender.pipeline.merchandising import Placement
from recommender.pipeline.variants import VARIANTS
from recommender.settings import PipelineConfig

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class ExperimentState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    ARCHIVED = "archived"


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Name
    placement: Placement | None = Field(default=None, description="None: every placement.")
    arms: dict[Name, dict[str, Any]] = Field(
        min_length=2,
        max_length=10,
        description='Each arm: {} (the served configuration), {"variant": NAME}, or pipeline settings. The '
        'arm named "control" (else the first) is what the others are compared with.',
    )
    traffic: dict[Name, float] = Field(
        description="Each arm's share of the users, in percent; they sum to 100."
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentIn:
        if set(self.traffic) != set(self.arms):
            missing = sorted(set(self.arms) - set(self.traffic))
            extra = sorted(set(self.traffic) - set(self.arms))
            raise ValueError(
                f"traffic must name every arm and only them (missing {missing}, unknown {extra})"
            )
        if any(share <= 0 for share in self.traffic.values()):
            raise ValueError("every arm's traffic share must be above 0")
        if abs(sum(self.traffic.values()) - 100.0) > 1e-6:
            raise ValueError(f"traffic shares must sum to 100, not {sum(self.traffic.values()):g}")
        for arm, overrides in self.arms.items():
            pipeline_changes(overrides, where=f"arms.{arm}")
        return self

    @property
    def control(self) -> str:
        return "control" if "control" in self.arms else next(iter(self.arms))


class Experiment(ExperimentIn):
    state: ExperimentState = ExperimentState.RUNNING
    created_at: datetime | None = None
    stopped_at: datetime | None = None

    def arm_of(self, user_id: str) -> str:
        """The user's arm: a stable bucket in [0, 100) from the experiment's name and the user id."""
        digest = hashlib.sha256(f"{self.name}\x00{user_id}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64 * 100.0
        edge = 0.0
        for arm in self.arms:
            edge += self.traffic[arm]
            if bucket < edge:
                return arm
        return next(reversed(self.arms))

    def covers(self, placement: str) -> bool:
        return self.placement is None or self.placement == placement


def pipeline_changes(overrides: dict[str, Any], where: str = "arm") -> dict[str, Any]:
    """The pipeline settings an arm changes, checked against the pipeline's settings."""
    changes = dict(overrides)
    variant = changes.pop("variant", None)
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"{where}: unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
        changes = {**VARIANTS[variant], **changes}
    unknown = sorted(set(changes) - set(PipelineConfig.model_fields))
    if unknown:
        raise ValueError(f"{where}: {unknown} are not pipeline settings")
    try:
        PipelineConfig.model_validate({**PipelineConfig().model_dump(), **changes})
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"{where}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from error
    return changes


class ExperimentStore:
    """One tenant's experiments."""

    def __init__(self, database: Database, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self.tenant = tenant
        self.generation = 0

    def create(self, experiment: ExperimentIn) -> Experiment:
        created = Experiment(**experiment.model_dump(), created_at=datetime.now(UTC))

        def write(session: Session) -> None:
            rows = session.scalars(select(ExperimentRow).where(ExperimentRow.tenant == self.tenant)).all()
            if any(row.name == created.name for row in rows):
                raise ConflictError(
                    f"an experiment named {created.name!r} exists already", holder=created.name
                )
            for row in rows:
                overlaps = (
                    row.placement is None or created.placement is None or row.placement == created.placement
                )
                if row.state == ExperimentState.RUNNING.value and overlaps:
                    raise ConflictError(
                        f"experiment {row.name!r} is running on {row.placement or 'every placement'}: "
                        "stop it first (one running experiment per placement)",
                        holder=row.name,
                    )
            session.add(
                ExperimentRow(
                    tenant=self.tenant,
                    name=created.name,
                    placement=created.placement,
                    arms=created.arms,
                    traffic=created.traffic,
                    state=created.state.value,
                    created_at=created.created_at,
                )
            )

        self._database.run(write)
        self.generation += 1
        return created

    def all(self) -> list[Experiment]:
        statement = (
            select(ExperimentRow)
            .where(ExperimentRow.tenant == self.tenant)
            .order_by(ExperimentRow.created_at)
        )
        return self._database.run(lambda session: [_experiment(row) for row in session.scalars(statement)])

    def get(self, name: str) -> Experiment:
        found = next((experiment for experiment in self.all() if experiment.name == name), None)
        if found is None:
            raise NotFoundError("experiment", name)
        return found

    def set_state(self, name: str, state: ExperimentState) -> Experiment:
        def write(session: Session) -> None:
            row = session.get(ExperimentRow, (self.tenant, name))
            if row is None:
                raise NotFoundError("experiment", name)
            if row.state == ExperimentState.ARCHIVED.value and state is not ExperimentState.ARCHIVED:
                raise InvalidInputError(f"experiment {name!r} is archived", field="state")
            row.state = state.value
            if state is not ExperimentState.RUNNING and row.stopped_at is None:
                row.stopped_at = datetime.now(UTC)

        self._database.run(write)
        self.generation += 1
        return self.get(name)


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(
        name=row.name,
        placement=row.placement,
        arms=row.arms,
        traffic=row.traffic,
        state=ExperimentState(row.state),
        created_at=row.created_at,
        stopped_at=row.stopped_at,
    )


@dataclass(frozen=True)
class Assignment:
    experiment: str
    arm: str
    changes: dict[str, Any]


class Experiments:
    """The running experiments of one tenant, cached like the rules; picks a request's arm."""

    def __init__(
        self, store: ExperimentStore, refresh_seconds: float, clock: Callable[[], float] = time.monotonic
    ):
        self.store = store
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._running: list[Experiment] = []
        self._loaded_at = -float("inf")
        self._generation = -1

    def assign(self, user_id: str | None, placement: str) -> Assignment | None:
        if not user_id:
            return None
        for experiment in self._current():
            if experiment.covers(placement):
                arm = experiment.arm_of(user_id)
                return Assignment(experiment.name, arm, pipeline_changes(experiment.arms[arm]))
        return None

    def _current(self) -> list[Experiment]:
        with self._lock:
            if self._clock() - self._loaded_at > self._refresh or self._generation != self.store.generation:
                self._generation = self.store.generation
                self._running = [e for e in self.store.all() if e.state is ExperimentState.RUNNING]
                self._loaded_at = self._clock()
            return self._running
