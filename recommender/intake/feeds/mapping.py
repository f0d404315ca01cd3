"""Field mappings: a shop's column names to the product's fields (``--map "Body (HTML)=description"``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.errors import InvalidInputError
from recommender.models import Product

PRODUCT_FIELDS = frozenset(Product.model_fields)
ATTRIBUTE_PREFIXES = ("attributes.", "attr.")


@dataclass(frozen=True)
class FieldMapping:
    """Source column -> target: a product field, or ``attributes.NAME`` for an attribute."""

    columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for source, target in self.columns.items():
            if target not in PRODUCT_FIELDS and not target.startswith(ATTRIBUTE_PREFIXES):
                raise InvalidInputError(
                    f"mapping {source!r} -> {target!r}: the target must be one of {sorted(PRODUCT_FIELDS)} "
                    "or attributes.NAME",
                    field="mapping",
                )

    @classmethod
    def parse(cls, pairs: list[str]) -> FieldMapping:
        """``SOURCE=TARGET`` pairs, as the command line takes them."""
        columns = {}
        for pair in pairs:
            source, separator, target = pair.rpartition("=")
            if not separator or not source or not target:
                raise InvalidInputError(f"--map {pair!r} must look like SOURCE=TARGET", field="mapping")
            columns[source] = target.strip()
        return cls(columns)

    @classmethod
    def from_file(cls, path: Path) -> FieldMapping:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InvalidInputError(f"mapping file {path}: {error}", field="mapping") from error
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise InvalidInputError("a mapping file is a JSON object of column -> field", field="mapping")
        return cls({str(source): target for source, target in loaded.items()})

    def apply(self, fields: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """The row in the product's field names, and the columns that match nothing (left out)."""
        mapped: dict[str, Any] = {}
        given = fields.get("attributes")
        attributes: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        unmapped: set[str] = set()
        for name, value in fields.items():
            target = self.columns.get(name, name)
            if target == "attributes" and isinstance(value, dict):
                continue
            if target.startswith(ATTRIBUTE_PREFIXES):
                attributes[target.split(".", 1)[1]] = value
            elif target in PRODUCT_FIELDS:
                mapped[target] = value
            else:
                unmapped.add(name)
        # A catalog keyed by "id" needs no mapping for it.
        if "product_id" not in mapped and "id" in unmapped:
            mapped["product_id"] = fields["id"]
            unmapped.discard("id")
        if attributes:
            mapped["attributes"] = attributes
        elif "attributes" in fields and not isinstance(fields["attributes"], dict):
            mapped["attributes"] = fields["attributes"]  # left for validation to report
        return mapped, unmapped

    def as_json(self) -> dict[str, str]:
        return dict(self.columns)
