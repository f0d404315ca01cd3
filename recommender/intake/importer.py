"""Bulk catalog import: read a file, validate each row, write good rows in batches, record progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recommender.catalog import Catalog
from recommender.errors import DependencyUnavailableError, RecommenderError
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat, RawRow, count_rows, parse_product_row
from recommender.intake.jobs import ImportJob, JobState, JobStore, RowError
from recommender.intake.rows import ProductRows
from recommender.models import Product
from recommender.telemetry import IMPORT_ROWS

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class ImportSummary:
    processed: int
    succeeded: int
    failed: int
    embedded: int
    unchanged: int


# An upload younger than this may still be waiting for its job row to be written.
ORPHAN_GRACE = timedelta(minutes=10)


class CatalogImporter:
    def __init__(
        self,
        catalog: Catalog,
        jobs: JobStore,
        batch_size: int = 256,
        upload_retention_hours: float = 0,
        max_parquet_bytes: int | None = None,
        upload_dir: Path | None = None,
    ) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._batch_size = batch_size
        self._upload_retention_hours = upload_retention_hours
        self._max_parquet_bytes = max_parquet_bytes
        self._upload_dir = upload_dir

    def run_job(
        self,
        job_id: str,
        path: Path,
        file_format: CatalogFormat,
        on_progress: ProgressCallback | None = None,
        mapping: FieldMapping | None = None,
    ) -> ImportSummary:
        """Import a file under a job record. Bad rows are reported; a failure of the whole job is recorded.

        An uploaded file the job owns is deleted when the job has ended (unless uploads are kept for a
        while); a dependency that is down leaves it for the task's retry.
        """
        job = self._jobs.get(job_id)
        self._jobs.start(job_id)
        self._jobs.set_total(job_id, count_rows(path, file_format) if path.is_file() else None)
        try:
            rows = ProductRows(path, file_format, mapping, self._max_parquet_bytes)
            summary = self._import(job_id, rows, on_progress)
        except RecommenderError as error:
            self._jobs.finish(job_id, JobState.FAILED, str(error))
            if not isinstance(error, DependencyUnavailableError):
                self._release(job)
            raise
        message = f"{summary.succeeded} rows imported, {summary.failed} rejected"
        if rows.left_out:
            # Once for the file, not once per row; bounded, since column names come from the file.
            names = ", ".join(sorted(name[:64] for name in rows.left_out)[:20])
            more = f" and {len(rows.left_out) - 20} more" if len(rows.left_out) > 20 else ""
            message += f"; columns matching no field, left out: {names}{more} (map them with --map / mapping)"
        self._jobs.finish(job_id, JobState.SUCCEEDED, message)
        self._release(job)
        self._catalog.optimize_in_background()
        return summary

    def _release(self, job: ImportJob) -> None:
        if job.owns_file and job.path and self._upload_retention_hours == 0:
            Path(job.path).unlink(missing_ok=True)

    def delete_expired_uploads(self) -> int:
        """Uploads of ended jobs past their retention (e.g. kept for a while, or left by a crash), and files
        in the upload folder that no job reads, older than ``ORPHAN_GRACE`` (the process died between saving
        an upload and recording its job, or the job's row could not be written)."""
        cutoff = datetime.now(UTC) - timedelta(hours=self._upload_retention_hours)
        deleted = 0
        for job in self._jobs.ended_uploads(cutoff):
            if job.path and Path(job.path).exists():
                Path(job.path).unlink(missing_ok=True)
                deleted += 1
        if self._upload_dir is None or not self._upload_dir.is_dir():
            return deleted
        settled = time.time() - ORPHAN_GRACE.total_seconds()
        files = [
            path for path in self._upload_dir.iterdir() if path.is_file() and path.stat().st_mtime < settled
        ]
        known = self._jobs.known_paths([str(path) for path in files])
        for path in files:
            if str(path) not in known:
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def _import(self, job_id: str, rows: ProductRows, on_progress: ProgressCallback | None) -> ImportSummary:
        totals = {"succeeded": 0, "failed": 0, "embedded": 0, "unchanged": 0}
        for products, errors in self._batches(iter(rows)):
            result = self._catalog.upsert(products)
            self._jobs.add_progress(job_id, len(products), result.embedded, result.unchanged, errors)
            IMPORT_ROWS.labels(outcome="embedded").inc(result.embedded)
            IMPORT_ROWS.labels(outcome="unchanged").inc(result.unchanged)
            IMPORT_ROWS.labels(outcome="rejected").inc(len(errors))
            totals["succeeded"] += len(products)
            totals["failed"] += len(errors)
            totals["embedded"] += result.embedded
            totals["unchanged"] += result.unchanged
            if on_progress is not None:
                on_progress(len(products) + len(errors))
        return ImportSummary(totals["succeeded"] + totals["failed"], **totals)

    def _batches(self, rows: Iterator[RawRow | RowError]) -> Iterator[tuple[list[Product], list[RowError]]]:
        first_line_of: dict[str, int] = {}
        products: list[Product] = []
        errors: list[RowError] = []
        for row in rows:
            parsed = row if isinstance(row, RowError) else parse_product_row(row)
            if isinstance(parsed, Product):
                first_line = first_line_of.setdefault(parsed.product_id, row.line)
                if first_line != row.line:
                    parsed = RowError(
                        row.line,
                        "product_id",
                        f"duplicate product id; first seen on line {first_line}",
                        parsed.product_id,
                    )
            if isinstance(parsed, RowError):
                errors.append(parsed)
            else:
                products.append(parsed)
            if len(products) >= self._batch_size:
                yield products, errors
                products, errors = [], []
        if products or errors:
            yield products, errors
