"""Google Merchant Center product feeds: TSV/CSV with a header row, or RSS 2.0 XML in the ``g:`` namespace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from defusedxml import ElementTree

from recommender.html_text import strip_html

PRICE = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*([A-Za-z]{3})?\s*$")
# Merchant attributes kept as product attributes (under these names).
KEPT_AS_ATTRIBUTES = (
    "link",
    "image_link",
    "additional_image_link",
    "gtin",
    "mpn",
    "condition",
    "color",
    "size",
    "material",
    "pattern",
    "gender",
    "age_group",
    "item_group_id",
    "google_product_category",
    "availability",
    *(f"custom_label_{index}" for index in range(5)),
)
MERCHANT_COLUMNS = frozenset(
    {"id", "title", "description", "price", "sale_price", "brand", "product_type", *KEPT_AS_ATTRIBUTES}
)


def normalise(name: str) -> str:
    """'g:image_link', 'Image link' and 'image_link' are one column."""
    name = name.strip().lower()
    name = name.split("}", 1)[-1]  # an XML tag with its namespace
    name = name.removeprefix("g:")
    return re.sub(r"[\s-]+", "_", name)


def looks_like_merchant(header: list[str]) -> bool:
    names = {normalise(name) for name in header}
    return {"id", "title"} <= names and bool(names & {"price", "availability", "link", "image_link"})


def parse_price(text: str) -> tuple[float | None, str | None]:
    match = PRICE.match(str(text))
    if not match:
        return None, None
    return float(match.group(1).replace(",", ".")), (match.group(2) or "").upper() or None


def merchant_product(raw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """One feed item as product fields, and the columns left out."""
    fields = {normalise(name): value for name, value in raw.items() if value not in (None, "")}
    product: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    if "id" in fields:
        product["product_id"] = fields["id"]
    if "title" in fields:
        product["title"] = strip_html(str(fields["title"]))
    if "description" in fields:
        product["description"] = strip_html(str(fields["description"]))
    if "brand" in fields:
        product["brand"] = fields["brand"]
    if "product_type" in fields:
        product["category"] = fields["product_type"]
    price, currency = parse_price(fields.get("price", ""))
    sale_price, sale_currency = parse_price(fields.get("sale_price", ""))
    if "price" in fields and price is None:
        product["price"] = fields["price"]  # left for validation to report
    if sale_price is not None:
        product["price"] = sale_price
        if price is not None:
            attributes["list_price"] = price
    elif price is not None:
        product["price"] = price
    if currency or sale_currency:
        attributes["currency"] = currency or sale_currency
    if "availability" in fields:
        product["in_stock"] = normalise(str(fields["availability"])) == "in_stock"
    for name in KEPT_AS_ATTRIBUTES:
        if name in fields:
            attributes[name] = fields[name]
    if attributes:
        product["attributes"] = attributes
    return product, set(fields) - MERCHANT_COLUMNS


def read_xml_items(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(item number, {tag: text}) for each <item> (RSS) or <entry> (Atom); defusedxml refuses entity
    bombs and external entities."""
    number = 0
    for _, element in ElementTree.iterparse(str(path), events=("end",)):
        if normalise(element.tag) not in ("item", "entry"):
            continue
        number += 1
        yield number, {child.tag: (child.text or "").strip() for child in element}
        element.clear()
