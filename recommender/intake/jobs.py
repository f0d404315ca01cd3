"""Import-job records: state, counts and the per-row error report, kept in the database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from recommender.database import DEFAULT_TENANT, Database, ImportJobRow
from recommender.errors import NotFoundError

RESUMED_NOTE = "resumed after an interruption"
# A file with millions of bad rows keeps its counts exact but reports only the first errors in full.
MAX_REPORTED_ERRORS = 1000


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Was pending or running when the process that ran it died; resumed where its file still exists.
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    reason: str
    product_id: str | None = None


@dataclass
class ImportJob:
    job_id: str
    state: JobState
    source: str
    file_format: str
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    embedded: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    message: str = ""
    path: str | None = None
    owns_file: bool = False
    total: int | None = None
    mapping: dict[str, str] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def rate_per_second(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        elapsed = (end - self.started_at).total_seconds()
        return self.processed / elapsed if elapsed > 0 else None


class JobStore:
    """One tenant's import jobs: another tenant's job id is unknown here."""

    def __init__(self, database: Database, tenant: str = DEFAULT_TENANT) -> None:
        self._database = database
        self.tenant = tenant
        self._mine = ImportJobRow.tenant == tenant

    def create(
        self,
        source: str,
        file_format: str,
        path: str | None = None,
        owns_file: bool = False,
        mapping: dict[str, str] | None = None,
    ) -> ImportJob:
        """A pending job. ``path``: the file it reads; ``owns_file``: an upload, deleted when the job ends."""
        job_id = uuid.uuid4().hex
        row = ImportJobRow(
            job_id=job_id,
            tenant=self.tenant,
            state=JobState.PENDING.value,
            source=source,
            file_format=file_format,
            processed=0,
            succeeded=0,
            failed=0,
            embedded=0,
            unchanged=0,
            errors=[],
            message="",
            path=path,
            owns_file=int(owns_file),
            mapping=mapping or None,
            created_at=datetime.now(UTC),
        )
        self._database.run(lambda session: session.add(row))
        return self.get(job_id)

    def get(self, job_id: str) -> ImportJob:
        def load(session: Session) -> ImportJob:
            return _to_job(self._row(session, job_id))

        return self._database.run(load)

    def start(self, job_id: str) -> None:
        """Mark running and reset the counts: a retried task starts the file again (idempotently)."""

        def update(row: ImportJobRow) -> None:
            resumed = row.state == JobState.INTERRUPTED.value or row.message == RESUMED_NOTE
            row.state = JobState.RUNNING.value
            row.started_at = datetime.now(UTC)
            row.finished_at = None
            row.processed = row.succeeded = row.failed = row.embedded = row.unchanged = 0
            row.errors = []
            row.message = RESUMED_NOTE if resumed else ""

        self._update(job_id, update)

    def set_total(self, job_id: str, total: int | None) -> None:
        def update(row: ImportJobRow) -> None:
            row.total = total

        self._update(job_id, update)

    def add_progress(
        self, job_id: str, succeeded: int, embedded: int, unchanged: int, errors: list[RowError]
    ) -> None:
        def update(row: ImportJobRow) -> None:
            row.processed += succeeded + len(errors)
            row.succeeded += succeeded
            row.failed += len(errors)
            row.embedded += embedded
            row.unchanged += unchanged
            room = MAX_REPORTED_ERRORS - len(row.errors)
            if room > 0 and errors:
                row.errors = [*row.errors, *(error.__dict__ for error in errors[:room])]

        self._update(job_id, update)

    def finish(self, job_id: str, state: JobState, message: str = "") -> None:
        def update(row: ImportJobRow) -> None:
            row.state = state.value
            row.finished_at = datetime.now(UTC)
            row.message = f"{RESUMED_NOTE}: {message}" if row.message == RESUMED_NOTE else message

        self._update(job_id, update)

    def mark_interrupted(self) -> list[ImportJob]:
        """Jobs left pending or running by a process that died are marked interrupted; returns them.

        Only for a process that runs its jobs itself (no broker): with a broker, a worker elsewhere may
        still be running them, and the broker redelivers what a dead worker held.
        """

        def update(session: Session) -> list[ImportJob]:
            unfinished = (JobState.PENDING.value, JobState.RUNNING.value)
            rows = list(
                session.scalars(select(ImportJobRow).where(self._mine, ImportJobRow.state.in_(unfinished)))
            )
            for row in rows:
                row.state = JobState.INTERRUPTED.value
                row.message = "interrupted: the process running it stopped"
            return [_to_job(row) for row in rows]

        return self._database.run(update)

    def ended_uploads(self, finished_before: datetime) -> list[ImportJob]:
        """Ended jobs whose uploaded file is the service's to delete, finished before the given time."""
        statement = select(ImportJobRow).where(
            self._mine,
            ImportJobRow.owns_file == 1,
            ImportJobRow.state.in_([JobState.SUCCEEDED.value, JobState.FAILED.value]),
            ImportJobRow.finished_at < finished_before,
        )
        return self._database.run(lambda session: [_to_job(row) for row in session.scalars(statement)])

    def known_paths(self, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` that some job reads (or read)."""
        statement = select(ImportJobRow.path).where(self._mine, ImportJobRow.path.in_(list(paths)))
        return self._database.run(lambda session: {path for path in session.scalars(statement) if path})

    def _update(self, job_id: str, change: object) -> None:
        def apply(session: Session) -> None:
            change(self._row(session, job_id))  # type: ignore[operator]

        self._database.run(apply)

    def _row(self, session: Session, job_id: str) -> ImportJobRow:
        row = session.get(ImportJobRow, job_id)
        if row is None or row.tenant != self.tenant:
            raise NotFoundError("import job", job_id)
        return row


def _to_job(row: ImportJobRow) -> ImportJob:
    return ImportJob(
        job_id=row.job_id,
        state=JobState(row.state),
        source=row.source,
        file_format=row.file_format,
        processed=row.processed,
        succeeded=row.succeeded,
        failed=row.failed,
        embedded=row.embedded,
        unchanged=row.unchanged,
        errors=[RowError(**error) for error in row.errors or []],  # type: ignore[arg-type]
        message=row.message,
        path=row.path,
        owns_file=bool(row.owns_file),
        total=row.total,
        mapping=row.mapping,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
