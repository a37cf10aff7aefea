"""Noise schedules: endpoints, monotonicity, sigma' = d sigma / dt, errors."""

import math

import pytest
import torch

from d3_core.diffusion.noise import GeometricNoise, LogLinearNoise, build_noise, sample_train_times
from d3_core.errors import D3ConfigError

SCHEDULES = [GeometricNoise(), GeometricNoise(1e-3, 5.0), LogLinearNoise(), LogLinearNoise(1e-2)]


def test_geometric_noise_hits_its_endpoints():
    noise = GeometricNoise()
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert torch.allclose(noise.total_noise(t), torch.tensor([1e-4, 20.0], dtype=torch.float64))


def test_loglinear_noise_hits_its_endpoints():
    noise = LogLinearNoise(eps=1e-3)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.0, -math.log(1e-3)], dtype=torch.float64)
    assert torch.allclose(noise.total_noise(t), expected)


@pytest.mark.parametrize("noise", SCHEDULES, ids=repr)
def test_noise_increases_strictly_with_time(noise):
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert (noise.total_noise(t).diff() > 0).all()


@pytest.mark.parametrize("noise", SCHEDULES, ids=repr)
def test_rate_is_the_time_derivative_of_total_noise(noise):
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    h = 1e-6
    numeric = (noise.total_noise(t + h) - noise.total_noise(t - h)) / (2 * h)
    assert torch.allclose(noise.rate_noise(t), numeric, rtol=1e-6)
    t_grad = t.clone().requires_grad_(True)
    (autograd,) = torch.autograd.grad(noise.total_noise(t_grad).sum(), t_grad)
    assert torch.allclose(noise.rate_noise(t), autograd, rtol=1e-10)


@pytest.mark.parametrize("noise", SCHEDULES, ids=repr)
def test_calling_a_schedule_returns_total_and_rate(noise):
    t = torch.rand(7, dtype=torch.float64)
    sigma, dsigma = noise(t)
    assert torch.allclose(sigma, noise.total_noise(t))
    assert torch.allclose(dsigma, noise.rate_noise(t))


def test_build_noise_accepts_names_and_parameters():
    assert build_noise("geometric", sigma_min=1e-3, sigma_max=10) == GeometricNoise(1e-3, 10)
    assert build_noise("log-linear") == LogLinearNoise()


def test_build_noise_rejects_an_unknown_schedule():
    with pytest.raises(D3ConfigError, match=r"unknown noise schedule 'cosine'.*geometric"):
        build_noise("cosine")


def test_build_noise_rejects_unknown_parameters():
    with pytest.raises(D3ConfigError, match="bad parameters for 'geometric' noise"):
        build_noise("geometric", sigma=3.0)


def test_geometric_noise_rejects_inverted_bounds():
    with pytest.raises(D3ConfigError, match=r"0 < sigma_min < sigma_max.*sigma_min=20"):
        GeometricNoise(sigma_min=20.0, sigma_max=1e-4)


def test_loglinear_noise_rejects_eps_outside_the_unit_interval():
    with pytest.raises(D3ConfigError, match=r"0 < eps < 1, got eps=1\.5"):
        LogLinearNoise(eps=1.5)


def test_training_times_lie_in_eps_to_one_and_follow_the_seed():
    t = sample_train_times(10_000, eps=1e-3, generator=torch.Generator().manual_seed(0))
    assert t.shape == (10_000,) and t.min() >= 1e-3 and t.max() < 1.0
    assert abs(t.mean().item() - 0.5) < 0.02
    again = sample_train_times(10_000, eps=1e-3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, again)


@pytest.mark.parametrize("eps", [0.0, 1.0])
def test_training_times_reject_an_eps_outside_the_open_unit_interval(eps):
    with pytest.raises(D3ConfigError, match=rf"eps must lie in \(0, 1\), got {eps}"):
        sample_train_times(3, eps=eps)
