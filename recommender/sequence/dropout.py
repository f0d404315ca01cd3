"""Dropout drawn from uniform numbers, and the encoder layer that uses it in training.

On CPU, torch's dropout draws its mask with ``bernoulli_``, which took a third of a training epoch of the
sequence model on ML-100k (2 cores): about 19 ms for the 2.6 million attention weights of one batch, where
a uniform draw and a comparison take about 6 ms. The layer below is ``nn.TransformerEncoderLayer`` with
the same parameters (a saved model loads unchanged) and the same arithmetic; only in training, its
dropouts, the attention weights' included, draw their masks that way. In evaluation it is the standard
layer, fast path included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def uniform_dropout(values: Tensor, probability: float, training: bool) -> Tensor:
    """``F.dropout``: each value zeroed with ``probability``, the rest scaled by 1 / (1 - probability)."""
    if not training or probability == 0.0:
        return values
    kept = torch.rand_like(values) >= probability
    return values * kept / (1.0 - probability)


class UniformDropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn from uniform numbers (no parameters, no state)."""

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 (nn.Dropout's own argument name)
        return uniform_dropout(input, self.p, self.training)


class EncoderLayer(nn.TransformerEncoderLayer):
    """A batch-first ``nn.TransformerEncoderLayer`` whose training-time dropouts draw uniform numbers.

    Its ``attn_mask`` is what ``nn.TransformerEncoder`` passes on: boolean or additive, ``[L, L]`` or
    ``[B * heads, L, L]``, True (or -inf) where a query may not attend."""

    def __init__(self, width: int, heads: int, inner: int, dropout: float, **options) -> None:
        super().__init__(width, heads, inner, dropout, batch_first=True, **options)
        self.dropout = UniformDropout(dropout)
        self.dropout1 = UniformDropout(dropout)
        self.dropout2 = UniformDropout(dropout)

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool = False
    ) -> Tensor:
        attention = self.self_attn
        if not self.training or key_padding_mask is not None:
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal)
        batch, length, width = x.shape
        heads = attention.num_heads
        queries, keys, values = (
            part.reshape(batch, length, heads, width // heads).transpose(1, 2)
            for part in F.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
        )
        scores = queries @ keys.transpose(-2, -1) / math.sqrt(width // heads)  # [B, heads, L, L]
        if attn_mask is not None:
            mask = attn_mask.reshape(-1, heads, length, length) if attn_mask.dim() == 3 else attn_mask
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        weights = uniform_dropout(scores.softmax(dim=-1), attention.dropout, True)
        attended = (weights @ values).transpose(1, 2).reshape(batch, length, width)
        return self.dropout1(attention.out_proj(attended))
