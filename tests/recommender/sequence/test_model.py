"""The user's state is computed without the padding every history in a batch shares; it must not change."""

from __future__ import annotations

import pytest
import torch

from recommender.sequence.model import ModelConfig, Objective, SequenceModel, _causal


def _padded_state(model: SequenceModel, sequences: torch.Tensor) -> torch.Tensor:
    """The state over the whole padded width, as it was computed before the padding was cut."""
    if model.config.objective is Objective.CAUSAL:
        return model.encode(sequences)[:, -1]
    with_mask = torch.cat([sequences[:, 1:], torch.full_like(sequences[:, :1], model.mask_token)], dim=1)
    if model.config.objective is Objective.MASKED:
        return model.encode(with_mask)[:, -1]
    causal = _causal(with_mask.shape[1], sequences.device).expand(len(sequences), -1, -1)
    return model.encode(with_mask, causal)[:, -1]


@pytest.mark.parametrize("objective", list(Objective))
def test_cutting_shared_padding_keeps_the_users_state(objective: Objective) -> None:
    torch.manual_seed(3)
    model = SequenceModel(ModelConfig(item_count=60, objective=objective, max_length=40)).eval()
    sequences = torch.zeros(3, 40, dtype=torch.long)
    sequences[0, -5:] = torch.tensor([1, 2, 3, 4, 5])
    sequences[1, -12:] = torch.arange(10, 22)
    sequences[2, -1] = 7
    with torch.no_grad():
        cut = model.next_item_state(sequences)
        whole = _padded_state(model, sequences)
        alone = model.next_item_state(sequences[2:])
    assert cut.shape == (3, model.config.hidden)
    torch.testing.assert_close(cut, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, whole[2:], atol=1e-5, rtol=1e-5)
    # The cut keeps each position's embedding: counting positions from 0 instead gives another state.
    with torch.no_grad():
        from_zero = model.encode(sequences[2:, -1:])[:, -1] if objective is Objective.CAUSAL else None
    if from_zero is not None:
        assert not torch.allclose(from_zero, alone)
