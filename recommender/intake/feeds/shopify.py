"""Shopify's product CSV export: one row per variant or image, grouped by ``Handle`` into one product."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recommender.html_text import strip_html

SKIPPED_STATUSES = ("draft", "archived")


def looks_like_shopify(header: list[str]) -> bool:
    names = set(header)
    return "Handle" in names and bool(names & {"Variant Price", "Body (HTML)"})


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def shopify_product(rows: list[dict[str, str]]) -> dict[str, Any]:
    """The rows of one handle (first row: the product; the rest: more variants and images)."""
    first = rows[0]
    product: dict[str, Any] = {"product_id": first.get("Handle", "")}
    if first.get("Title"):
        product["title"] = strip_html(first["Title"])
    if first.get("Body (HTML)"):
        product["description"] = strip_html(first["Body (HTML)"])
    if first.get("Vendor"):
        product["brand"] = first["Vendor"]
    attributes: dict[str, Any] = {}
    category, kind = first.get("Product Category", ""), first.get("Type", "")
    if category or kind:
        product["category"] = category or kind
    if category and kind:
        attributes["type"] = kind
    tags = [tag.strip() for tag in first.get("Tags", "").split(",") if tag.strip()]
    if tags:
        attributes["tags"] = tags  # several values: a filter on one tag matches
    for index in (1, 2, 3):
        name = first.get(f"Option{index} Name", "")
        values = list(
            dict.fromkeys(row[f"Option{index} Value"] for row in rows if row.get(f"Option{index} Value"))
        )
        if name and values and not (name == "Title" and values == ["Default Title"]):
            # Every variant's value (sizes 42, 43, 44): a filter on size 43 finds the product.
            attributes[name.strip().lower().replace(".", " ")[:64]] = values
    prices = [price for row in rows if (price := _number(row.get("Variant Price", ""))) is not None]
    if prices:
        product["price"] = min(prices)
        if max(prices) > min(prices):
            attributes["price_range"] = f"{min(prices):.2f}-{max(prices):.2f}"
    quantities = [qty for row in rows if (qty := _number(row.get("Variant Inventory Qty", ""))) is not None]
    if quantities:
        product["in_stock"] = any(quantity > 0 for quantity in quantities)
    image = next((row["Image Src"] for row in rows if row.get("Image Src")), None)
    if image:
        attributes["image_link"] = image
    if attributes:
        product["attributes"] = attributes
    return product


def group_by_handle(rows: Iterator[tuple[int, dict[str, str]]]) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """(first line, rows) per run of consecutive rows with one handle, as Shopify exports them."""
    current: list[dict[str, str]] = []
    first_line = 0
    for line, row in rows:
        if current and row.get("Handle") != current[0].get("Handle"):
            yield first_line, current
            current = []
        if not current:
            first_line = line
        current.append(row)
    if current:
        yield first_line, current
