"""The training noise at the cost of a matmul (training.noise_model): the closed-form fit, the
weight-level draw against programming real device pairs, multi-level cells, sparse faults."""
import math

import numpy as np
import pytest
import torch

from devices.seeding import make_generator
from training import CrossbarLinear, HardwareConfig
from training.noise_model import DeviceNoiseModel, calibrate_noise, fit_polynomial

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def real_pair_weights(hw: HardwareConfig, w: torch.Tensor, seed: int) -> torch.Tensor:
    """``(G+ - G-)/s`` of real device pairs programmed to the weights ``w`` (one fresh device per
    entry, other seeds than the calibration) and read at ``train_t_read``."""
    g_lo, g_hi = hw.window()
    s = (g_hi - g_lo) / hw.w_max
    out = []
    for k, target in enumerate((g_lo + s * w.clamp_min(0), g_lo + s * (-w).clamp_min(0))):
        dev = hw.probe_device(tuple(w.shape), seed=seed + k)
        dev.program(target.to(dev.dtype), clip=True)
        out.append(dev.read(hw.train_t_read).to(F64))
    return (out[0] - out[1]) / s


def weight_level_draws(hw: HardwareConfig, w: torch.Tensor, seed: int) -> torch.Tensor:
    noise = calibrate_noise(hw).weight_noise(hw.w_max, hw.train_noise, dtype=F64)
    gen = make_generator(seed, "test")
    return w + noise(w, gen, make_generator(seed, "count"))


@pytest.mark.parametrize("family, preset", [("pcm", None), ("rram", "wan2022_neurram"),
                                            ("rram", "stanford_pku_memtorch")])  # the last: a mean error
def test_weight_level_draw_has_the_moments_of_programming_real_device_pairs(family, preset):
    """Per weight level, the one-randn weight-level draw has the mean and the spread of a real pair
    (two independently programmed devices; clipping at 0 S included), within sampling error plus the
    fit error the model reports."""
    hw = HardwareConfig(mode="noisy", family=family, preset=preset, seed=3, calibration_devices=2048)
    levels = torch.tensor([-1.0, -0.55, -0.15, 0.0, 0.1, 0.45, 0.8, 1.0], dtype=F64)
    n = 6000
    w = levels[:, None].expand(-1, n).contiguous()
    drawn = weight_level_draws(hw, w, 11) - w
    real = real_pair_weights(hw, w, 2024) - w
    model = calibrate_noise(hw)
    s = hw.mapping().scale
    device_sigma_max = float(model.table.sigma.max()) / s  # weight units
    mean_tol = 5 * real.std(1) * math.sqrt(2 / n) + 2 * model.fit_error["mu"] * device_sigma_max
    assert bool(((drawn.mean(1) - real.mean(1)).abs() <= mean_tol).all()), (drawn.mean(1), real.mean(1))
    ratio = drawn.std(1) / real.std(1)
    fit = model.fit_error["sigma"] * device_sigma_max / real.std(1)  # relative error the fit allows
    assert bool(((ratio - 1).abs() <= 5 * math.sqrt(1 / n) + 2 * fit).all()), ratio
    fit = max(model.fit_error["mu"], model.fit_error["sigma"])
    assert fit < 0.2  # the closed form describes the calibration well
    # the noise is a pair's: at w = 0 both devices sit at g_min and the spread is sqrt(2) sigma(g_min)
    g0 = torch.tensor([hw.window()[0]], dtype=F64)
    expected = math.sqrt(2) * float(model.sigma(g0)) / s  # up to the pair fit's error (1 % of its maximum)
    assert abs(float(drawn[3].std()) - expected) <= 5 * expected / math.sqrt(2 * n) + 0.015 * float(drawn.std(1).max())


def test_calibration_at_a_later_read_holds_the_error_left_after_drift_compensation():
    """With ``train_t_read = 1 day`` and global drift compensation, the draw has the spread of real
    PCM pairs read a day after programming and rescaled as a deployed tile is (alpha = sum G_ref /
    sum G(t) per array, from a read right after programming); that spread is clearly larger than the
    t = 0 calibration's, and the mean decay of the drift is gone from the model."""
    levels = torch.tensor([-1.0, -0.6, -0.2, 0.0, 0.3, 0.7, 1.0], dtype=F64)
    n = 4000
    w = levels[:, None].expand(-1, n).contiguous()
    t_read = 86400.0
    hw = HardwareConfig(mode="noisy", family="pcm", seed=3, calibration_devices=2048, train_t_read=t_read)
    g_lo, g_hi = hw.window()
    s = (g_hi - g_lo) / hw.w_max
    arrays = []
    for k, target in enumerate((g_lo + s * w.clamp_min(0), g_lo + s * (-w).clamp_min(0))):
        dev = hw.probe_device(tuple(w.shape), seed=500 + k)
        dev.program(target.to(dev.dtype), clip=True)
        g_ref, g_t = dev.read(0.0).to(F64), dev.read(t_read).to(F64)
        arrays.append(g_t * g_ref.sum() / g_t.sum())
    real = (arrays[0] - arrays[1]) / s - w
    drawn = weight_level_draws(hw, w, 13) - w
    ratio = drawn.std(1) / real.std(1)
    assert bool(((ratio - 1).abs() < 0.15).all()), ratio
    # the uncompensated drift (PCM loses ~40 % of its conductance in a day) is not in the model
    model = calibrate_noise(hw)
    assert float(model.table.mu.abs().max()) < 0.25 * float(model.table.sigma.max())
    uncompensated = calibrate_noise(hw.replace(drift_compensation=False))
    assert float(uncompensated.table.mu.min()) < -0.3 * g_hi
    # and the error a day later is larger than right after programming
    at_zero = weight_level_draws(hw.replace(train_t_read=0.0), w, 13) - w
    large = levels.abs() >= 0.6
    assert bool((at_zero.std(1)[large] < 0.8 * real.std(1)[large]).all())


def test_multi_level_cells_snap_to_their_levels():
    """STT-MRAM cells of 4 MTJs hold 5 levels: a weight between two levels is realised at the
    nearest one (the systematic error the draw must reproduce)."""
    hw = HardwareConfig(mode="noisy", family="stt_mram", preset="pma_mtj_delta56_x4", seed=1,
                        calibration_devices=1024)
    model = calibrate_noise(hw)
    assert model.states is not None and model.states[2] == 4
    levels = torch.tensor([-0.9, -0.3, 0.12, 0.5, 0.62, 1.0], dtype=F64)
    n = 3000
    w = levels[:, None].expand(-1, n).contiguous()
    drawn, real = weight_level_draws(hw, w, 5), real_pair_weights(hw, w, 77)
    spread = float(real.std(1).max())
    assert bool(((drawn.mean(1) - real.mean(1)).abs() <= 0.05 * spread + 5 * real.std(1) * math.sqrt(2 / n)).all())
    snapped = torch.round(levels.abs() * 4) / 4 * levels.sign()  # nearest of the 5 levels, as a weight
    assert bool(((real.mean(1) - snapped).abs() < 0.05).all())


@pytest.mark.parametrize("p_on, p_off", [(0.01, 0.02), (0.06, 0.04)])  # sparse positions / dense mask
def test_stuck_devices_pin_their_pair(p_on, p_off):
    hw = HardwareConfig(mode="noisy", family="pcm", seed=2, device_params={"p_stuck_on": p_on, "p_stuck_off": p_off})
    model = calibrate_noise(hw)
    assert (model.p_stuck_on, model.p_stuck_off) == (p_on, p_off)
    n = 200_000
    w = torch.full((n,), 0.5, dtype=F64)
    drawn = weight_level_draws(hw, w, 9)
    # G+ stuck on -> ~w_max; G+ stuck off -> ~0; G- stuck on -> ~w - w_max; G- stuck off -> ~w (healthy-like)
    near = lambda v: float(((drawn - v).abs() < 0.2).double().mean())  # noqa: E731
    for value, p in ((1.0, p_on), (0.0, p_off), (-0.5, p_on)):
        assert near(value) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n) + 2 * p * p), value
    assert near(0.5) == pytest.approx(1 - 2 * p_on - p_off, abs=0.01)


def test_fit_picks_the_lowest_consistent_degree_and_reports_its_error():
    x = np.linspace(0, 1, 17)
    se = np.full_like(x, 1e-3)
    y = 0.2 + 0.5 * x - 0.3 * x**2
    assert len(fit_polynomial(x, y, se)) == 3
    assert len(fit_polynomial(x, np.full_like(x, 0.7), se)) == 1
    model = calibrate_noise(HardwareConfig(family="pcm"))
    assert set(model.fit_error) == {"mu", "sigma"} and "degree" in model.report()
    coeffs, err = model.pair_sigma
    assert err <= 0.01
    xs = torch.linspace(0, 1, 11, dtype=F64)
    g0 = torch.tensor([model.g_min], dtype=F64)
    exact = torch.sqrt(model.sigma(model.g_min + xs * (model.g_max - model.g_min)) ** 2 + model.sigma(g0) ** 2)
    approx = torch.as_tensor(np.polynomial.polynomial.polyval(xs.numpy(), coeffs))
    assert float(((approx - exact).abs() / exact.max()).max()) <= 0.0101


def test_noise_follows_the_working_dtype_and_only_the_weight_cells():
    hw = HardwareConfig(mode="noisy", tile_rows=64, tile_cols=64, dac_bits=None, adc_bits=None, seed=4)
    torch.manual_seed(0)
    layer = CrossbarLinear(5, 3, hardware=hw)
    w32 = layer.effective_weights()
    assert w32.dtype == torch.float32 and w32.shape == (6, 3)
    layer.double()
    w64 = layer.effective_weights()
    assert w64.dtype == torch.float64 and not torch.equal(w64, layer.array_weights())
    # circuit mode: device-level draws on the weight cells, the padding stays at g_min exactly
    layer.set_mode("circuit")
    g = layer._noisy_conductances()
    assert bool((g[6:] == hw.window()[0]).all()) and bool((g[:, 6:] == hw.window()[0]).all())
    assert not torch.equal(g[:6, :6], layer.target_conductances(padded=False))


def test_noise_model_from_coefficients_rejects_nothing_silently():
    model = DeviceNoiseModel(0.0, 1e-5, (0.0,), (1e-7,))
    g = torch.full((1000,), 5e-6, dtype=F64)
    out = model.sample(g, torch.Generator().manual_seed(0))
    assert float((out - g).std()) == pytest.approx(1e-7, rel=0.15)
    pair = model.weight_noise(1.0, dtype=F64)(torch.zeros(20000, dtype=F64), torch.Generator().manual_seed(1))
    assert float(pair.std()) == pytest.approx(math.sqrt(2) * 1e-7 / 1e-5, rel=0.05)
