"""Bulk catalog import: read a file, validate each row, write good rows in batches, record progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from recommender.catalog import Catalog
from recommender.catalog_files import CatalogFormat, RawRow, parse_product_row, read_rows
from recommender.errors import RecommenderError
from recommender.jobs import JobState, JobStore, RowError
from recommender.models import Product

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class ImportSummary:
    processed: int
    succeeded: int
    failed: int
    embedded: int
    unchanged: int


class CatalogImporter:
    def __init__(self, catalog: Catalog, jobs: JobStore, max_text_chars: int, batch_size: int = 256) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._max_text_chars = max_text_chars
        self._batch_size = batch_size

    def run_job(
        self, job_id: str, path: Path, file_format: CatalogFormat, on_progress: ProgressCallback | None = None
    ) -> ImportSummary:
        """Import a file under a job record. Bad rows are reported; a failure of the whole job is recorded."""
        self._jobs.start(job_id)
        try:
            summary = self._import(job_id, path, file_format, on_progress)
        except RecommenderError as error:
            self._jobs.finish(job_id, JobState.FAILED, str(error))
            raise
        message = f"{summary.succeeded} rows imported, {summary.failed} rejected"
        self._jobs.finish(job_id, JobState.SUCCEEDED, message)
        self._catalog.optimize_in_background()
        return summary

    def _import(
        self, job_id: str, path: Path, file_format: CatalogFormat, on_progress: ProgressCallback | None
    ) -> ImportSummary:
        totals = {"succeeded": 0, "failed": 0, "embedded": 0, "unchanged": 0}
        for products, errors in self._batches(read_rows(path, file_format)):
            result = self._catalog.upsert(products)
            self._jobs.add_progress(job_id, len(products), result.embedded, result.unchanged, errors)
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
            parsed = row if isinstance(row, RowError) else parse_product_row(row, self._max_text_chars)
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
