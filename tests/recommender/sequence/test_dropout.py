"""The sequence model's training layers draw dropout masks from uniform numbers (faster on CPU than
torch's ``bernoulli_``); apart from the masks they must compute what torch's own layers compute."""

from __future__ import annotations

import copy

import pytest
import torch

from bench.sequence_training import with_standard_layers
from recommender.sequence.dropout import UniformDropout, uniform_dropout
from recommender.sequence.model import ModelConfig, Objective, SequenceModel, training_batch


def _without_dropout(model: SequenceModel) -> SequenceModel:
    for module in model.modules():
        if isinstance(module, UniformDropout):
            module.p = 0.0
    for layer in model.encoder.layers:
        layer.self_attn.dropout = 0.0
    return model


@pytest.mark.parametrize("objective", list(Objective))
def test_training_layers_compute_what_torchs_layers_compute(objective: Objective) -> None:
    torch.manual_seed(5)
    shipped = SequenceModel(ModelConfig(item_count=40, objective=objective, hidden=16, max_length=12))
    standard = with_standard_layers(copy.deepcopy(shipped)).eval()  # eval: torch's layers without dropout
    shipped = _without_dropout(shipped).train()  # train: the layers' own attention path
    sequences = torch.randint(1, 41, (6, 13))
    sequences[0, :5] = 0
    sequences[4, :11] = 0
    inputs, targets, blocked = training_batch(shipped, sequences, torch.Generator().manual_seed(1))
    outputs = []
    for model in (shipped, standard):
        model.zero_grad()
        hidden = model.encode(inputs, blocked)
        predicted = targets != 0
        loss = torch.nn.functional.cross_entropy(model.item_scores(hidden[predicted]), targets[predicted])
        loss.backward()
        gradient = model.encoder.layers[0].self_attn.in_proj_weight.grad
        assert gradient is not None
        outputs.append((hidden, gradient.clone()))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outputs[0][1], outputs[1][1], atol=1e-5, rtol=1e-4)


def test_uniform_dropout_zeroes_its_share_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    values = torch.ones(400_000)
    dropped = uniform_dropout(values, 0.3, training=True)
    assert abs(float((dropped == 0).float().mean()) - 0.3) < 0.005
    assert abs(float(dropped.mean()) - 1.0) < 0.01
    assert torch.equal(dropped[dropped != 0], torch.full_like(dropped[dropped != 0], 1 / 0.7))
    assert uniform_dropout(values, 0.3, training=False) is values


def test_a_model_saved_with_torchs_layers_loads_and_computes_the_same_state() -> None:
    torch.manual_seed(9)
    config = ModelConfig(item_count=30, hidden=16, max_length=10)
    standard = with_standard_layers(SequenceModel(config)).eval()
    shipped = SequenceModel(config)
    shipped.load_state_dict(standard.state_dict(), strict=True)
    shipped.eval()
    sequences = torch.randint(1, 31, (4, 10))
    with torch.no_grad():
        torch.testing.assert_close(shipped.next_item_state(sequences), standard.next_item_state(sequences))
