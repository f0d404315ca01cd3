"""Rows of any supported catalog file, in the product's field names, ready for validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recommender.intake.feeds.google_merchant import merchant_product, read_xml_items
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.feeds.shopify import SKIPPED_STATUSES, group_by_handle, shopify_product
from recommender.intake.files import REQUIRED_COLUMN, CatalogFormat, RawRow, read_rows
from recommender.intake.jobs import RowError


class ProductRows:
    """Iterates a catalog file as product rows; ``left_out`` collects the columns that matched no field
    (reported once for the whole file)."""

    def __init__(
        self,
        path: Path,
        file_format: CatalogFormat,
        mapping: FieldMapping | None = None,
        max_parquet_bytes: int | None = None,
    ) -> None:
        self._path = path
        self._format = file_format
        self._mapping = mapping or FieldMapping()
        self._max_parquet_bytes = max_parquet_bytes
        self.left_out: set[str] = set()

    def __iter__(self) -> Iterator[RawRow | RowError]:
        if self._format is CatalogFormat.GOOGLE_MERCHANT:
            return self._merchant()
        if self._format is CatalogFormat.SHOPIFY:
            return self._shopify()
        return self._mapped()

    def _mapped(self) -> Iterator[RawRow | RowError]:
        sources = {source for source, target in self._mapping.columns.items() if target == REQUIRED_COLUMN}
        id_columns = frozenset({REQUIRED_COLUMN, "id", *sources})
        for row in read_rows(self._path, self._format, self._max_parquet_bytes, id_columns):
            if isinstance(row, RowError):
                yield row
                continue
            fields, left_out = self._mapping.apply(row.fields)
            self.left_out |= left_out
            yield RawRow(row.line, fields)

    def _merchant(self) -> Iterator[RawRow | RowError]:
        if self._path.suffix.lower() == ".xml":
            items: Iterator[tuple[int, dict]] = read_xml_items(self._path)
        else:
            items = self._table_rows(frozenset({"id"}))
        for line, raw in items:
            if isinstance(raw, RowError):
                yield raw
                continue
            fields, left_out = merchant_product(raw)
            self.left_out |= left_out
            yield RawRow(line, fields)

    def _shopify(self) -> Iterator[RawRow | RowError]:
        errors: list[RowError] = []

        def table() -> Iterator[tuple[int, dict]]:
            for line, raw in self._table_rows(frozenset({"Handle"})):
                if isinstance(raw, RowError):
                    errors.append(raw)
                else:
                    yield line, raw

        for line, group in group_by_handle(table()):
            yield from errors
            errors.clear()
            status = str(group[0].get("Status", "")).strip().lower()
            if status in SKIPPED_STATUSES:
                yield RowError(
                    line, "Status", f"{status} product skipped", str(group[0].get("Handle", ""))[:256]
                )
                continue
            yield RawRow(line, shopify_product(group))
        yield from errors

    def _table_rows(self, id_columns: frozenset[str]) -> Iterator[tuple[int, dict]]:
        for row in read_rows(self._path, CatalogFormat.CSV, None, id_columns):
            if isinstance(row, RowError):
                yield row.line, row  # type: ignore[misc]
            else:
                yield row.line, row.fields
