"""Loading interactions and item data: RecBole atomic files, or CSV/JSONL with a column mapping."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from recommender.errors import InvalidInputError
from recommender.models import Product


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
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)  # any other columns

    def product(self) -> Product:
        """The catalog product the evaluation imports: the first genre is the category, the rest of the
        item's fields are attributes (what a shop would send)."""
        attributes: dict[str, str | int | float | bool] = dict(self.attributes)
        if self.year:
            attributes["year"] = self.year
        if self.genres:
            attributes["genres"] = ", ".join(self.genres)
        return Product(
            product_id=self.item_id,
            title=self.title or self.item_id,
            description=self.description,
            category=self.genres[0] if self.genres else "",
            attributes={
                name[:64].replace(".", "_"): value for name, value in attributes.items() if value != ""
            },
        )


@dataclass
class Dataset:
    name: str
    interactions: list[Interaction]
    items: dict[str, ItemInfo]


def _atomic_header(line: str) -> list[str]:
    """RecBole headers name each column with its type: ``user_id:token`` -> ``user_id``."""
    return [column.split(":", 1)[0] for column in line.rstrip("\n").split("\t")]


def load_recbole(directory: Path) -> Dataset:
    directory = Path(directory)
    inter_files = sorted(directory.glob("*.inter"))
    if not inter_files:
        raise InvalidInputError(f"no .inter file in {directory}", field="data_dir")
    inter_path = inter_files[0]
    interactions = []
    with inter_path.open(encoding="utf-8") as handle:
        header = _atomic_header(handle.readline())
        for row, line in enumerate(handle):
            values = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
            interactions.append(
                Interaction(
                    user_id=values["user_id"],
                    item_id=values["item_id"],
                    timestamp=float(values.get("timestamp") or 0.0),
                    rating=float(values["rating"]) if values.get("rating") else None,
                    row=row,
                )
            )
    items: dict[str, ItemInfo] = {}
    item_path = inter_path.with_suffix(".item")
    if item_path.exists():
        with item_path.open(encoding="utf-8", errors="replace") as handle:
            header = _atomic_header(handle.readline())
            for line in handle:
                values = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
                year = values.get("release_year", "")
                items[values["item_id"]] = ItemInfo(
                    item_id=values["item_id"],
                    title=values.get("movie_title") or values.get("title") or "",
                    year=int(year) if year.isdigit() else None,
                    genres=(values.get("class") or values.get("genres") or "").split(),
                )
    return Dataset(inter_path.stem, interactions, items)


def load_table(path: Path, mapping: ColumnMapping, items_path: Path | None = None) -> Dataset:
    """CSV or JSONL interactions; ``mapping`` names the columns."""
    rows = _read_records(path)
    interactions = []
    for row, record in enumerate(rows):
        try:
            rating_value = record.get(mapping.rating) if mapping.rating else None
            interactions.append(
                Interaction(
                    user_id=str(record[mapping.user]),
                    item_id=str(record[mapping.item]),
                    timestamp=float(record.get(mapping.timestamp) or 0.0),
                    rating=float(rating_value) if rating_value not in (None, "") else None,
                    row=row,
                )
            )
        except (KeyError, ValueError) as error:
            raise InvalidInputError(f"{path}: record {row + 1}: {error}", field="data") from error
    items = {}
    if items_path is not None:
        for record in _read_records(items_path):
            # The items file is keyed by the same column as the interactions (--item-column), e.g. movieId.
            item_id = str(record.get(mapping.item) or record.get("item_id") or record.get("product_id"))
            year = str(record.get("year") or record.get("release_year") or "")
            genres = record.get("genres") or record.get("category") or ""
            known = {mapping.item, "item_id", "product_id", "title", "year", "release_year", "genres"}
            known |= {"category", "description", "overview"}
            items[item_id] = ItemInfo(
                item_id=item_id,
                title=str(record.get("title") or ""),
                year=int(year) if year.isdigit() else None,
                genres=[g for g in genres.split("|") if g] if isinstance(genres, str) else list(genres),
                description=str(record.get("description") or record.get("overview") or ""),
                attributes={
                    name: value
                    for name, value in record.items()
                    if name not in known and isinstance(value, str | int | float | bool) and value != ""
                },
            )
    return Dataset(path.stem, interactions, items)


def _read_records(path: Path) -> list[dict]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_dataset(path: Path, mapping: ColumnMapping | None = None, items_path: Path | None = None) -> Dataset:
    path = Path(path)
    if path.is_dir():
        return load_recbole(path)
    if not path.exists():
        raise InvalidInputError(f"no such data path: {path}", field="data_dir")
    return load_table(path, mapping or ColumnMapping(), items_path)
