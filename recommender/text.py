"""How a product becomes the text that is embedded. One function, so that every path embeds the same way."""

from __future__ import annotations

import hashlib

from recommender.models import Product, attribute_text

# Attributes beyond this many are left out of the embedded text: they add noise, not meaning.
MAX_ATTRIBUTES_IN_TEXT = 8


def compose_product_text(product: Product, max_chars: int | None = None) -> str:
    """Compose the embedded text: title, brand, category, key attributes, then description.

    Example: ``"Trail running shoe. Brand: Stridex. Category: Sports > Running > Shoes.
    colour: blue; drop_mm: 6. Lightweight shoe with a grippy sole..."``. The title comes first because
    small models truncate long inputs (all-MiniLM-L6-v2 reads 256 word pieces). ``max_chars`` cuts a
    longer text at the last word that fits (the product itself is kept whole).
    """
    parts = [product.title.rstrip(".") + "."]
    if product.brand:
        parts.append(f"Brand: {product.brand}.")
    if product.category:
        parts.append(f"Category: {product.category}.")
    if product.attributes:
        shown = list(product.attributes.items())[:MAX_ATTRIBUTES_IN_TEXT]
        parts.append("; ".join(f"{name}: {attribute_text(value)}" for name, value in shown) + ".")
    if product.description:
        parts.append(product.description)
    text = " ".join(parts)
    if max_chars is None or len(text) <= max_chars:
        return text
    head = text[:max_chars]
    if text[max_chars].isspace() or head[-1].isspace():
        return head.rstrip()
    words = head.rsplit(maxsplit=1)
    return words[0] if len(words) == 2 else head  # the word cut in two is left out, unless it is all


def text_hash(text: str, model_name: str) -> str:
    """Changes when the embedded text or the model changes, i.e. exactly when the vector must be redone."""
    return hashlib.sha256(f"{model_name}\x00{text}".encode()).hexdigest()[:32]
