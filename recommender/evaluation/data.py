"""Loading interactions and item data: RecBole atomic files, or a table file (CSV or TSV, JSONL, Parquet;
gzip too) with a column mapping.

Data sets come in other shapes than MovieLens's: times as Unix seconds, milliseconds or dates, ratings on
other scales, item files with other field names, HTML or list descriptions, prices as text. Each is read
into the shape the service takes; a row that cannot be read is left out and reported with its line and
reason, and the rest go in.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from dateutil import parser as date_parser
from pydantic import TypeAdapter, ValidationError

from recommender.errors import InvalidInputError
from recommender.intake.files import CatalogFormat, column_names, read_rows
from recommender.intake.jobs import RowError
from recommender.models import MAX_ATTRIBUTE_VALUES, MAX_DESCRIPTION_CHARS, Identifier, Product

# An item file's fields by what they are, first match wins (RecBole's MovieLens files, MovieLens CSV,
# TMDB, Amazon metadata, shop exports).
TITLE_FIELDS = ("title", "movie_title", "name", "product_name", "item_name")
CATEGORY_FIELDS = ("genres", "genre", "class", "categories", "category")
DESCRIPTION_FIELDS = ("description", "overview", "plot", "summary", "body_html", "body")
BRAND_FIELDS = ("brand", "manufacturer", "vendor")
YEAR_FIELDS = ("year", "release_year")
PRICE_FIELDS = ("price",)
ITEM_ID_FIELDS = ("item_id", "product_id")
# A "rating" column whose values span more than this is a count (plays, clicks), not a rating scale.
MAX_RATING_SPAN = 10.0

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


@dataclass(frozen=True)
class ColumnMapping:
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    rating: str | None = "rating"


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    timestamp: float
    rating: float | None
    row: int  # original order, for stable tie-breaking


@dataclass
class ItemInfo:
    item_id: str
    title: str = ""
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    description: str = ""
    brand: str = ""
    price: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # any other columns: scalars, lists of them

    def product(self) -> Product:
        """The catalog product the evaluation imports: the first genre is the category, the rest of the
        item's fields are attributes (what a shop would send)."""
        attributes: dict[str, Any] = dict(self.attributes)
        if self.year:
            attributes["year"] = self.year
        if self.genres:
            attributes["genres"] = ", ".join(self.genres)
        return Product(
            product_id=self.item_id,
            title=(self.title or self.item_id)[:1000],
            description=self.description[:MAX_DESCRIPTION_CHARS],
            category=self.genres[0] if self.genres else "",
            brand=self.brand,
            price=self.price,
            attributes={
                name[:64].replace(".", "_"): value for name, value in attributes.items() if value != ""
            },
        )


@dataclass
class Dataset:
    name: str
    interactions: list[Interaction]
    items: dict[str, ItemInfo]
    skipped: list[str] = field(default_factory=list)  # "FILE line N: reason" for each row left out


# A record as read: its line in the file and its fields, or the reason it could not be read.
Record = tuple[int, dict[str, Any] | str]


def _atomic_header(line: str) -> list[tuple[str, str]]:
    """RecBole headers name each column with its type: ``user_id:token`` -> (``user_id``, ``token``)."""
    columns = []
    for column in line.rstrip("\n").split("\t"):
        name, _, kind = column.partition(":")
        columns.append((name, kind))
    return columns


def _atomic_records(path: Path) -> tuple[list[str], Iterator[Record]]:
    """A RecBole atomic file's column names and records (``float`` columns as numbers where they parse)."""
    handle = path.open(encoding="utf-8", errors="replace")
    header = _atomic_header(handle.readline())
    names = [name for name, _ in header]

    def records() -> Iterator[Record]:
        with handle:
            for line_number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                values = line.rstrip("\n").split("\t")
                if len(values) != len(header):
                    yield line_number, f"{len(values)} fields where the header has {len(header)}"
                    continue
                yield (
                    line_number,
                    {
                        name: _float_or_text(value) if kind == "float" else value
                        for (name, kind), value in zip(header, values, strict=True)
                    },
                )

    return names, records()


def _table_format(path: Path) -> CatalogFormat:
    suffix = Path(path.name.removesuffix(".gz").removesuffix(".GZ")).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return CatalogFormat.JSONL
    return CatalogFormat.PARQUET if suffix == ".parquet" else CatalogFormat.CSV


def _table_records(path: Path, key_columns: tuple[str, ...], option: str) -> Iterator[Record]:
    """A CSV or TSV, JSONL or Parquet file's records (gzip-compressed too), read as the catalog importer
    reads its files. A file without any of ``key_columns`` fails whole, naming its columns and the option
    that names the column."""
    if path.suffix.lower() == ".gz":  # data sets ship compressed: read through a decompressed copy
        with tempfile.TemporaryDirectory() as folder:
            plain = Path(folder) / path.name[: -len(".gz")]
            with gzip.open(path, "rb") as source, plain.open("wb") as target:
                shutil.copyfileobj(source, target)
            yield from _table_records(plain, key_columns, option)
        return
    file_format = _table_format(path)
    rows = read_rows(path, file_format, id_columns=frozenset(key_columns))
    try:
        first = next(rows, None)
    except InvalidInputError:
        raise InvalidInputError(
            f"{path.name} has no column {key_columns[0]!r} (its columns: "
            f"{', '.join(column_names(path, file_format)) or 'none'}); name the right one with {option}",
            field="data",
        ) from None
    for row in itertools.chain([first] if first is not None else [], rows):
        yield (row.line, row.reason) if isinstance(row, RowError) else (row.line, row.fields)


def _float_or_text(value: str) -> float | str:
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def parse_time(value: Any) -> float:
    """Seconds since the epoch from Unix seconds, milliseconds, microseconds or nanoseconds (told apart by
    size), or a date in ISO 8601 or another common form (month first where it is ambiguous). Dates
    without a zone are UTC. No value: 0 (the file's order is the time order)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    if isinstance(value, bool):
        raise ValueError(f"time {value!r} is neither a number nor a date")
    if isinstance(value, int | float):
        return _epoch_seconds(float(value))
    return _text_time(str(value).strip())


@lru_cache(maxsize=65536)
def _text_time(text: str) -> float:
    try:
        return _epoch_seconds(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = date_parser.parse(text)
        except (ValueError, OverflowError) as error:
            raise ValueError(f"time {text!r} is neither a number nor a date") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _epoch_seconds(number: float) -> float:
    if not math.isfinite(number):
        raise ValueError(f"time {number!r} is not a finite number")
    for unit in (1.0, 1e3, 1e6, 1e9):  # seconds up to the year 5138, then ms, µs, ns
        if abs(number) < 1e11 * unit:
            return number / unit
    raise ValueError(f"time {number!r} is too large for a date")


def _text_value(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _rating(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"rating {value!r} is not a finite number")
    return number


def _identifier(record: dict[str, Any], column: str) -> str:
    value = _text_value(record.get(column))
    if not value:
        raise ValueError(f"no {column!r} value")
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError as error:
        raise ValueError(f"{column}: {error.errors()[0]['msg']}") from None


def _interactions(
    records: Iterator[Record], mapping: ColumnMapping, source: str
) -> tuple[list[Interaction], list[str]]:
    """The records' interactions, and a line for each record left out."""
    interactions: list[Interaction] = []
    skipped: list[str] = []
    for line, record in records:
        if isinstance(record, str):
            skipped.append(f"{source} line {line}: {record}")
            continue
        try:
            user_id = _identifier(record, mapping.user)
            item_id = _identifier(record, mapping.item)
            timestamp = parse_time(record.get(mapping.timestamp))
            rating = _rating(record.get(mapping.rating)) if mapping.rating else None
        except ValueError as error:
            skipped.append(f"{source} line {line}: {error}")
            continue
        interactions.append(Interaction(user_id, item_id, timestamp, rating, len(interactions)))
    if not interactions:
        shown = "; ".join(skipped[:3]) or "it has no rows"
        raise InvalidInputError(
            f"{source}: no interaction could be read ({shown}); name the columns with --user-column, "
            "--item-column and --time-column",
            field="data",
        )
    return on_five_point_scale(interactions), skipped


def on_five_point_scale(interactions: list[Interaction]) -> list[Interaction]:
    """Ratings as the service takes them (1-5; 3 neutral): a 1-5 scale as it is, another scale (0.5-5,
    1-10, -10..10) stretched linearly onto 1-5 from its lowest and highest value. A "rating" column that
    does not rate (one value everywhere, or counts spanning more than ``MAX_RATING_SPAN``) is dropped:
    those interactions are purchases."""
    ratings = [interaction.rating for interaction in interactions if interaction.rating is not None]
    if not ratings:
        return interactions
    low, high = min(ratings), max(ratings)
    if low == high or high - low > MAX_RATING_SPAN:
        return [replace(interaction, rating=None) for interaction in interactions]
    if 1 <= low and high <= 5:
        return interactions
    return [
        replace(interaction, rating=1 + 4 * (interaction.rating - low) / (high - low))
        if interaction.rating is not None
        else interaction
        for interaction in interactions
    ]


def _first(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        value = record.get(name)
        if value not in (None, "", []):
            return name, value
    return None, None


def _categories(value: Any, split_text: Callable[[str, str], list[str]], name: str) -> list[str]:
    """Genres or categories: a list, a list of category paths (the first is the item's path), or text."""
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return [" > ".join(str(part) for part in value[0] if str(part).strip())]
        return [str(part).strip() for part in value if str(part).strip()]
    return [part for part in split_text(_text_value(value), name) if part]


def parse_price(value: Any) -> float | None:
    """A price as a number: 12.5, "12.50", "$1,299.99", "12,99 €"; None where it is none or unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    found = re.search(r"\d[\d,.\s]*", str(value))
    if not found:
        return None
    digits = found.group().replace(" ", "").rstrip(".,")
    if re.fullmatch(r"\d+,\d{1,2}", digits):  # a decimal comma
        digits = digits.replace(",", ".")
    try:
        return float(digits.replace(",", ""))
    except ValueError:
        return None


def _year(value: Any) -> int | None:
    try:
        year = int(float(value))
    except (TypeError, ValueError):
        return None
    return year if 0 < year < 10000 else None


def _attribute(value: Any) -> Any:
    """A value the catalog takes as an attribute (a scalar or a list of scalars), or None."""
    if isinstance(value, str | int | bool) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, list) and all(isinstance(part, str | int | float | bool) for part in value):
        kept = [part for part in value if not (isinstance(part, float) and not math.isfinite(part))]
        return kept[:MAX_ATTRIBUTE_VALUES] or None  # the catalog's limit (lists of related ids run longer)
    return None


def item_info(
    item_id: str,
    record: dict[str, Any],
    split_text: Callable[[str, str], list[str]],
    id_field: str = "item_id",
) -> ItemInfo:
    """An item file's record in the catalog's fields, whatever the file calls them; the other fields are
    attributes. ``split_text(value, field)`` splits a genre or category text into its parts."""
    used = {id_field, *ITEM_ID_FIELDS}
    title_field, title = _first(record, TITLE_FIELDS)
    category_field, categories = _first(record, CATEGORY_FIELDS)
    description_field, description = _first(record, DESCRIPTION_FIELDS)
    brand_field, brand = _first(record, BRAND_FIELDS)
    year_field, year = _first(record, YEAR_FIELDS)
    price_field, price = _first(record, PRICE_FIELDS)
    used |= {name for name in (title_field, category_field, description_field, brand_field) if name}
    used |= {name for name in (year_field, price_field) if name}
    if isinstance(description, list):
        description = "\n".join(str(part) for part in description if part)
    parsed_price = parse_price(price)
    if parsed_price is None and price_field:
        used.discard(price_field)  # kept as the shop wrote it
    attributes = {}
    for name, value in record.items():
        if name in used or not str(name).strip():
            continue
        kept = _attribute(value)
        if kept is not None and kept != "":
            attributes[name] = kept
    return ItemInfo(
        item_id=item_id,
        title=_text_value(title),
        year=_year(year),
        genres=_categories(categories, split_text, category_field or "") if categories is not None else [],
        description=_text_value(description),
        brand=_text_value(brand),
        price=parsed_price,
        attributes=attributes,
    )


def _split_atomic(value: str, name: str) -> list[str]:
    """RecBole's genre columns are space-separated tokens; a category column there is one path."""
    return value.split() if name in ("class", "genre", "genres") else [value]


def _split_table(value: str, name: str) -> list[str]:
    """MovieLens CSV genres are separated by '|'; a category without one is one path."""
    return [part.strip() for part in value.split("|")]


def _items(
    records: Iterator[Record],
    id_fields: tuple[str, ...],
    split_text: Callable[[str, str], list[str]],
    source: str,
    skipped: list[str],
) -> dict[str, ItemInfo]:
    items: dict[str, ItemInfo] = {}
    for line, record in records:
        if isinstance(record, str):
            skipped.append(f"{source} line {line}: {record}")
            continue
        id_field, item_id = _first(record, id_fields)
        if id_field is None:
            skipped.append(f"{source} line {line}: no {' or '.join(dict.fromkeys(id_fields))}")
            continue
        items[_text_value(item_id)] = item_info(_text_value(item_id), record, split_text, id_field)
    return items


def load_recbole(directory: Path, mapping: ColumnMapping | None = None) -> Dataset:
    directory = Path(directory)
    mapping = mapping or ColumnMapping()
    inter_files = sorted(directory.glob("*.inter"))
    if not inter_files:
        raise InvalidInputError(f"no .inter file in {directory}", field="data_dir")
    inter_path = inter_files[0]
    names, records = _atomic_records(inter_path)
    for column, option in ((mapping.user, "--user-column"), (mapping.item, "--item-column")):
        if column not in names:
            raise InvalidInputError(
                f"{inter_path.name} has no column {column!r} (its columns: {', '.join(names)}); "
                f"name the right one with {option}",
                field="data",
            )
    interactions, skipped = _interactions(records, mapping, inter_path.name)
    items: dict[str, ItemInfo] = {}
    item_path = inter_path.with_suffix(".item")
    if item_path.exists():
        _, item_records = _atomic_records(item_path)
        items = _items(item_records, (mapping.item, *ITEM_ID_FIELDS), _split_atomic, item_path.name, skipped)
    return Dataset(inter_path.stem, interactions, items, skipped)


def load_table(path: Path, mapping: ColumnMapping, items_path: Path | None = None) -> Dataset:
    """CSV or TSV, JSONL or Parquet interactions; ``mapping`` names the columns. The items file is keyed
    by the same column as the interactions (``--item-column``, e.g. movieId), else by item_id or
    product_id."""
    records = _table_records(path, (mapping.user,), "--user-column")
    interactions, skipped = _interactions(records, mapping, path.name)
    items: dict[str, ItemInfo] = {}
    if items_path is not None:
        id_fields = tuple(dict.fromkeys((mapping.item, *ITEM_ID_FIELDS)))
        item_records = _table_records(items_path, id_fields, "--item-column")
        items = _items(item_records, id_fields, _split_table, items_path.name, skipped)
    return Dataset(path.stem, interactions, items, skipped)


def load_dataset(path: Path, mapping: ColumnMapping | None = None, items_path: Path | None = None) -> Dataset:
    path = Path(path)
    if path.is_dir():
        return load_recbole(path, mapping)
    if not path.exists():
        raise InvalidInputError(f"no such data path: {path}", field="data_dir")
    return load_table(path, mapping or ColumnMapping(), items_path)
