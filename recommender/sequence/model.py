"""The shared transformer and the three objectives: causal (SASRec), masked (BERT4Rec), permutation (XLNet).

Items are indices 1..N; 0 is padding and N+1 the mask token. Scores use the item embeddings (tied).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

import torch
from torch import nn

from recommender.sequence.dropout import EncoderLayer, UniformDropout


class Objective(StrEnum):
    CAUSAL = "sasrec"
    MASKED = "bert4rec"
    PERMUTATION = "xlnet"


@dataclass(frozen=True)
class ModelConfig:
    item_count: int
    objective: Objective = Objective.CAUSAL
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    max_length: int = 200
    dropout: float = 0.3
    mask_probability: float = 0.2  # masked objective: share of positions to predict
    predict_share: float = 0.25  # permutation objective: share of positions predicted, last in the order

    def as_dict(self) -> dict:
        return {**asdict(self), "objective": self.objective.value}


class SequenceModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_token = config.item_count + 1
        self.item_embedding = nn.Embedding(config.item_count + 2, config.hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_length + 1, config.hidden)
        layer = EncoderLayer(
            config.hidden, config.heads, config.hidden * 4, config.dropout, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = UniformDropout(config.dropout)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def encode(
        self, sequences: torch.Tensor, blocked: torch.Tensor | None = None, first_position: int = 0
    ) -> torch.Tensor:
        """Hidden states [B, L, H] for left-padded sequences [B, L].

        ``blocked`` [B, L, L] (True = may not attend) overrides the objective's default pattern
        (causal for SASRec, none for BERT4Rec). Padding keys are always blocked, except for a position
        attending to itself, so that no row is fully blocked. ``first_position``: the sequences are the
        tail of longer left-padded ones from that position on (the positions keep their embeddings).
        """
        batch, length = sequences.shape
        positions = torch.arange(first_position, first_position + length, device=sequences.device).unsqueeze(
            0
        )
        hidden = self.item_embedding(sequences) * (self.config.hidden**0.5) + self.position_embedding(
            positions
        )
        hidden = self.dropout(hidden)
        if blocked is None:
            blocked = torch.zeros(batch, length, length, dtype=torch.bool, device=sequences.device)
            if self.config.objective is not Objective.MASKED:
                blocked |= _causal(length, sequences.device).unsqueeze(0)
        blocked = blocked | (sequences == 0).unsqueeze(1)
        blocked &= ~torch.eye(length, dtype=torch.bool, device=sequences.device).unsqueeze(0)
        mask = blocked.repeat_interleave(self.config.heads, dim=0)
        return self.norm(self.encoder(hidden, mask=mask))

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over item indices 0..N (0, padding, is left for the caller to mask)."""
        return hidden @ self.item_embedding.weight[: self.config.item_count + 1].T

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight[1 : self.config.item_count + 1].detach()

    def next_item_state(self, sequences: torch.Tensor) -> torch.Tensor:
        """The user's state for predicting the next item: [B, H].

        Padding columns that every sequence shares are cut first: padding is never attended to, so the
        result is the same, and a short history costs its own length instead of ``max_length``."""
        if self.config.objective is Objective.CAUSAL:
            tail, first = without_shared_padding(sequences)
            return self.encode(tail, first_position=first)[:, -1]
        # Masked and permutation objectives predict a mask token appended after the history.
        with_mask = torch.cat([sequences[:, 1:], torch.full_like(sequences[:, :1], self.mask_token)], dim=1)
        tail, first = without_shared_padding(with_mask)
        if self.config.objective is Objective.MASKED:
            return self.encode(tail, first_position=first)[:, -1]
        causal = _causal(tail.shape[1], sequences.device).expand(len(sequences), -1, -1)
        return self.encode(tail, causal, first_position=first)[:, -1]


def without_shared_padding(sequences: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Left-padded sequences without the leading columns that are padding in every row."""
    used = (sequences != 0).any(dim=0).nonzero()
    first = int(used[0]) if len(used) else sequences.shape[1] - 1
    return sequences[:, first:], first


def _causal(length: int, device: torch.device) -> torch.Tensor:
    return torch.triu(torch.ones(length, length, dtype=torch.bool, device=device), 1)


def training_batch(
    model: SequenceModel, sequences: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(inputs, targets, attention mask) for one batch of left-padded full sequences; target 0 = ignore."""
    config = model.config
    if config.objective is Objective.CAUSAL:
        inputs = sequences[:, :-1]
        targets = sequences[:, 1:]
        return inputs, targets, None
    real = sequences != 0
    if config.objective is Objective.MASKED:
        chosen = (torch.rand(sequences.shape, generator=generator) < config.mask_probability) & real
        # Always predict the last item too: that is the position used at inference.
        last = torch.zeros_like(chosen)
        last[:, -1] = real[:, -1]
        chosen |= last
        inputs = torch.where(chosen, torch.full_like(sequences, model.mask_token), sequences)
        targets = torch.where(chosen, sequences, torch.zeros_like(sequences))
        return inputs, targets, None
    # Permutation: a random order per sequence; the last share of the order is predicted from a mask
    # token (position only, like XLNet's query stream); every position sees only earlier ones in the order.
    batch, length = sequences.shape
    noise = torch.rand(batch, length, generator=generator)
    noise = torch.where(real, noise, torch.full_like(noise, -1.0))  # pads come first in every order
    rank = noise.argsort(dim=1).argsort(dim=1)
    real_count = real.sum(dim=1, keepdim=True)
    predict_from = length - torch.clamp((real_count.float() * config.predict_share).ceil().long(), min=1)
    chosen = (rank >= predict_from) & real
    inputs = torch.where(chosen, torch.full_like(sequences, model.mask_token), sequences)
    targets = torch.where(chosen, sequences, torch.zeros_like(sequences))
    blocked = rank.unsqueeze(1) >= rank.unsqueeze(2)  # [B, query, key]: only earlier keys in the order
    return inputs, targets, blocked
