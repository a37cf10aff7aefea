"""EMA: warm-up decay, update rule, name-keyed state, strict loading, swapping."""

import pytest
import torch
from torch import nn

from d3_core.errors import CheckpointError, D3ConfigError
from d3_core.training.ema import ExponentialMovingAverage


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen: not tracked
    return model


def test_ema_tracks_trainable_parameters_by_name():
    ema = ExponentialMovingAverage(_model())
    assert sorted(ema.state_dict()["shadow"]) == ["0.weight", "1.bias", "1.weight"]


def test_ema_update_follows_the_warmed_up_decay_rule():
    model = _model()
    ema = ExponentialMovingAverage(model, decay=0.9)
    expected = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for n_update in range(1, 30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.9, (1 + n_update) / (10 + n_update))
        for name, p in model.named_parameters():
            if p.requires_grad:
                expected[name] -= (1 - d) * (expected[name] - p.detach())
        ema.update(model)
        assert ema.num_updates == n_update
    for name, value in expected.items():
        assert torch.allclose(ema.shadow[name], value, atol=1e-6)


def test_first_update_uses_decay_two_elevenths():
    model = _model()
    ema = ExponentialMovingAverage(model, decay=0.9999)
    assert ema.current_decay() == pytest.approx(2 / 11)


def test_average_parameters_swaps_in_the_averages_and_restores_training_weights():
    model = _model()
    ema = ExponentialMovingAverage(model)
    with torch.no_grad():
        model[1].weight.add_(1.0)
    trained = model[1].weight.detach().clone()
    with ema.average_parameters(model):
        assert torch.equal(model[1].weight, ema.shadow["1.weight"])
    assert torch.equal(model[1].weight, trained)


def test_state_dict_round_trips_exactly():
    model = _model()
    ema = ExponentialMovingAverage(model, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            model[0].weight.mul_(1.1)
        ema.update(model)
    other = ExponentialMovingAverage(_model(), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.99 and other.num_updates == 3
    assert all(torch.equal(other.shadow[n], ema.shadow[n]) for n in ema.shadow)


def test_loading_a_state_with_wrong_names_or_shapes_lists_them():
    ema = ExponentialMovingAverage(_model())
    state = ema.state_dict()
    state["shadow"] = dict(state["shadow"])
    del state["shadow"]["1.bias"]
    state["shadow"]["extra.weight"] = torch.zeros(1)
    state["shadow"]["0.weight"] = torch.zeros(5, 5)
    with pytest.raises(
        CheckpointError,
        match=r"missing \['1.bias'\]; unexpected \['extra.weight'\]; "
        r"shape mismatches \['0.weight: checkpoint \(5, 5\) vs model \(4, 3\)'\]",
    ):
        ema.load_state_dict(state)


def test_updating_from_a_different_model_is_refused():
    ema = ExponentialMovingAverage(_model())
    with pytest.raises(CheckpointError, match=r"missing from the model \['0.weight'"):
        ema.update(nn.Linear(2, 2))


def test_decay_outside_the_unit_interval_is_refused():
    with pytest.raises(D3ConfigError, match=r"decay must lie in \[0, 1\), got 1.5"):
        ExponentialMovingAverage(_model(), decay=1.5)
