"""Rate, latency and direct encoders: statistics, ordering, shapes and errors."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.encoding import direct_encode, latency_encode, rate_encode


def test_rate_frequency_matches_probability_within_binomial_tolerance():
    p = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.77, 1.0])
    T, batch = 500, 200
    s = rate_encode(p.expand(batch, -1), T, torch.Generator().manual_seed(11))
    assert s.shape == (T, batch, 6) and s.dtype == torch.float32
    n = T * batch
    freq = s.double().mean(dim=(0, 1))
    sigma = torch.sqrt(p.double() * (1 - p.double()) / n)
    assert freq[0] == 0.0 and freq[-1] == 1.0
    assert torch.all((freq - p.double()).abs() <= 5 * sigma + 1e-12), (freq, p)


def test_rate_spikes_independent_over_time():
    s = rate_encode(torch.full((4000,), 0.5), 2, 3).double()
    # the two steps of each input are independent Bernoulli(0.5): correlation ~ N(0, 1/n)
    corr = torch.corrcoef(s)[0, 1]
    assert abs(float(corr)) < 5 / math.sqrt(4000)


def test_rate_reproducible_and_clipped():
    x = torch.tensor([[-0.5, 0.2], [0.9, 3.0]], dtype=torch.float64)
    a = rate_encode(x, 50, torch.Generator().manual_seed(5))
    b = rate_encode(x, 50, 5)  # int seed = fresh generator with that seed
    c = rate_encode(x, 50, 6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float64
    assert torch.all(a[:, 0, 0] == 0) and torch.all(a[:, 1, 1] == 1)  # x < 0 silent, x > 1 always on
    assert set(a.unique().tolist()) <= {0.0, 1.0}


def test_rate_integer_input_and_errors():
    s = rate_encode(torch.tensor([0, 1, 1]), 10, 0)
    assert s.dtype == torch.float32 and torch.equal(s.sum(0), torch.tensor([0.0, 10.0, 10.0]))
    with pytest.raises(ValueError, match="x must not contain NaN"):
        rate_encode(torch.tensor([0.5, float("nan")]), 5, 0)
    with pytest.raises(ValueError, match=r"T \(number of time steps\) must be an int in \[1"):
        rate_encode(torch.tensor([0.5]), 0, 0)
    with pytest.raises(ValueError, match="T"):
        rate_encode(torch.tensor([0.5]), 2.0, 0)
    with pytest.raises(ValueError, match="generator must be a torch.Generator or an int seed"):
        rate_encode(torch.tensor([0.5]), 3, None)


@pytest.mark.parametrize("method", ["log", "linear"])
def test_latency_order_single_spike_and_threshold(method):
    T = 60
    x = torch.linspace(0.0, 1.0, 201)
    s = latency_encode(x, T, method=method, tau=20e-3, dt=1e-3, threshold=0.05)
    assert s.shape == (T, 201)
    counts = s.sum(0)
    assert torch.all(counts <= 1)
    assert torch.all(counts[x <= 0.05] == 0)
    first = torch.where(counts > 0, s.argmax(0).float(), torch.tensor(float("inf")))
    fired = first[counts > 0]
    # larger input => earlier (or equal, on the discrete grid) spike; order monotone
    assert torch.all(torch.diff(fired) <= 0)
    assert float(first[-1]) == float(fired.min())  # x = 1 spikes first
    assert float(fired.max()) > float(fired.min()) + 10  # and the code spreads over the window
    if method == "linear":
        assert torch.all(counts[x > 0.05] == 1)  # the whole (threshold, 1] maps into the window
        assert float(fired.max()) == T - 1 and float(first[-1]) == 0.0


def test_latency_log_matches_rc_charging_time():
    tau, dt, thr, T = 10e-3, 0.5e-3, 0.2, 200
    x = torch.tensor([0.21, 0.25, 0.4, 0.7, 1.0], dtype=torch.float64)
    s = latency_encode(x, T, method="log", tau=tau, dt=dt, threshold=thr)
    steps = s.argmax(0)
    expected = torch.floor(tau * torch.log(x / (x - thr)) / dt).long()
    assert torch.equal(steps, expected)
    # an RC membrane v = x (1 - exp(-t/tau)) reaches thr inside the emitted step
    t0, t1 = steps * dt, (steps + 1) * dt
    assert torch.all(x * (1 - torch.exp(-t0 / tau)) <= thr) and torch.all(x * (1 - torch.exp(-t1 / tau)) > thr)


def test_latency_late_spikes_dropped_and_clipping():
    s = latency_encode(torch.tensor([0.2001, 2.0, -1.0]), 5, method="log", tau=1e-3, dt=1e-3, threshold=0.2)
    assert s[:, 0].sum() == 0  # crossing time ~ 7.6 ms is after the 5-step window
    assert s[0, 1] == 1 and s[:, 2].sum() == 0
    assert torch.equal(latency_encode(torch.tensor([2.0]), 5), latency_encode(torch.tensor([1.0]), 5))


def test_latency_errors():
    x = torch.tensor([0.5])
    with pytest.raises(ValueError, match=r"method must be one of \['log', 'linear'\]"):
        latency_encode(x, 5, method="exp")
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        latency_encode(x, 5, threshold=0.0)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\)"):
        latency_encode(x, 5, method="linear", threshold=1.0)
    with pytest.raises(ValueError, match=r"tau must be in \(0"):
        latency_encode(x, 5, tau=-1.0)
    with pytest.raises(ValueError, match=r"dt must be in \(0"):
        latency_encode(x, 5, dt=0.0)
    with pytest.raises(ValueError, match="NaN"):
        latency_encode(torch.tensor([float("nan")]), 5)


def test_direct_encode_repeats_and_is_differentiable():
    x = torch.tensor([[0.3, -1.2], [2.0, 0.0]], requires_grad=True)
    out = direct_encode(x, 7)
    assert out.shape == (7, 2, 2) and out.is_contiguous()
    assert all(torch.equal(out[t], x.detach()) for t in range(7))
    out.sum().backward()
    assert torch.equal(x.grad, torch.full((2, 2), 7.0))
    with pytest.raises(ValueError, match="NaN"):
        direct_encode(torch.tensor([float("nan")]), 2)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), T=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_encoders_shape_dtype_values(shape, T, seed, dtype):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 1.4 - 0.2
    for out in (rate_encode(x, T, seed), latency_encode(x, T), latency_encode(x, T, method="linear")):
        assert out.shape == (T, *shape) and out.dtype == dtype
        assert set(out.unique().tolist()) <= {0.0, 1.0}
    d = direct_encode(x, T)
    assert d.shape == (T, *shape) and torch.equal(d, x.expand(T, *shape))
