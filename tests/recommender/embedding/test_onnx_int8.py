"""The int8 ONNX backend (the default on a CPU): exported once, agreeing with torch, serving the pipeline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from recommender.demo import demo_catalog_path
from recommender.embedding import SentenceTransformerEmbedder, build_embedder, resolve_model_location
from recommender.embedding.onnx_int8 import OnnxInt8Embedder
from recommender.embedding.onnx_smoothing import smooth_activations
from recommender.models import Product
from recommender.service import build_service
from recommender.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings
from recommender.text import compose_product_text
from tests.conftest import import_demo_catalog, make_settings


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxInt8Embedder:
    embedder = build_embedder(EmbeddingSettings(onnx_cache_dir=tmp_path_factory.mktemp("onnx")))
    assert isinstance(embedder, OnnxInt8Embedder)  # the default on a CPU
    return embedder


def test_vectors_and_neighbours_agree_with_torch(onnx_embedder: OnnxInt8Embedder, embedder) -> None:
    products = [
        Product.model_validate(json.loads(line)) for line in demo_catalog_path().read_text().splitlines()
    ]
    # The catalog's texts, and short title-only texts unlike the calibration texts (the titles reversed).
    for texts in (
        [compose_product_text(product) for product in products],
        [
            " ".join(reversed(product.title.split())) + f" ({1990 + index})"
            for index, product in enumerate(products)
        ],
    ):
        reference, candidate = embedder.encode_documents(texts), onnx_embedder.encode_documents(texts)
        assert candidate.shape == reference.shape and candidate.dtype == np.float32
        cosines = (reference * candidate).sum(axis=1)
        assert cosines.mean() >= 0.993 and cosines.min() >= 0.98
        assert np.allclose(np.linalg.norm(candidate, axis=1), 1, atol=1e-4)
        assert _neighbour_overlap(reference, candidate) >= 0.9


def _neighbour_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    near = [np.argsort(-(vectors @ vectors.T), axis=1)[:, 1 : k + 1] for vectors in (reference, candidate)]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(*near, strict=True)]))


def test_smoothing_leaves_the_model_computing_the_same_function(tmp_path: Path) -> None:
    """x -> x @ W (smoothed) and x + 1 (not a MatMul: untouched), with one channel of x far larger."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("Add", ["x", "one"], ["z"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "z")],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.ones(8, np.float32), "one")],
    )
    source, target = tmp_path / "source.onnx", tmp_path / "smoothed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    x = rng.normal(size=(5, 8)).astype(np.float32)
    x[:, 3] *= 300
    smooth_activations(source, target, [{"x": x}])

    smoothed = onnx.load(str(target))
    assert [node.op_type for node in smoothed.graph.node] == ["Mul", "MatMul", "Add"]
    scaled = {t.name: numpy_helper.to_array(t) for t in smoothed.graph.initializer}["w"]
    assert np.abs(scaled[3]).max() > 10 * np.abs(weight[3]).max()  # the outlier channel moved into W
    before, after = (
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
        for path in (source, target)
    )
    assert np.allclose(before[0], after[0], rtol=1e-4, atol=1e-3) and np.array_equal(before[1], after[1])


def test_auto_runs_a_model_the_int8_path_cannot_with_torch(tmp_path: Path, caplog) -> None:
    from sentence_transformers import SentenceTransformer, models

    base = SentenceTransformer(resolve_model_location(DEFAULT_EMBEDDING_MODEL), device="cpu")
    SentenceTransformer(modules=[*base, models.Dense(384, 32)]).save(str(tmp_path / "with-dense"))
    with caplog.at_level(logging.WARNING):
        chosen = build_embedder(
            EmbeddingSettings(model=str(tmp_path / "with-dense"), onnx_cache_dir=tmp_path / "onnx")
        )
    assert isinstance(chosen, SentenceTransformerEmbedder) and chosen.dimension == 32
    assert "int8 ONNX path cannot run" in caplog.text and "Dense" in caplog.text


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
