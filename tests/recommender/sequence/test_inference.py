"""Serving's numpy forward pass gives the trained torch model's state for one history, for every objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recommender.sequence.inference import NumpySequenceEncoder
from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.training.sequence import left_pad


@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize(("layers", "heads"), [(2, 2), (3, 4)])
def test_numpy_state_equals_torch_for_short_full_and_overlong_histories(
    objective: Objective, layers: int, heads: int
) -> None:
    torch.manual_seed(5)
    config = ModelConfig(
        item_count=80, objective=objective, hidden=32, layers=layers, heads=heads, max_length=30
    )
    model = SequenceModel(config).eval()
    with torch.no_grad():  # larger weights than at initialisation: attention far from uniform, masks matter
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    encoder = NumpySequenceEncoder(model)
    picker = np.random.default_rng(7)
    for length in (1, 2, 9, 29, 30, 41):
        sequence = [int(item) for item in picker.integers(1, config.item_count + 1, length)]
        with torch.no_grad():
            expected = model.next_item_state(left_pad([sequence], config.max_length))[0].numpy()
        got = encoder.next_item_state(sequence)
        assert got.dtype == np.float32 and got.shape == (config.hidden,)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_a_different_history_gives_a_different_state() -> None:
    torch.manual_seed(1)
    model = SequenceModel(ModelConfig(item_count=20, max_length=10)).eval()
    encoder = NumpySequenceEncoder(model)
    assert not np.allclose(encoder.next_item_state([1, 2, 3]), encoder.next_item_state([3, 2, 1]))
