"""The configured sentence-transformers model run by ONNX Runtime with int8 weights.

Exported once from the model's own transformer (torch.onnx), fused by ONNX Runtime's transformer optimizer
where the architecture is known, smoothed (outlier activation channels moved into the weights, calibrated on
the demo catalog's texts), quantised dynamically (int8 weights, per channel), and cached on disk. The
model's own tokenizer, prompts, pooling (mean or CLS) and normalisation are applied here, so nothing about
the main environment changes (no optimum, no downgraded transformers).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from recommender.demo import demo_catalog_path
from recommender.embedding.base import resolve_model_location
from recommender.embedding.onnx_smoothing import smooth_activations
from recommender.errors import ConfigurationError
from recommender.models import Product
from recommender.settings import EmbeddingSettings
from recommender.text import compose_product_text

logger = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Architectures ONNX Runtime's transformer optimizer can fuse (attention, layer norm, GELU).
FUSABLE = {"bert", "roberta", "distilbert", "xlm-roberta", "mpnet", "electra"}


class OnnxInt8Embedder:
    def __init__(self, settings: EmbeddingSettings) -> None:
        from sentence_transformers import SentenceTransformer

        location = resolve_model_location(settings.model)
        source = SentenceTransformer(location, device="cpu")
        kinds = [type(module).__name__ for module in source]
        if kinds[:2] != ["Transformer", "Pooling"] or any(kind != "Normalize" for kind in kinds[2:]):
            raise ConfigurationError(
                f"the int8 ONNX backend runs Transformer + Pooling (+ Normalize) models; {settings.model} "
                f"has {kinds}: use RECO_EMBEDDING__BACKEND=torch"
            )
        pooling: dict[str, Any] = source[1].get_config_dict()  # type: ignore[operator]
        # sentence-transformers names the mode in one key (newer) or in one flag per mode (older).
        mode = pooling.get("pooling_mode") or next(
            (
                name
                for name in ("mean", "cls")
                if pooling.get(f"pooling_mode_{name}_token{'s' if name == 'mean' else ''}")
            ),
            None,
        )
        self._mean_pooling = mode == "mean"
        if mode not in ("mean", "cls"):
            raise ConfigurationError(f"{settings.model}: only mean or CLS pooling runs on the int8 backend")
        self._normalize = "Normalize" in kinds
        self._tokenizer = source.tokenizer
        self._max_length = int(source.max_seq_length or 512)
        self._prompts: dict[str, str] = dict(getattr(source, "prompts", {}) or {})
        self._inputs = [name for name in INPUTS if name in self._tokenizer.model_input_names]
        self._batch_size = settings.batch_size
        self.model_name = settings.model
        get_dimension = (
            getattr(source, "get_embedding_dimension", None) or source.get_sentence_embedding_dimension
        )
        self.dimension = int(get_dimension() or 0)
        path = _cached_model(source, settings, self._inputs)
        del source  # the torch weights are not needed any more
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.onnx_threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("document", self._prompts.get("passage", "")))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._prompts.get("query", ""))

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, like sentence-transformers: batches of similar lengths pad little.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), self._batch_size):
            chosen = order[start : start + self._batch_size]
            encoded = self._tokenizer(
                [prompt + texts[index] for index in chosen],
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="np",
            )
            feeds = {name: encoded[name].astype(np.int64) for name in self._inputs}
            hidden = self._session.run(None, feeds)[0]
            if self._mean_pooling:
                mask = encoded["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            else:
                pooled = hidden[:, 0]
            if self._normalize:
                pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            vectors[chosen] = pooled
        return vectors


def _cached_model(source: Any, settings: EmbeddingSettings, inputs: list[str]) -> Path:
    location = resolve_model_location(settings.model)
    key = hashlib.sha256(
        f"{location}|{_weights_stamp(location)}|{inputs}|int8-v3-eager-smoothed".encode()
    ).hexdigest()[:16]
    folder = Path(settings.onnx_cache_dir)
    target = folder / f"{Path(settings.model).name}-{key}-int8.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    logger.warning("exporting %s to int8 ONNX (once, cached in %s)", settings.model, folder)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        exported = Path(scratch) / "model.onnx"
        _export(source[0].auto_model, source.tokenizer, inputs, exported)
        optimized = _optimize(exported, source[0].auto_model.config)
        smoothed = Path(scratch) / "model-smoothed.onnx"
        smooth_activations(optimized, smoothed, _calibration_batches(source, inputs))
        quantized = Path(scratch) / "model-int8.onnx"
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(smoothed),
            str(quantized),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(quantized, target)  # whole or not at all: a crash leaves no half-written model
    return target


def _weights_stamp(location: str) -> str:
    """For a model folder, its weight files' sizes and times: a folder written again (a fine-tuned encoder)
    is exported again rather than served from a stale export."""
    folder = Path(location)
    if not folder.is_dir():
        return ""
    weights = sorted(path for pattern in ("*.safetensors", "*.bin") for path in folder.glob(pattern))
    return ";".join(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in weights)


def _calibration_batches(source: Any, inputs: list[str]) -> Iterator[dict[str, np.ndarray]]:
    """The demo catalog's product texts and titles as the model's documents (with its document prompt)."""
    products = [Product.model_validate_json(line) for line in demo_catalog_path().read_text().splitlines()]
    prompts = dict(getattr(source, "prompts", {}) or {})
    prompt = str(prompts.get("document") or prompts.get("passage") or "")
    texts: list[str] = [compose_product_text(product) for product in products]
    texts += [str(product.title) for product in products if product.title]
    texts = [prompt + text for text in texts]
    for start in range(0, len(texts), 16):
        encoded = source.tokenizer(
            texts[start : start + 16], padding=True, truncation=True, max_length=256, return_tensors="np"
        )
        yield {name: encoded[name].astype(np.int64) for name in inputs}


def _export(model: Any, tokenizer: Any, inputs: list[str], path: Path) -> None:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(inputs, tensors, strict=True))).last_hidden_state

    # The classic attention graph (not scaled_dot_product_attention), which ONNX Runtime's optimizer fuses
    # into one Attention node and the quantizer into QAttention: ~12% faster than the unfused graph.
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
    sample = tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in [*inputs, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState().eval(),
            tuple(sample[name] for name in inputs),
            str(path),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _optimize(path: Path, config: Any) -> Path:
    model_type = str(getattr(config, "model_type", ""))
    if model_type not in FUSABLE:
        return path
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(path),
        model_type="bert" if model_type not in ("distilbert", "roberta") else model_type,
        num_heads=int(getattr(config, "num_attention_heads", 0)),
        hidden_size=int(getattr(config, "hidden_size", 0)),
    )
    target = path.with_name("model-optimized.onnx")
    optimized.save_model_to_file(str(target))
    return target
