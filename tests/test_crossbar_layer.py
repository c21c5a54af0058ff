"""Behaviour and physics of ``training.CrossbarLinear`` and ``training.HardwareConfig``.

* ideal mode is ``nn.Linear`` (forward and gradients), quantisation errors stay within the
  DAC/ADC step bounds, the bias is one more crossbar row, weights clip at ``w_max``;
* noisy mode reproduces the calibrated device statistics, seeded and checkpointable;
* circuit mode equals noisy mode without parasitics and an independent ``xbar.Crossbar``
  solve of the same tiles with them; the exact backward matches finite differences;
* deployment programs real devices (PCM drift, drift compensation, determinism);
* bad hardware configs raise ``ValueError`` naming the option.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from training import CrossbarLinear, HardwareConfig, calibrate_noise
from xbar import Crossbar

F64 = torch.float64
Tensor = torch.Tensor
ZERO_WIRES = {"r_row": 0.0, "r_col": 0.0, "r_source": 0.0, "r_sense": 0.0}
WIDE_PCM = {"g_min": 1e-6, "g_max": 1e-4}  # a PCM device with a 1-100 uS window (the preset's is 0.1-25 uS)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (tests/conftest.py)


def exact(**kw) -> dict:
    """Hardware options without converters (DAC/ADC off) and without training noise."""
    return {"dac_bits": None, "adc_bits": None, "train_noise": 0.0, **kw}


def make_layer(n_in, n_out, seed=0, dtype=torch.float32, **hw) -> CrossbarLinear:
    torch.manual_seed(seed)
    return CrossbarLinear(n_in, n_out, hardware=HardwareConfig(**hw), dtype=dtype)


def linear_copy(layer: CrossbarLinear, dtype=F64) -> nn.Linear:
    lin = nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(layer.weight)
        lin.bias.copy_(layer.bias)
    return lin


def rand(*shape, seed=1, lo=-1.0, hi=1.0, dtype=torch.float32):
    return lo + (hi - lo) * torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ====================================================================== ideal mode
def test_ideal_mode_equals_nn_linear_across_tiles():
    # 20 inputs + bias = 21 rows on 8-row tiles (3 row tiles), 7 outputs on 3-pair tiles (3 col tiles)
    layer = make_layer(20, 7, mode="ideal", x_max=2.0, tile_rows=8, tile_cols=6, **exact())
    assert (layer.n_row_tiles, layer.n_col_tiles) == (3, 3)
    lin = linear_copy(layer, torch.float32)
    x = rand(13, 20)
    torch.testing.assert_close(layer(x), lin(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("x_max", [1.0, 2.0])
def test_ideal_mode_gradients_equal_nn_linear(x_max):
    layer = make_layer(9, 4, mode="ideal", x_max=x_max, tile_rows=4, tile_cols=4, **exact())
    lin = linear_copy(layer, torch.float32)
    x1 = rand(6, 9).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    c = rand(6, 4, seed=5)
    (layer(x1) * c).sum().backward()
    (lin(x2) * c).sum().backward()
    torch.testing.assert_close(layer.weight.grad, lin.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias.grad, lin.bias.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_sequence_and_batch_inputs_agree():
    layer = make_layer(6, 3, mode="ideal", dac_bits=8, adc_bits=8, adc_range=3.0, tile_rows=4, tile_cols=4)
    layer.eval()
    x = rand(5, 4, 6)  # (T, B, in)
    y = layer(x)
    assert y.shape == (5, 4, 3)
    torch.testing.assert_close(y, layer(x.reshape(20, 6)).reshape(5, 4, 3), rtol=0, atol=0)
    for t in range(5):
        torch.testing.assert_close(y[t], layer(x[t]), rtol=0, atol=0)
    assert layer(x[0, 0]).shape == (3,)
    with pytest.raises(ValueError, match="6 features"):
        layer(torch.zeros(2, 5))


def test_bias_is_a_crossbar_row_clipped_at_w_max_x_max():
    w_max, x_max = 0.5, 2.0
    layer = make_layer(3, 4, mode="ideal", w_max=w_max, x_max=x_max, **exact())
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([10.0, -10.0, 0.3, -0.7]))
    rows = layer.array_weights()
    assert rows.shape == (4, 4)  # in + 1 rows
    torch.testing.assert_close(rows[-1], torch.tensor([w_max, -w_max, 0.15, -0.35]))
    y0 = layer(torch.zeros(1, 3))[0]  # zero input: only the bias row (driven at x_max) conducts
    torch.testing.assert_close(y0, torch.tensor([w_max * x_max, -w_max * x_max, 0.3, -0.7]))
    layer.clip_weights_()
    torch.testing.assert_close(layer.bias.detach(), torch.tensor([1.0, -1.0, 0.3, -0.7]))


def test_weights_beyond_w_max_are_clipped_with_zero_gradient():
    w_max = 0.5
    layer = make_layer(4, 2, mode="ideal", w_max=w_max, **exact())
    w = torch.tensor([[2.0, -3.0, 0.2, -0.1], [0.4, 0.6, -0.45, 0.0]])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.zero_()
    x = rand(5, 4, seed=3)
    y = layer(x)
    torch.testing.assert_close(y, x @ w.clamp(-w_max, w_max).T, rtol=1e-6, atol=1e-6)
    y.sum().backward()
    outside = w.abs() > w_max
    assert bool((layer.weight.grad[outside] == 0).all())
    torch.testing.assert_close(layer.weight.grad[~outside], x.sum(0).expand(2, 4)[~outside])
    layer.clip_weights_()
    torch.testing.assert_close(layer.weight.detach(), w.clamp(-w_max, w_max))


def test_dac_quantisation_error_within_half_step_bound():
    x_max, bits = 1.0, 8
    layer = make_layer(10, 4, mode="ideal", dac_bits=bits, adc_bits=None, x_max=x_max, tile_rows=8, tile_cols=8)
    lin = linear_copy(layer)
    x = rand(400, 10, seed=7)
    y = layer(x).detach().to(F64)
    ref = lin(x.to(F64)).detach()
    step = x_max / (2 ** (bits - 1) - 1)
    bound = 0.5 * step * layer.weight.detach().to(F64).abs().sum(1) + 1e-5  # + float32 rounding
    err = (y - ref).abs()
    assert bool((err <= bound).all()), float((err / bound).max())
    assert float((err / bound).max()) > 0.2  # the quantiser is really on
    # inputs beyond the full scale saturate at x_max
    torch.testing.assert_close(layer(torch.full((1, 10), 3.0)), layer(torch.full((1, 10), x_max)))


def test_adc_outputs_lie_on_the_adc_grid():
    adc_range, bits = 2.0, 8
    layer = make_layer(6, 3, mode="ideal", dac_bits=None, adc_bits=bits, adc_range=adc_range, tile_rows=8,
                       tile_cols=8)  # one row tile: y is one ADC sample
    step = adc_range / (2 ** (bits - 1) - 1)
    y = layer(rand(50, 6)).detach().to(F64)
    codes = y / step
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-4)
    assert codes.abs().max() <= 2 ** (bits - 1) - 1


def test_dac_and_adc_error_bound_with_several_row_tiles():
    x_max, bits, adc_range = 1.0, 8, 4.0
    layer = make_layer(10, 4, mode="ideal", dac_bits=bits, adc_bits=bits, adc_range=adc_range, x_max=x_max,
                       tile_rows=4, tile_cols=8)
    assert layer.n_row_tiles == 3
    lin = linear_copy(layer)
    x = rand(400, 10, seed=11)
    y = layer(x).detach().to(F64)
    err = (y - lin(x.to(F64)).detach()).abs()
    levels = 2 ** (bits - 1) - 1
    bound = (0.5 * (x_max / levels) * layer.weight.detach().to(F64).abs().sum(1)
             + layer.n_row_tiles * 0.5 * adc_range / levels + 1e-5)
    assert bool((err <= bound).all()), float((err / bound).max())
    assert float(err.max()) > 0.1 * float(bound.min())
    # the ADC digitises every row tile's partial output, the partials are summed digitally
    step_x, step_y = x_max / levels, adc_range / levels
    xq = torch.round(torch.cat([x, torch.full((400, 1), x_max)], 1).to(F64).clamp(-x_max, x_max) / step_x) * step_x
    w = layer.array_weights().detach().to(F64)
    expected = sum(torch.round((xq[:, r:r + 4] @ w[r:r + 4]).clamp(-adc_range, adc_range) / step_y) * step_y
                   for r in range(0, 11, 4))
    diff = (y - expected).abs()
    assert float((diff > 1e-5).double().mean()) < 1e-3  # float32 ties may round the other way ...
    assert float(diff.max()) < step_y + 1e-5  # ... by one ADC step at most


def test_noise_model_sampling_follows_the_closed_form_and_injects_faults():
    from training import DeviceNoiseModel
    # mu(x) = 1 uS + 2 uS x - 3 uS x^2, sigma(x) = 0.1 uS + 0.4 uS x on the window [0, 20 uS], x = G/20 uS
    model = DeviceNoiseModel(0.0, 2e-5, (1e-6, 2e-6, -3e-6), (1e-7, 4e-7))
    n = 20000
    g = torch.tensor([1e-5, 0.5e-5, 1.5e-5], dtype=F64).repeat(n, 1)
    out = model.sample(g, torch.Generator().manual_seed(0)) - g
    x = torch.tensor([0.5, 0.25, 0.75], dtype=F64)
    mu, sd = 1e-6 + 2e-6 * x - 3e-6 * x**2, 1e-7 + 4e-7 * x
    torch.testing.assert_close(model.mu(g[0]), mu, rtol=1e-12, atol=0)
    torch.testing.assert_close(model.sigma(g[0]), sd, rtol=1e-12, atol=0)
    assert bool(((out.mean(0) - mu).abs() < 5 * sd / math.sqrt(n)).all())
    assert bool(((out.std(0) / sd - 1).abs() < 5 / math.sqrt(2 * n)).all())
    half = model.sample(g, torch.Generator().manual_seed(0), scale=0.5) - g
    torch.testing.assert_close(half, 0.5 * out, rtol=1e-9, atol=1e-20)
    # faults: a fraction of devices pinned at g_max / g_min (dense mask and sparse positions); nothing below 0 S
    for p_on, p_off, counts in ((0.1, 0.05, None), (0.01, 0.005, torch.Generator().manual_seed(2))):
        faulty = DeviceNoiseModel(1e-7, 2e-5, (-4e-6,), (2e-6,), p_stuck_on=p_on, p_stuck_off=p_off)
        g0 = torch.full((n,), 2e-6, dtype=F64)
        drawn = faulty.sample(g0, torch.Generator().manual_seed(1), count_generator=counts)
        on = ((drawn - 2e-5).abs() < 1e-18).double().mean()
        off = ((drawn - 1e-7).abs() < 1e-18).double().mean()
        assert float(on) == pytest.approx(p_on, abs=5 * math.sqrt(p_on * (1 - p_on) / n))
        assert float(off) == pytest.approx(p_off, abs=5 * math.sqrt(p_off * (1 - p_off) / n))
        assert float(drawn.min()) == 0.0 and float((drawn == 0).double().mean()) > 0.2  # clipped at 0 S


def test_adc_range_tracks_running_peak_in_training_and_freezes_in_eval():
    layer = make_layer(5, 3, mode="ideal", dac_bits=None, adc_bits=8, adc_range=None)
    assert float(layer.adc_peak) == 0.0
    x = rand(20, 5)
    layer.train()
    layer(x)
    peak = float(layer.adc_peak)
    with torch.no_grad():
        ideal = x @ layer.weight.T + layer.bias
    assert peak == pytest.approx(float(ideal.abs().max()), rel=1e-5)
    layer.eval()
    layer(3 * x)
    assert float(layer.adc_peak) == peak


# ====================================================================== noisy mode
def test_noisy_without_noise_is_the_exact_conductance_round_trip():
    hw = dict(tile_rows=4, tile_cols=4, **exact())
    layer = make_layer(6, 5, mode="noisy", **hw)
    layer.train()
    w_c = layer.array_weights().detach()
    w_noisy = layer.effective_weights().detach()
    torch.testing.assert_close(w_noisy, w_c, rtol=2e-7, atol=1e-7)
    # the pair mapping G+ = g_min + s max(w,0), G- = g_min + s max(-w,0), computed here
    g_lo, g_hi = layer.hardware.window()
    s = (g_hi - g_lo) / layer.hardware.w_max
    g = layer.target_conductances()
    w64 = w_c.to(F64)
    torch.testing.assert_close(g[:7, 0:10:2], g_lo + s * w64.clamp_min(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(g[:7, 1:10:2], g_lo + s * (-w64).clamp_min(0), rtol=1e-12, atol=0)
    assert bool((g[7:] == g_lo).all()) and bool((g[:, 10:] == g_lo).all())  # padding cells sit at g_min
    x = rand(8, 6)
    y_noisy = layer(x)
    layer.set_mode("ideal")
    torch.testing.assert_close(y_noisy, layer(x), rtol=1e-6, atol=1e-6)


def test_noise_draws_match_calibrated_statistics():
    # window above PCM's read-noise floor so no draw is clipped at 0 S
    hw = HardwareConfig(mode="noisy", g_min=5e-6, g_max=2.5e-5, dac_bits=None, adc_bits=None, train_noise=1.0,
                        seed=3, tile_rows=8, tile_cols=16)
    torch.manual_seed(0)
    layer = CrossbarLinear(7, 8, hardware=hw)
    values = torch.linspace(-1, 1, 8)  # one weight value per output column (8 devices pairs each)
    with torch.no_grad():
        layer.weight.copy_(values[:, None].expand(8, 7))
        layer.bias.copy_(values * hw.x_max)
    layer.train()
    noise = calibrate_noise(hw)
    assert noise.p_stuck_on == 0 and noise.p_stuck_off == 0
    w = layer.array_weights().detach().to(F64)
    assert torch.equal(w, values.to(F64)[None].expand(8, 8))
    s = hw.mapping().scale
    g_pos, g_neg = 5e-6 + s * w.clamp_min(0), 5e-6 + s * (-w).clamp_min(0)
    mu = (noise.mu(g_pos) - noise.mu(g_neg)) / s  # the closed form of the calibration
    sd = (noise.sigma(g_pos) ** 2 + noise.sigma(g_neg) ** 2).sqrt() / s
    assert float(sd.min()) > 0.01  # the noise is far above float32 rounding

    def draws(n):
        with torch.no_grad():
            return torch.stack([layer.effective_weights() for _ in range(n)]).to(F64)

    n = 1000
    z = (draws(n) - w - mu) / sd
    # 5-sigma tolerances: per-weight sample means, per-level pooled standard deviations (8 n samples)
    assert float(z.mean(0).abs().max()) < 5 / math.sqrt(n)
    assert float((z.transpose(0, 1).reshape(-1, 8).std(0) - 1).abs().max()) < 5 / math.sqrt(2 * 8 * n)
    # independent draws for different weights
    corr = np.corrcoef(z.reshape(n, -1).T.numpy())
    assert np.abs(corr - np.eye(corr.shape[0])).max() < 5 / math.sqrt(n)
    # train_noise scales mean and deviation
    layer.set_hardware(hw.replace(train_noise=0.5))
    z_half = (draws(n) - w - 0.5 * mu) / (0.5 * sd)
    assert float(z_half.mean(0).abs().max()) < 5 / math.sqrt(n)
    assert float((z_half.transpose(0, 1).reshape(-1, 8).std(0) - 1).abs().max()) < 5 / math.sqrt(2 * 8 * n)


def test_calibrated_sigma_matches_independent_device_programming():
    hw = HardwareConfig(mode="noisy", calibration_devices=4096, seed=1)
    noise = calibrate_noise(hw)
    k = 8  # a calibration level
    target = float(noise.table.g_levels[k])
    n = 8192
    dev = hw.probe_device((n,), seed=2024)  # other devices than the calibration array
    dev.program(torch.full((n,), target, dtype=dev.dtype), clip=True)
    err = dev.read(0.0).to(F64) - target
    rel = 5 * math.sqrt(1 / (2 * 4096) + 1 / (2 * n))
    assert float(err.std()) == pytest.approx(float(noise.table.sigma[k]), rel=rel)
    assert abs(float(err.mean()) - float(noise.table.mu[k])) < 5 * float(noise.table.sigma[k]) * math.sqrt(1 / 4096 + 1 / n)
    # the closed-form fit agrees with the measured table within its reported error
    fit = noise.sigma(torch.tensor([target], dtype=F64))
    assert abs(float(fit) - float(noise.table.sigma[k])) <= noise.fit_error["sigma"] * float(noise.table.sigma.max()) + 1e-15


def test_noise_draws_are_seeded_and_checkpointable():
    hw = HardwareConfig(mode="noisy", dac_bits=None, adc_bits=None, seed=5)
    torch.manual_seed(0)
    a = CrossbarLinear(5, 3, hardware=hw)
    b = CrossbarLinear(5, 3, hardware=hw)
    b.load_state_dict(a.state_dict())
    c = CrossbarLinear(5, 3, hardware=hw.replace(seed=6))
    c.load_state_dict({k: v for k, v in a.state_dict().items() if k != "_extra_state"}, strict=False)
    with torch.no_grad():
        wa = [a.effective_weights() for _ in range(3)]
        wb = [b.effective_weights() for _ in range(3)]
        wc = [c.effective_weights() for _ in range(3)]
    for u, v, w in zip(wa, wb, wc):
        assert torch.equal(u, v)
        assert not torch.equal(u, w)
    assert not torch.equal(wa[0], wa[1])  # fresh draw per forward
    # layers sharing one config get different streams
    d = CrossbarLinear(5, 3, hardware=hw, layer_id=1)
    d.load_state_dict({k: v for k, v in a.state_dict().items() if k != "_extra_state"}, strict=False)
    e = CrossbarLinear(5, 3, hardware=hw)
    e.load_state_dict({k: v for k, v in a.state_dict().items() if k != "_extra_state"}, strict=False)
    with torch.no_grad():
        assert not torch.equal(d.effective_weights(), e.effective_weights())
    # the extra state (generator) round-trips: saving, drawing, restoring repeats the draw
    state = a.state_dict()
    extra = a.get_extra_state()
    with torch.no_grad():
        nxt = a.effective_weights()
        a.set_extra_state(extra)
        assert torch.equal(a.effective_weights(), nxt)
    fresh = CrossbarLinear(5, 3, hardware=hw)
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh.effective_weights(), nxt)


# ====================================================================== circuit mode
def reference_circuit_output(layer: CrossbarLinear, x: Tensor, crossbar: dict) -> Tensor:
    """Independent computation: pair conductances of ``layer``'s clipped weights, padded with
    g_min cells to whole tiles, every tile solved with ``xbar.Crossbar.solve``, partial outputs
    of the row tiles summed (float64, no converters)."""
    hw = layer.hardware
    g_lo, g_hi = hw.window()
    s = (g_hi - g_lo) / hw.w_max
    w = torch.cat([layer.weight.detach().T, (layer.bias.detach() / hw.x_max)[None]]).to(F64)
    w = w.clamp(-hw.w_max, hw.w_max)
    rows, outs = w.shape
    tr, half = hw.tile_rows, hw.tile_cols // 2
    n_r, n_c = -(-rows // tr), -(-outs // half)
    g = torch.full((n_r * tr, 2 * n_c * half), g_lo, dtype=F64)
    g[:rows, 0:2 * outs:2] = g_lo + s * w.clamp_min(0)
    g[:rows, 1:2 * outs:2] = g_lo + s * (-w).clamp_min(0)
    v_unit = hw.v_read / hw.x_max
    xa = torch.zeros(x.shape[0], n_r * tr, dtype=F64)
    xa[:, :layer.in_features] = x.to(F64)
    xa[:, layer.in_features] = hw.x_max
    y = torch.zeros(x.shape[0], n_c * half, dtype=F64)
    for r in range(n_r):
        for c in range(n_c):
            tile = g[r * tr:(r + 1) * tr, c * 2 * half:(c + 1) * 2 * half]
            i = Crossbar(tile, **crossbar).solve(xa[:, r * tr:(r + 1) * tr] * v_unit)
            y[:, c * half:(c + 1) * half] += (i[:, 0::2] - i[:, 1::2]) / (v_unit * s)
    return y[:, :outs]



@pytest.mark.parametrize("training", [False, True])
def test_circuit_without_parasitics_equals_noisy_without_noise(training):
    hw = dict(tile_rows=8, tile_cols=6, crossbar=ZERO_WIRES, **exact())
    layer = make_layer(12, 5, mode="noisy", **hw)
    layer.train(training)
    x = rand(9, 12, lo=0.0)
    y_noisy = layer(x)
    layer.set_mode("circuit")
    y_circuit = layer(x)
    torch.testing.assert_close(y_circuit, y_noisy, rtol=1e-6, atol=1e-6 * float(y_noisy.detach().abs().max()))


def test_circuit_ir_drop_matches_independent_solve_with_several_tiles():
    wires = {"r_row": 5.0, "r_col": 5.0, "r_source": 1.0, "r_sense": 1.0}
    # 40 inputs + bias = 41 rows -> 2 row tiles of 32; 20 outputs -> 2 column tiles of 16 pairs
    layer = make_layer(40, 20, dtype=F64, mode="circuit", tile_rows=32, tile_cols=32, crossbar=wires,
                       **exact(g_min=1e-6, g_max=1e-4, device_params=WIDE_PCM))
    assert (layer.n_row_tiles, layer.n_col_tiles) == (2, 2)
    with torch.no_grad():
        layer.weight.mul_(5.0)  # weights up to ~0.8 of w_max: appreciable currents
    layer.eval()
    x = rand(4, 40, lo=0.0, dtype=F64)  # batch < rows: Crossbar.solve takes the nodal path
    y = layer(x).detach()
    ref = reference_circuit_output(layer, x, wires)
    torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-12)
    # IR drop: the outputs shrink compared with the ideal matmul of the same weights
    layer.set_mode("noisy")
    y_noisy = layer(x).detach()
    assert float(y.abs().mean()) < 0.98 * float(y_noisy.abs().mean())


def test_circuit_refresh_reuses_first_order_correction():
    wires = {"r_row": 5.0, "r_col": 5.0, "r_source": 1.0, "r_sense": 1.0}
    hw = HardwareConfig(mode="circuit", circuit_refresh=3, tile_rows=16, tile_cols=16, crossbar=wires,
                        **exact(g_min=1e-6, g_max=1e-4, device_params=WIDE_PCM))
    torch.manual_seed(0)
    layer = CrossbarLinear(15, 8, hardware=hw, dtype=F64)
    probe = CrossbarLinear(15, 8, hardware=hw, dtype=F64)  # eval mode: always exact
    probe.eval()
    with torch.no_grad():
        layer.weight.mul_(4.0)
    x = rand(6, 15, lo=0.0, dtype=F64)

    def exact_and_noisy(state):
        probe.load_state_dict(state)
        probe.set_mode("circuit")
        y_c = probe(x).detach()
        probe.set_mode("noisy")
        return y_c, probe(x).detach()

    layer.train()
    w0 = copy.deepcopy(layer.state_dict())
    y1 = layer(x).detach()
    c0, n0 = exact_and_noisy(w0)
    torch.testing.assert_close(y1, c0, rtol=1e-12, atol=1e-15)  # first step: exact
    for _ in range(2):  # steps 2 and 3 reuse the step-1 correction
        with torch.no_grad():
            layer.weight.add_(0.02 * torch.randn(8, 15, dtype=F64))
        y = layer(x).detach()
        c1, n1 = exact_and_noisy(layer.state_dict())
        torch.testing.assert_close(y, n1 + (c0 - n0), rtol=1e-10, atol=1e-13)
        assert not torch.allclose(y, c1, rtol=1e-9, atol=0)  # not recomputed
        assert float((y - c1).abs().max()) < 0.2 * float((n1 - c1).abs().max())  # first-order accurate
    with torch.no_grad():
        layer.weight.add_(0.02 * torch.randn(8, 15, dtype=F64))
    y4 = layer(x).detach()  # step 4: refreshed, exact again
    c4, _ = exact_and_noisy(layer.state_dict())
    torch.testing.assert_close(y4, c4, rtol=1e-12, atol=1e-15)
    # evaluation is always exact
    layer.eval()
    with torch.no_grad():
        layer.weight.add_(0.02 * torch.randn(8, 15, dtype=F64))
    c5, _ = exact_and_noisy(layer.state_dict())
    torch.testing.assert_close(layer(x).detach(), c5, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("training", [False, True])
def test_exact_backward_matches_finite_differences(training):
    wires = {"r_row": 300.0, "r_col": 300.0, "r_source": 50.0, "r_sense": 50.0}
    hw = HardwareConfig(mode="circuit", backward="exact", tile_rows=4, tile_cols=4, crossbar=wires,
                        **exact(g_min=1e-6, g_max=1e-4, device_params=WIDE_PCM))
    torch.manual_seed(2)
    layer = CrossbarLinear(5, 3, hardware=hw, dtype=F64)  # 6 rows -> 2 row tiles, 2 column tiles
    with torch.no_grad():
        layer.weight.copy_(0.2 + 0.6 * torch.rand(3, 5, dtype=F64) * torch.sign(torch.randn(3, 5, dtype=F64)))
    layer.train(training)
    x = rand(4, 5, lo=0.0, dtype=F64)
    c = rand(4, 3, seed=9, dtype=F64)

    def loss():
        return (layer(x) * c).sum()

    layer.zero_grad()
    loss().backward()
    g_w, g_b = layer.weight.grad.clone(), layer.bias.grad.clone()
    h = 1e-6
    checked = []
    for param, grad, idx in ((layer.weight, g_w, (0, 0)), (layer.weight, g_w, (2, 4)),
                             (layer.weight, g_w, (1, 3)), (layer.bias, g_b, (1,))):
        with torch.no_grad():
            old = param[idx].item()
            param[idx] = old + h
            lp = loss().item()
            param[idx] = old - h
            lm = loss().item()
            param[idx] = old
        fd = (lp - lm) / (2 * h)
        assert grad[idx].item() == pytest.approx(fd, rel=1e-6, abs=1e-10)
        checked.append(fd)
    # the exact gradient is not the straight-through one (the wires matter at these values)
    ste = CrossbarLinear(5, 3, hardware=hw.replace(backward="ste"), dtype=F64)
    ste.load_state_dict(layer.state_dict())
    ste.train(training)
    (ste(x) * c).sum().backward()
    assert not torch.allclose(ste.weight.grad, g_w, rtol=1e-3, atol=0)


# ====================================================================== deployment
def test_deploy_programs_every_tile():
    layer = make_layer(10, 5, mode="noisy", tile_rows=8, tile_cols=6, dac_bits=None, adc_bits=None)
    assert not layer.deployed
    results = layer.deploy(0.0)
    assert layer.deployed and len(results) == layer.n_row_tiles * layer.n_col_tiles == 4
    target = layer.target_conductances()
    for k, res in enumerate(results):
        r, c = divmod(k, layer.n_col_tiles)
        t = target[r * 8:(r + 1) * 8, c * 6:(c + 1) * 6]
        assert res.conductance.shape == (8, 6)
        torch.testing.assert_close((res.conductance - res.error).to(F64), t, rtol=1e-6, atol=1e-12)
    # the deployed conductances (not the training noise model) now define the weights
    g = layer.deployed_conductances()  # at t = 0, each tile scaled by its drift compensation factor
    w_dep = layer.weights_from_conductances(g).to(torch.float32)
    torch.testing.assert_close(layer.effective_weights().detach(), w_dep)
    layer.undeploy()
    assert not layer.deployed


def test_set_inference_time_validation():
    layer = make_layer(4, 2, mode="noisy")
    with pytest.raises(ValueError, match="deploy"):
        layer.set_inference_time(1.0)
    layer.deploy()
    for bad in (-1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match=r"t \(inference time\).*" + (r"-1\b" if bad == -1.0 else "")):
            layer.set_inference_time(bad)
    layer.set_inference_time(0)
    assert layer.t_inference == 0.0


def _drift_ratios(comp: bool, n_in: int, n_out: int, tile_rows: int, tile_cols: int, scale: float, x):
    hw = HardwareConfig(mode="noisy", family="pcm", drift_compensation=comp, dac_bits=None, adc_bits=None,
                        tile_rows=tile_rows, tile_cols=tile_cols)
    torch.manual_seed(0)
    layer = CrossbarLinear(n_in, n_out, hardware=hw)
    layer.eval()
    with torch.no_grad():
        layer.weight.mul_(scale)
        ideal = float(layer(x).abs().mean())
        layer.deploy(0.0)
        out = []
        for t in (1.0, 31536000.0):
            layer.set_inference_time(t)
            out.append(float(layer(x).abs().mean()) / ideal)
    return out


def test_pcm_drift_shrinks_outputs_and_compensation_restores_them():
    x = rand(256, 32, lo=0.0)
    (r1, r_year) = _drift_ratios(False, 32, 16, 33, 32, 4.0, x)  # tile sized to the layer
    assert r1 == pytest.approx(1.0, abs=0.05)
    assert r_year < 0.7 * r1  # PCM conductance drift G ~ t^-nu
    (c1, c_year) = _drift_ratios(True, 32, 16, 33, 32, 4.0, x)
    assert c1 == pytest.approx(1.0, abs=0.05)
    assert c_year == pytest.approx(c1, rel=0.08)


def test_drift_compensation_of_a_small_layer_on_a_large_tile():
    """The Yin-Yang readout layer (120 -> 3) on the default 128 x 128 tiles: alpha must come from
    the weight cells; the g_min padding drifts faster (nu = 0.1) and over-corrected by ~40 %
    after 1 year before commit 898dc31."""
    x = (rand(256, 120, lo=0.0) < 0.3).float()
    c1, c_year = _drift_ratios(True, 120, 3, 128, 128, 5.0, x)
    assert c_year == pytest.approx(c1, rel=0.08)


def test_deploy_is_deterministic_for_a_seed():
    x = rand(16, 6, lo=0.0)

    def outputs(seed, layer_id=0):
        torch.manual_seed(0)  # the same weights every time
        layer = CrossbarLinear(6, 4, hardware=HardwareConfig(mode="noisy", seed=seed, dac_bits=None, adc_bits=None),
                               layer_id=layer_id)
        layer.eval()
        layer.deploy(0.0)
        ys = [layer(x).detach()]
        layer.set_inference_time(86400.0)
        ys.append(layer(x).detach())
        return ys

    a, b, c, d = outputs(1), outputs(1), outputs(2), outputs(1, layer_id=1)
    for u, v, w, z in zip(a, b, c, d):
        assert torch.equal(u, v)
        assert not torch.equal(u, w)
        assert not torch.equal(u, z)


# ====================================================================== HardwareConfig
@pytest.mark.parametrize("changes, name", [
    ({"family": "sram"}, "family"),
    ({"family": "volatile"}, "family"),
    ({"preset": "no_such_preset"}, "preset"),
    ({"mode": "analog"}, "mode"),
    ({"backward": "adjoint"}, "backward"),
    ({"mode": "noisy", "backward": "exact"}, "backward"),
    ({"tile_cols": 63}, "tile_cols"),
    ({"tile_cols": 0}, "tile_cols"),
    ({"tile_rows": 4097}, "tile_rows"),
    ({"tile_cols": 8192}, "tile_cols"),
    ({"tile_rows": 0}, "tile_rows"),
    ({"w_max": -1.0}, "w_max"),
    ({"w_max": 0.0}, "w_max"),
    ({"w_max": float("nan")}, "w_max"),
    ({"crossbar": {"r_rows": 1.0}}, "r_rows"),
    ({"crossbar": {"r_row": -1.0}}, "r_row"),
    ({"g_min": 2e-5, "g_max": 1e-5}, "g_max"),
    ({"g_min": -1e-6}, "g_min"),
    ({"dac_bits": 0}, "dac_bits"),
    ({"adc_bits": 33}, "adc_bits"),
    ({"x_max": 0.0}, "x_max"),
    ({"train_noise": -0.1}, "train_noise"),
    ({"train_t_read": -1.0}, "train_t_read"),
    ({"circuit_refresh": 0}, "circuit_refresh"),
    ({"seed": -1}, "seed"),
    ({"device_params": {"bogus": 1.0}}, "bogus"),
])
def test_bad_hardware_options_raise_naming_the_option(changes, name):
    with pytest.raises(ValueError, match=name):
        HardwareConfig(**changes)


def test_unknown_device_param_rejected_with_explicit_window():
    with pytest.raises(ValueError, match="bogus"):
        HardwareConfig(device_params={"bogus": 1.0}, g_min=1e-7, g_max=1e-5)


def test_unknown_hardware_key_and_round_trip():
    with pytest.raises(ValueError, match="tile_row"):
        HardwareConfig.from_dict({"tile_row": 64})
    cfg = HardwareConfig(mode="circuit", backward="exact", circuit_refresh=4, family="rram",
                         preset="wan2022_neurram", device_params={"d2d_sigma": 0.1}, w_max=0.5, tile_rows=64,
                         tile_cols=32, crossbar={"r_row": 2.5, "topology": "1T1R"}, dac_bits=6, adc_bits=None,
                         adc_range=3.0, train_noise=0.5, seed=7)
    d = cfg.to_dict()
    assert HardwareConfig.from_dict(d) == cfg
    import json
    assert HardwareConfig.from_dict(json.loads(json.dumps(d))) == cfg
    d["crossbar"]["r_row"] = 9.0  # to_dict returns a copy
    assert cfg.crossbar["r_row"] == 2.5
    layer = CrossbarLinear(3, 2, hardware=cfg.to_dict())
    assert layer.hardware == cfg
    with pytest.raises(ValueError, match="hardware"):
        CrossbarLinear(3, 2, hardware=3)
