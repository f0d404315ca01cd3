"""Reading catalog files (CSV, JSONL, Parquet) row by row, each row with its line number.

Rows come out as plain dicts or as a RowError; validation into Product happens in one place
(:func:`parse_product_row`), whatever the format.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recommender.errors import InvalidInputError
from recommender.intake.feeds.google_merchant import looks_like_merchant
from recommender.intake.feeds.shopify import looks_like_shopify
from recommender.intake.jobs import RowError
from recommender.models import Product

ATTRIBUTE_COLUMN_PREFIX = "attr."
REQUIRED_COLUMN = "product_id"
# A JSONL file none of whose first lines is a JSON object is not a catalog (reported once, not per line).
JSONL_PROBE_ROWS = 20
# csv's default limit (128 KiB) is below what an oversized row may hold; it is reported, not fatal.
csv.field_size_limit(16 * 1024 * 1024)


class CatalogFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    GOOGLE_MERCHANT = "google-merchant"
    SHOPIFY = "shopify"


FORMAT_NAMES = ", ".join(item.value for item in CatalogFormat)


@dataclass(frozen=True)
class RawRow:
    line: int
    fields: dict[str, Any]


def detect_format(path: Path, declared: str | None = None) -> CatalogFormat:
    """The declared format, else one told by the name and, for tables, by the header row: a Shopify
    export, a Google Merchant Center feed, or a plain catalog CSV/TSV."""
    if declared:
        try:
            return CatalogFormat(declared.lower())
        except ValueError:
            raise InvalidInputError(
                f"unknown catalog format {declared[:40]!r}; use one of {FORMAT_NAMES}", field="format"
            ) from None
    suffix = path.suffix.lower().lstrip(".")
    aliases = {
        "jsonl": CatalogFormat.JSONL,
        "ndjson": CatalogFormat.JSONL,
        "json": CatalogFormat.JSONL,
        "parquet": CatalogFormat.PARQUET,
        "pq": CatalogFormat.PARQUET,
        "xml": CatalogFormat.GOOGLE_MERCHANT,
        "csv": CatalogFormat.CSV,
        "tsv": CatalogFormat.CSV,
        "txt": CatalogFormat.CSV,
    }
    if suffix not in aliases:
        raise InvalidInputError(
            f"cannot tell the format of {path.name[:100]!r} from its extension; name it .csv, .tsv, .jsonl, "
            f".parquet or .xml, or give the format ({FORMAT_NAMES})",
            field="format",
        )
    detected = aliases[suffix]
    if detected is CatalogFormat.CSV and path.is_file():
        header = _header(path)
        if looks_like_shopify(header):
            return CatalogFormat.SHOPIFY
        if looks_like_merchant(header):
            return CatalogFormat.GOOGLE_MERCHANT
    return detected


def column_names(path: Path, file_format: CatalogFormat) -> list[str]:
    """A table file's column names, for an error that says which columns a file has (empty if unreadable)."""
    try:
        if file_format is CatalogFormat.PARQUET:
            import pyarrow.parquet as parquet

            return list(parquet.ParquetFile(path).schema_arrow.names)
        if file_format is CatalogFormat.JSONL:
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                for line in itertools.islice(handle, JSONL_PROBE_ROWS):
                    with contextlib.suppress(json.JSONDecodeError):
                        value = json.loads(line)
                        if isinstance(value, dict):
                            return list(value)
            return []
        return _header(path)
    except (OSError, ValueError):  # unreadable (pyarrow's errors are both): the error names no columns
        return []


def _header(path: Path) -> list[str]:
    first = _first_line(path)
    return [name.strip() for name in next(csv.reader([first], delimiter=_delimiter(first)), [])]


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        return handle.readline()


def _delimiter(first_line: str) -> str:
    return "\t" if first_line.count("\t") > first_line.count(",") else ","


def read_rows(
    path: Path,
    file_format: CatalogFormat,
    max_parquet_bytes: int | None = None,
    id_columns: frozenset[str] = frozenset({REQUIRED_COLUMN}),
) -> Iterator[RawRow | RowError]:
    """Rows of a table file (CSV or TSV, JSONL, Parquet) with their line numbers, as the file names its
    columns. A file that is not a catalog of its format (no column of ``id_columns``) fails whole, with one
    error that quotes none of its content."""
    if not path.is_file():
        raise InvalidInputError("no such file", field="path")
    if file_format is CatalogFormat.PARQUET:
        return _read_parquet(path, max_parquet_bytes, id_columns)
    if file_format is CatalogFormat.JSONL:
        return _read_jsonl(path)
    return _read_csv(path, id_columns)


def count_rows(path: Path, file_format: CatalogFormat) -> int | None:
    """Rows in a catalog file, for progress (non-empty lines; the Parquet footer); None if unreadable."""
    if file_format is CatalogFormat.SHOPIFY or path.suffix.lower() == ".xml":
        return None  # variants and images share products; XML items span lines: no cheap count
    try:
        if file_format is CatalogFormat.PARQUET:
            import pyarrow.parquet as parquet

            return int(parquet.ParquetFile(path).metadata.num_rows)
        with path.open("rb") as handle:
            lines = sum(1 for line in handle if line.strip())
    except Exception:
        return None
    has_header = file_format in (CatalogFormat.CSV, CatalogFormat.GOOGLE_MERCHANT)
    return max(0, lines - 1) if has_header else lines


def _has_id_column(names: list[str], id_columns: frozenset[str]) -> bool:
    wanted = {name.lower() for name in id_columns}
    return any(name.strip().lower().removeprefix("g:") in wanted for name in names)


def _has_undecodable_bytes(value: str) -> bool:
    return any("\udc80" <= character <= "\udcff" for character in value)


def _read_csv(path: Path, id_columns: frozenset[str]) -> Iterator[RawRow | RowError]:
    delimiter = _delimiter(_first_line(path))
    # surrogateescape keeps reading past bytes that are not UTF-8, so that only the rows holding them fail.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [name.strip() for name in header]
        if not _has_id_column(header, id_columns):
            raise InvalidInputError(
                f"not a CSV catalog: the first line must be a header with one of {sorted(id_columns)}",
                field="file",
            )
        previous_line = reader.line_num
        for values in reader:
            line = previous_line + 1
            previous_line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            if any(_has_undecodable_bytes(value) for value in values):
                yield RowError(line, None, "row is not valid UTF-8")
                continue
            if len(values) != len(header):
                yield RowError(line, None, f"row has {len(values)} columns, the header has {len(header)}")
                continue
            yield RawRow(line, _csv_fields(header, values))


def _csv_fields(header: list[str], values: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for name, value in zip(header, values, strict=True):
        value = value.strip()
        if value == "":
            continue
        if name.startswith(ATTRIBUTE_COLUMN_PREFIX):
            attributes[name[len(ATTRIBUTE_COLUMN_PREFIX) :]] = value
        elif name == "attributes":
            try:
                attributes.update(json.loads(value))
            except (json.JSONDecodeError, TypeError, ValueError):
                fields["attributes"] = value  # left for validation to report
        else:
            fields[name] = value
    if attributes and not isinstance(fields.get("attributes"), str):
        fields["attributes"] = attributes
    return fields


def _read_jsonl(path: Path) -> Iterator[RawRow | RowError]:
    objects_seen = 0
    rows_seen = 0
    with path.open("rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            if not raw_line.strip():
                continue
            rows_seen += 1
            if objects_seen == 0 and rows_seen > JSONL_PROBE_ROWS:
                raise InvalidInputError(
                    f"not a JSONL catalog: none of its first {JSONL_PROBE_ROWS} lines is a JSON object",
                    field="file",
                )
            try:
                text = raw_line.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield RowError(line_number, None, f"row is not valid UTF-8 (byte {error.start})")
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                yield RowError(line_number, None, f"invalid JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(value, dict):
                yield RowError(line_number, None, "a row must be a JSON object")
                continue
            objects_seen += 1
            yield RawRow(line_number, value)
    if objects_seen == 0 and rows_seen:
        raise InvalidInputError("not a JSONL catalog: no line is a JSON object", field="file")


def _read_parquet(
    path: Path, max_bytes: int | None, id_columns: frozenset[str]
) -> Iterator[RawRow | RowError]:
    import pyarrow.parquet as parquet

    try:
        parquet_file = parquet.ParquetFile(path)
    except Exception as error:
        raise InvalidInputError("not a readable Parquet file", field="file") from error
    metadata = parquet_file.metadata
    # Sizes come from the file's own footer: checked before anything is decompressed into memory.
    claimed = sum(
        max(0, metadata.row_group(index).total_byte_size) for index in range(metadata.num_row_groups)
    )
    if max_bytes is not None and claimed > max_bytes:
        raise InvalidInputError(
            f"the Parquet file declares {claimed / 1e6:.0f} MB of data; "
            f"the limit is {max_bytes / 1e6:.0f} MB",
            field="file",
        )
    if not _has_id_column(parquet_file.schema_arrow.names, id_columns):
        raise InvalidInputError(
            f"not a Parquet catalog: it has none of the columns {sorted(id_columns)}", field="file"
        )
    row_number = 0
    for batch in parquet_file.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            row_number += 1
            fields = {name: value for name, value in row.items() if value is not None}
            attributes = {
                name[len(ATTRIBUTE_COLUMN_PREFIX) :]: fields.pop(name)
                for name in list(fields)
                if name.startswith(ATTRIBUTE_COLUMN_PREFIX)
            }
            if attributes:
                fields["attributes"] = {**attributes, **(fields.get("attributes") or {})}
            yield RawRow(row_number, fields)


def parse_product_row(row: RawRow) -> Product | RowError:
    """Validate one row. The error names the first offending field; the reason lists every problem."""
    product_id = row.fields.get("product_id")
    product_id = _snippet(str(product_id), 256) if product_id is not None else None
    try:
        product = Product.model_validate(row.fields)
    except ValidationError as error:
        problems = error.errors()
        first_field = _snippet(".".join(str(part) for part in problems[0]["loc"]), 64) or None
        reason = _snippet("; ".join(_describe(problem) for problem in problems[:5]), 500)
        return RowError(row.line, first_field, reason, product_id)
    return product


def _describe(problem: Any) -> str:
    # Bounded: a row error names a field and a reason, never a long stretch of the file.
    location = _snippet(".".join(str(part) for part in problem["loc"]), 64)
    message = _snippet(str(problem["msg"]), 200)
    if problem["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{location}: {message}" if location else message


def _snippet(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
