"""HTML descriptions as plain text, wherever a description enters."""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

BLOCK_TAGS = ("p", "br", "li", "div", "h1", "h2", "h3", "h4", "tr", "ul", "ol")


def strip_html(text: str) -> str:
    """Text content of an HTML fragment, blocks separated by spaces; plain text comes back unchanged."""
    if "<" not in text and "&" not in text:
        return text.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(text, "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    # Blocks are separated by a space; inline tags (<b>, <em>) join their text without one.
    for block in soup.find_all(BLOCK_TAGS):
        block.insert_after(" ")
    return re.sub(r"\s+", " ", soup.get_text()).strip()
