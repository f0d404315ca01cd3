"""A trained sequence model's forward pass for one user's history, in numpy.

Serving asks the model for one state a request: a history of up to ``max_length`` items through two small
layers. Through torch that took ~0.9-1.1 ms on 2 cores, over half of it module dispatch and the fast
path's checks around ~0.4 ms of arithmetic; the same arithmetic in numpy takes ~0.2 ms. The last layer
computes only the last position (the only one read): its keys and values still come from every position.

The weights are copied once per loaded model; the result equals ``SequenceModel.next_item_state`` up to
float32 rounding (checked in the tests for each objective).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erf
from torch import nn

from recommender.sequence.model import Objective, SequenceModel


@dataclass(frozen=True)
class _Layer:
    """One pre-norm encoder layer (``norm_first=True``, GELU), its weights transposed for ``x @ w``."""

    norm1: tuple[np.ndarray, np.ndarray, float]
    qkv_weight: np.ndarray  # [H, 3H]
    qkv_bias: np.ndarray
    out_weight: np.ndarray  # [H, H]
    out_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray, float]
    ff1_weight: np.ndarray  # [H, 4H]
    ff1_bias: np.ndarray
    ff2_weight: np.ndarray  # [4H, H]
    ff2_bias: np.ndarray


class NumpySequenceEncoder:
    def __init__(self, model: SequenceModel) -> None:
        config = model.config
        self.objective = config.objective
        self.heads = config.heads
        self.mask_token = model.mask_token
        self.max_length = config.max_length
        self.scale = np.float32(config.hidden**0.5)
        self.items = _array(model.item_embedding.weight)
        self.positions = _array(model.position_embedding.weight)
        self.layers = [_layer(layer) for layer in model.encoder.layers]
        self.norm = _norm(model.norm)

    def next_item_state(self, sequence: list[int]) -> np.ndarray:
        """The state after one history of item indices (oldest first, 1..N): ``[H]``, float32."""
        if self.objective is Objective.CAUSAL:
            items = sequence
        else:  # masked and permutation objectives predict a mask token appended after the history
            items = [*sequence, self.mask_token]
        items = items[-self.max_length :]
        length = len(items)
        # Left padding that every row shares is cut (see ``next_item_state``): positions start past it.
        first = self.max_length - length
        hidden = self.items[items] * self.scale + self.positions[first : first + length]
        # Causal for SASRec and the permutation objective; open for BERT4Rec (no padding is left to block).
        causal = self.objective is not Objective.MASKED
        for index, layer in enumerate(self.layers):
            last_only = index == len(self.layers) - 1
            hidden = _layer_forward(layer, hidden, self.heads, causal, last_only)
        return _layer_norm(hidden[-1], *self.norm)


def _layer_forward(
    layer: _Layer, hidden: np.ndarray, heads: int, causal: bool, last_only: bool
) -> np.ndarray:
    length, width = hidden.shape
    head_width = width // heads
    normed = _layer_norm(hidden, *layer.norm1)
    qkv = normed @ layer.qkv_weight + layer.qkv_bias
    queries = qkv[-1:, :width] if last_only else qkv[:, :width]
    keys, values = qkv[:, width : 2 * width], qkv[:, 2 * width :]
    rows = len(queries)
    q = queries.reshape(rows, heads, head_width).transpose(1, 0, 2)
    k = keys.reshape(length, heads, head_width).transpose(1, 2, 0)
    v = values.reshape(length, heads, head_width).transpose(1, 0, 2)
    scores = (q @ k) / np.float32(head_width**0.5)  # [heads, rows, length]
    if causal and rows > 1:
        scores = scores + np.triu(np.full((length, length), -np.inf, dtype=np.float32), 1)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attended = (scores / scores.sum(axis=-1, keepdims=True)) @ v  # [heads, rows, head_width]
    attended = attended.transpose(1, 0, 2).reshape(rows, width)
    residual = (hidden[-1:] if last_only else hidden) + attended @ layer.out_weight + layer.out_bias
    inner = _layer_norm(residual, *layer.norm2) @ layer.ff1_weight + layer.ff1_bias
    inner = inner * np.float32(0.5) * (np.float32(1.0) + erf(inner * np.float32(0.5**0.5)))
    return residual + inner @ layer.ff2_weight + layer.ff2_bias


def _layer_norm(values: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    centred = values - values.mean(axis=-1, keepdims=True)
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight + bias


def _layer(layer: nn.TransformerEncoderLayer) -> _Layer:
    attention = layer.self_attn
    return _Layer(
        norm1=_norm(layer.norm1),
        qkv_weight=_array(attention.in_proj_weight).T.copy(),
        qkv_bias=_array(attention.in_proj_bias),
        out_weight=_array(attention.out_proj.weight).T.copy(),
        out_bias=_array(attention.out_proj.bias),
        norm2=_norm(layer.norm2),
        ff1_weight=_array(layer.linear1.weight).T.copy(),
        ff1_bias=_array(layer.linear1.bias),
        ff2_weight=_array(layer.linear2.weight).T.copy(),
        ff2_bias=_array(layer.linear2.bias),
    )


def _norm(norm: nn.LayerNorm) -> tuple[np.ndarray, np.ndarray, float]:
    return _array(norm.weight), _array(norm.bias), float(norm.eps)


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)
