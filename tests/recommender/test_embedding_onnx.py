"""The int8 ONNX backend: the default model exported once, agreeing with torch, serving the same pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.demo import demo_catalog_path
from recommender.embedding import build_embedder
from recommender.embedding_onnx import OnnxInt8Embedder
from recommender.models import Product
from recommender.service import build_service
from recommender.settings import EmbeddingSettings
from recommender.text import compose_product_text
from tests.conftest import import_demo_catalog, make_settings


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxInt8Embedder:
    settings = EmbeddingSettings(backend="onnx-int8", onnx_cache_dir=tmp_path_factory.mktemp("onnx"))
    embedder = build_embedder(settings)
    assert isinstance(embedder, OnnxInt8Embedder)
    return embedder


def test_vectors_agree_with_torch_on_the_demo_catalog(onnx_embedder: OnnxInt8Embedder, embedder) -> None:
    products = [
        Product.model_validate(json.loads(line)) for line in demo_catalog_path().read_text().splitlines()
    ]
    texts = [compose_product_text(product) for product in products]
    reference, candidate = embedder.encode_documents(texts), onnx_embedder.encode_documents(texts)
    assert candidate.shape == reference.shape and candidate.dtype == np.float32
    cosines = (reference * candidate).sum(axis=1)
    assert cosines.mean() >= 0.985 and cosines.min() >= 0.95
    assert np.allclose(np.linalg.norm(candidate, axis=1), 1, atol=1e-4)


def test_the_export_is_cached_and_the_pipeline_serves_with_it(
    onnx_embedder: OnnxInt8Embedder, tmp_path: Path
) -> None:
    cached = list(Path(onnx_embedder._session._model_path).parent.glob("*-int8.onnx"))  # type: ignore[attr-defined]
    assert len(cached) == 1
    service = build_service(make_settings(tmp_path), embedder=onnx_embedder)
    try:
        import_demo_catalog(service)
        assert service.retriever.for_query("espresso machine", 1).items[0].product_id == "kit-008"
    finally:
        service.close()


def test_a_model_it_cannot_run_is_refused_with_the_way_out() -> None:
    from recommender.errors import ConfigurationError

    with pytest.raises((ConfigurationError, OSError, ValueError)):
        build_embedder(EmbeddingSettings(backend="onnx-int8", model="/no/such/model"))
