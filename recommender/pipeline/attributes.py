"""Catalog attributes declared as ranking features: numbers as they are, other values as category codes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# Product fields that can be declared like attributes.
PRODUCT_FIELDS = ("price", "brand", "category")


def raw_value(payload: dict[str, Any], name: str) -> Any:
    """One value per product: an attribute with several values reads as the mean of its numbers (sizes in
    cm), or else its first value (the listed colour a shop puts first)."""
    value = payload.get(name) if name in PRODUCT_FIELDS else (payload.get("attributes") or {}).get(name)
    if not isinstance(value, list):
        return value
    numbers = [number for number in map(as_number, value) if number is not None]
    if value and len(numbers) == len(value):
        return sum(numbers) / len(numbers)
    return value[0] if value else None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class AttributeEncoder:
    """Learns from the catalog which declared attributes are numeric and the codes of the others.

    Saved with a trained ranker, so serving encodes exactly as training did. Unknown values code as -1.
    """

    def __init__(self, names: Sequence[str], vocabularies: dict[str, list[str]] | None = None) -> None:
        self.names = list(names)
        self.vocabularies = dict(vocabularies or {})  # categorical attribute -> its known values
        self._codes = {
            name: {value: code for code, value in enumerate(values)}
            for name, values in self.vocabularies.items()
        }

    @classmethod
    def fit(cls, names: Sequence[str], payloads: Iterable[dict[str, Any]]) -> AttributeEncoder:
        values: dict[str, list[Any]] = {name: [] for name in names}
        for payload in payloads:
            for name in names:
                value = raw_value(payload, name)
                if value not in (None, ""):
                    values[name].append(value)
        vocabularies = {}
        for name, seen in values.items():
            numeric = [as_number(value) for value in seen]
            if seen and sum(number is None for number in numeric) > len(seen) / 2:
                vocabularies[name] = sorted({str(value) for value in seen})
        return cls(names, vocabularies)

    @property
    def columns(self) -> list[str]:
        return [f"attr_{name}" for name in self.names]

    @property
    def categorical_columns(self) -> list[str]:
        return [f"attr_{name}" for name in self.names if name in self.vocabularies]

    def encode(self, payload: dict[str, Any]) -> list[float]:
        row = []
        for name in self.names:
            value = raw_value(payload, name)
            if name in self.vocabularies:
                text = str(value) if value not in (None, "") else None
                row.append(float(self._codes[name].get(text, -1)) if text is not None else -1.0)
            else:
                number = as_number(value)
                row.append(number if number is not None else math.nan)
        return row

    def as_dict(self) -> dict[str, Any]:
        return {"names": self.names, "vocabularies": self.vocabularies}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeEncoder:
        return cls(data["names"], data["vocabularies"])
