"""Physics and statistics tests of the STT-MRAM device family (devices/stt_mram.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.base import STUCK_NONE, STUCK_OFF, STUCK_ON
from devices.stt_mram import (
    STTMRAM,
    STTMRAMParams,
    critical_current,
    retention_failure_probability,
    stt_mram_params,
    switching_probability,
)

# Independent constants / formulas (CODATA 2018) so the tests do not reuse the module's code.
E, HBAR, KB, MUB = 1.602176634e-19, 1.054571817e-34, 1.380649e-23, 9.2740100783e-24
N = 20_000
Z = 4.5  # tolerance in standard errors


def ic0_ref(p) -> float:
    eta = p.polarization / (1 + p.polarization ** 2)
    return 4 * E * p.alpha * KB * p.temperature * p.delta / (HBAR * eta)


def tau_d_ref(p, ic0) -> float:
    m = p.ms * p.free_layer_volume
    return E * m * (1 + p.polarization ** 2) / (MUB * p.polarization * ic0)


def binom_ok(k_frac: float, p: float, n: int, z: float = Z) -> bool:
    se = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(k_frac - p) <= z * se + 1e-12


def fresh(preset="pma_mtj_delta56", shape=(N,), seed=0, **kw):
    return STTMRAM(shape, preset=preset, seed=seed, **kw)


# ----------------------------------------------------------------------------- presets, params
def test_presets_are_consistent_and_match_formulas():
    for name, p in STTMRAM.presets.items():
        p.validate()
        n = p.mtjs_per_cell
        tmr_read = p.tmr0 / (1 + (p.v_read / p.v_h) ** 2)
        assert p.g_max == pytest.approx(n / p.r_p, rel=1e-12), name
        assert p.g_min == pytest.approx(n / (p.r_p * (1 + tmr_read)), rel=1e-12), name
        assert p.ic0_ap_to_p == pytest.approx(ic0_ref(p), rel=1e-12), name
        assert p.ic0_p_to_ap == pytest.approx(1.5 * ic0_ref(p), rel=1e-12), name
    d = STTMRAM.presets["pma_mtj_delta56"]
    assert d == STTMRAMParams()                                  # dataclass defaults = default preset
    assert d.ic0_ap_to_p == pytest.approx(80.9e-6, rel=1e-3)     # 4eαk_BTΔ/(ħη), Δ=56, α=0.028, P=0.8
    assert 2e3 < d.r_p < 6e3 and d.tmr0 == 1.5
    assert STTMRAM.presets["pma_mtj_delta56_x4"].mtjs_per_cell == 4
    low = STTMRAM.presets["stochastic_mtj_delta25"]
    assert critical_current(0.028, 25.0, 0.8, 300.0) == pytest.approx(ic0_ref(low))
    # default write condition: WER (P→AP) ≈ 2.5e-6 at nominal Δ, Sun's WER form
    p_sw = float(switching_probability(d.i_write, d.t_write, d, direction="p_to_ap"))
    i = d.i_write / d.ic0_p_to_ap
    tau_d = tau_d_ref(d, d.ic0_p_to_ap)
    wer_ref = -math.expm1(-(math.pi ** 2 * d.delta / 4) * math.exp(-2 * (i - 1) * d.t_write / tau_d))
    assert 1 - p_sw == pytest.approx(wer_ref, rel=1e-6)
    assert 1e-6 < wer_ref < 1e-5


def test_override_recomputes_window_and_config_roundtrip():
    dev = STTMRAM((3, 2), r_p=5000.0, mtjs_per_cell=3, seed=4)
    assert dev.g_max == pytest.approx(3 / 5000.0, rel=1e-12)
    assert dev.levels.shape == (4,)
    cfg = dev.to_config()
    dev2 = STTMRAM.from_config(cfg)
    assert torch.equal(dev.mtj_r_p, dev2.mtj_r_p) and torch.equal(dev.mtj_delta, dev2.mtj_delta)
    p = stt_mram_params(delta=40.0, mtjs_per_cell=2)
    assert p.g_max == pytest.approx(2 / p.r_p)


# ----------------------------------------------------------------------------- reproducibility
def _run(seed):
    dev = STTMRAM((50, 8), preset="pma_mtj_delta56_x4", seed=seed, t_write=2e-9, p_stuck_on=0.05)
    tgt = dev.levels[torch.randint(0, 5, (50, 8), generator=torch.Generator().manual_seed(1))]
    r1 = dev.program(tgt)
    r2 = dev.program(dev.g_min, verify=True, max_pulses=20)
    g = dev.apply_pulses(torch.full((50, 8), 3))
    return [dev.mtj_r_p, dev.mtj_delta, r1.conductance, r2.pulses, g, dev.read(10.0), dev.state]


def test_same_seed_identical_different_seed_differs():
    a, b, c = _run(7), _run(7), _run(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[5], c[5])


def test_d2d_spreads():
    dev = fresh()
    p = dev.params
    lr = torch.log(dev.mtj_r_p).flatten()
    ld = torch.log(dev.mtj_delta).flatten()
    for x, mu, s in ((lr, math.log(p.r_p), p.d2d_sigma), (ld, math.log(p.delta), p.d2d_delta_sigma)):
        assert abs(float(x.mean()) - mu) < Z * s / math.sqrt(N)
        assert abs(float(x.std()) - s) < Z * s / math.sqrt(2 * N)
    # I_c0 scales with Δ per MTJ (anisotropy variation at fixed volume)
    ratio = dev.mtj_ic0_ap_to_p / dev.mtj_delta
    assert torch.allclose(ratio, torch.full_like(ratio, p.ic0_ap_to_p / p.delta))


# ----------------------------------------------------------------------------- switching laws
def test_thermal_regime_neel_brown_slope_and_intercept():
    """ln(−ln(1−P)) = ln t_p − ln τ0 − Δ(1 − I/I_c0): slope 1, intercept from Δ=25, τ0=1 ns."""
    base = fresh("stochastic_mtj_delta25", d2d_delta_sigma=0.0)
    p = base.params
    i = 0.6 * p.ic0_ap_to_p
    widths = np.array([1e-6, 3e-6, 1e-5, 3e-5, 6e-5])
    ys, ses, preds = [], [], []
    for k, tp in enumerate(widths):
        dev = fresh("stochastic_mtj_delta25", seed=100 + k, d2d_delta_sigma=0.0)
        dev.apply_pulses(1, current=i, width=float(tp))
        frac = float((dev.state == 0).double().mean())
        pred_p = -math.expm1(-tp / (p.tau0 * math.exp(p.delta * 0.4)))
        assert binom_ok(frac, pred_p, N), (tp, frac, pred_p)
        y = math.log(-math.log1p(-frac))
        se = math.sqrt(frac * (1 - frac) / N) / ((1 - frac) * -math.log1p(-frac))
        ys.append(y), ses.append(se), preds.append(math.log(tp) - math.log(p.tau0) - p.delta * 0.4)
        assert abs(y - preds[-1]) < Z * se
    x, y, w = np.log(widths), np.array(ys), 1 / np.array(ses) ** 2
    xm = np.sum(w * x) / np.sum(w)
    slope = np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / np.sum(w * (x - xm) ** 2)
    se_slope = 1 / math.sqrt(np.sum(w * (x - xm) ** 2))
    intercept = np.sum(w * y) / np.sum(w) - slope * xm
    assert abs(slope - 1) < Z * se_slope, (slope, se_slope)
    se_intercept = math.sqrt(1 / np.sum(w) + xm ** 2 / np.sum(w * (x - xm) ** 2))
    assert abs(intercept - (-math.log(p.tau0) - 0.4 * p.delta)) < Z * se_intercept, (intercept, se_intercept)
    # with the D2D spread of Δ the ensemble switches with the mean of the per-MTJ P_sw
    dev = fresh("stochastic_mtj_delta25", seed=200)
    p_i = dev.switching_probability(i, 1e-5, "ap_to_p")
    dev.apply_pulses(1, current=i, width=1e-5)
    frac, mean_p = float((dev.state == 0).double().mean()), float(p_i.mean())
    se = math.sqrt(float((p_i * (1 - p_i)).sum())) / N
    assert abs(frac - mean_p) < Z * se


@pytest.mark.parametrize("ratio", [6.0, 8.0, 11.0])
def test_precessional_median_switching_time_sun(ratio):
    """Median switching time = τ_D ln(π²Δ/(4 ln2)) / (2 (I/I_c0 − 1)) ∝ 1/(I/I_c0 − 1)."""
    dev = fresh(seed=int(ratio), d2d_delta_sigma=0.0)
    p = dev.params
    ic0 = ic0_ref(p)
    t_med = tau_d_ref(p, ic0) * math.log(math.pi ** 2 * p.delta / (4 * math.log(2))) / (2 * (ratio - 1))
    assert float(switching_probability(ratio * ic0, t_med, p)) == pytest.approx(0.5, abs=1e-9)
    dev.apply_pulses(1, current=ratio * ic0, width=t_med)
    frac = float((dev.state == 0).double().mean())
    assert binom_ok(frac, 0.5, N), frac
    # and the Gumbel shape around it: P(2 t_med) = exp(−A (ln2/A)²) with A = π²Δ/4
    a = math.pi ** 2 * p.delta / 4
    p2 = float(switching_probability(ratio * ic0, 2 * t_med, p))
    assert p2 == pytest.approx(math.exp(-a * (math.log(2) / a) ** 2))


def test_switching_probability_monotone_and_continuous():
    p = STTMRAM.presets["pma_mtj_delta56"]
    ic0 = p.ic0_ap_to_p
    currents = torch.linspace(0, 12 * ic0, 2001, dtype=torch.float64)
    widths = torch.logspace(-11, -3, 81, dtype=torch.float64)
    for direction in ("ap_to_p", "p_to_ap"):
        P = switching_probability(currents[:, None], widths[None, :], p, direction=direction)
        assert bool(((P >= 0) & (P <= 1)).all())
        assert bool((P.diff(dim=0) >= -1e-15).all()) and bool((P.diff(dim=1) >= -1e-15).all())
    below = switching_probability(ic0 * (1 - 1e-12), 2e-9, p)
    above = switching_probability(ic0, 2e-9, p)
    assert float(above) == pytest.approx(float(below), rel=1e-9)
    assert float(switching_probability(1.2 * ic0, 5e-9, p, direction="p_to_ap")) < \
        float(switching_probability(1.2 * ic0, 5e-9, p, direction="ap_to_p"))
    # the array's per-MTJ values equal the closed forms (P→AP: I_c0 × ic0_ratio_p_to_ap, its own τ_D)
    dev = fresh(shape=(3,), d2d_delta_sigma=0.0)
    for direction, ic in (("ap_to_p", ic0_ref(p)), ("p_to_ap", 1.5 * ic0_ref(p))):
        for ratio, tp in ((8.0, 4e-10), (0.7, 1e-3)):
            cur = ratio * ic0_ref(p)
            i = cur / ic
            p_th = -math.expm1(-tp / (p.tau0 * math.exp(p.delta * max(1 - i, 0))))
            if i > 1:
                decay = math.exp(-2 * (i - 1) * tp / tau_d_ref(p, ic))
                p_pr = math.exp(-(math.pi ** 2 * p.delta / 4) * decay)
                assert p_pr > p_th                                # the precessional branch is tested
            want = max(p_th, p_pr) if i > 1 else p_th
            got = dev.switching_probability(cur, tp, direction)
            assert torch.allclose(got, torch.full_like(got, want), rtol=1e-9, atol=1e-300), (direction, ratio)


# ----------------------------------------------------------------------------- retention
def test_retention_fraction_follows_symmetric_telegraph_law():
    # reads of 1 fs: no read disturb (tested below), retention alone
    dev = fresh("stochastic_mtj_delta25", d2d_delta_sigma=0.0, read_duration=1e-15)
    p = dev.params
    dev.program(dev.g_max, verify=True)
    assert bool((dev.state == 0).all())
    tau = p.tau0 * math.exp(p.delta)
    thr = 0.5 * (dev.g_max + dev.g_min)
    prev = None
    for t in (3.0, 30.0, 72.0, 300.0, 3000.0):
        flipped = dev.read(t) < thr
        frac = float(flipped.double().mean())
        pred = -0.5 * math.expm1(-2 * t / tau)
        assert binom_ok(frac, pred, N), (t, frac, pred)
        assert float(dev.retention_failure_probability(t).mean()) == pytest.approx(pred, rel=1e-9)
        if prev is not None:                                     # deterministic, monotone coupling in t
            assert bool((flipped | ~prev).all())
        prev = flipped
        assert torch.equal(dev.state_at(t), dev.state_at(t))
    # with the Δ spread: the ensemble mean of the per-MTJ law
    dev = fresh("stochastic_mtj_delta25", seed=3, read_duration=1e-15)
    dev.program(dev.g_max, verify=True)
    q = dev.retention_failure_probability(72.0)
    frac = float((dev.read(72.0) < thr).double().mean())
    assert abs(frac - float(q.mean())) < Z * math.sqrt(float((q * (1 - q)).sum())) / N
    # a Δ = 56 MTJ keeps its state for 10 years with probability ~ 1 − 1.5e-7
    ten_years = 10 * 365.25 * 86400
    p56 = float(retention_failure_probability(ten_years, STTMRAM.presets["pma_mtj_delta56"]))
    assert p56 == pytest.approx(ten_years / (1e-9 * math.exp(56)), rel=1e-6)
    assert float(retention_failure_probability(0.0, p)) == 0.0


@pytest.mark.parametrize("read_duration, p_expected", [(10e-9, 0.0103), (1e-6, 0.64)])
def test_read_disturb_of_a_low_barrier_mtj_follows_neel_brown(read_duration, p_expected):
    """Issue 17: in stochastic_mtj_delta25 a 0.1 V read drives 0.72 x I_c0(P->AP) through a P-state
    MTJ; by Neel-Brown, tau = tau0 exp(Delta (1 - I/I_c0)), it flips with ~1 % per 10-ns read and
    64 % per 1-us read. The read returns the pre-flip value; the flip is stored."""
    dev = fresh("stochastic_mtj_delta25", d2d_delta_sigma=0.0, d2d_sigma=0.0, read_noise=0.0,
                read_duration=read_duration)
    p = dev.params
    dev.state = torch.zeros_like(dev.state)                      # all parallel
    i_read = p.v_read / p.r_p
    ratio = i_read / (1.5 * ic0_ref(p))
    assert ratio == pytest.approx(0.72, abs=0.01)
    p_flip = -math.expm1(-read_duration / (p.tau0 * math.exp(p.delta * (1 - ratio))))
    assert p_flip == pytest.approx(p_expected, rel=0.03)
    g = dev.read()
    assert torch.equal(g, torch.full_like(g, dev.g_max))         # this read saw the pre-flip state
    frac = float((dev.state == 1).double().mean())
    assert binom_ok(frac, p_flip, N), (frac, p_flip)
    assert bool((dev.conductance()[dev.state[:, 0] == 1] < dev.g_max).all())  # stored for later reads
    # antiparallel MTJs are not pushed by a P->AP read; the AP->P polarity disturbs them instead
    ap = fresh("stochastic_mtj_delta25", d2d_delta_sigma=0.0, d2d_sigma=0.0, read_noise=0.0,
               read_duration=read_duration)
    ap.read()
    assert bool((ap.state == 1).all())
    rev = fresh("stochastic_mtj_delta25", d2d_delta_sigma=0.0, d2d_sigma=0.0, read_noise=0.0,
                read_duration=read_duration, read_polarity="ap_to_p")
    i_ap = p.v_read / (p.r_p * (1 + p.tmr0 / (1 + (p.v_read / p.v_h) ** 2)))
    p_ap = -math.expm1(-read_duration / (p.tau0 * math.exp(p.delta * (1 - i_ap / ic0_ref(p)))))
    assert float(rev.read_disturb_probability().mean()) == pytest.approx(p_ap, rel=1e-9)


def test_read_disturb_is_negligible_at_delta_56():
    dev = fresh("pma_mtj_delta56", shape=(1000,))
    dev.program(dev.g_max)
    assert float(dev.read_disturb_probability().max()) < 1e-12
    before = dev.state.clone()
    for _ in range(20):
        dev.read()
    assert torch.equal(dev.state, before)


def test_read_noise_is_fresh_relative_gaussian():
    dev = fresh(shape=(N,))
    g0 = dev.conductance()
    r1, r2 = dev.read(), dev.read()
    assert not torch.equal(r1, r2)
    rel = (r1 / g0 - 1)
    assert abs(float(rel.std()) - 0.005) < Z * 0.005 / math.sqrt(2 * N)
    assert abs(float(rel.mean())) < Z * 0.005 / math.sqrt(N)
    quiet = fresh(shape=(100,), read_noise=0.0)
    assert torch.equal(quiet.read(50.0), quiet.read(50.0))


# ----------------------------------------------------------------------------- I-V, TMR(V)
def test_tmr_bias_dependence_and_iv_shape():
    dev = STTMRAM((4, 5), d2d_sigma=0.0)                         # as fabricated: all AP
    p = dev.params
    v = torch.linspace(1e-4, 1.2, 200, dtype=torch.float64)
    i = dev.current(v[:, None, None])
    assert i.shape == (200, 4, 5)
    r_ap = (v[:, None, None] / i)[:, 0, 0]
    assert bool((r_ap.diff() < 0).all())                         # R_AP falls with |V|
    assert float(r_ap[0]) == pytest.approx(p.r_p * (1 + p.tmr0), rel=1e-7)
    vh = torch.tensor(p.v_h, dtype=torch.float64)
    assert float(vh / dev.current(vh)[0, 0]) == pytest.approx(p.r_p * (1 + p.tmr0 / 2), rel=1e-12)
    assert torch.allclose(dev.current(-v[:, None, None]), -i, rtol=0, atol=0)   # odd in V
    assert torch.allclose(dev.current(p.v_read) / p.v_read, dev.conductance(), rtol=1e-12)
    dev.program(dev.g_max, verify=True)                           # all P: ohmic
    g = dev.current(v[:, None, None]) / v[:, None, None]
    assert torch.allclose(g, torch.full_like(g, 1 / p.r_p), rtol=1e-12)


def test_current_is_differentiable_for_newton_solver():
    dev = STTMRAM((3, 4), preset="pma_mtj_delta56_x4", seed=2)
    dev.program(dev.levels[torch.tensor([[0, 1, 2, 3], [4, 3, 2, 1], [0, 4, 1, 2]])], verify=True)
    v = (0.3 * torch.randn(2, 3, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(dev.current, (v,))
    i = dev.current(v)
    (di,) = torch.autograd.grad(i.sum(), v)
    assert bool((di > 0).all())                                   # positive differential conductance


# ----------------------------------------------------------------------------- programming
def test_multilevel_program_quantises_to_nearest_level():
    dev = STTMRAM((2000, 2), preset="pma_mtj_delta56_x4", seed=5)
    lv = dev.levels
    k = torch.randint(0, 5, (2000, 2), generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    frac = torch.rand((2000, 2), generator=gen, dtype=torch.float64) * 0.98 - 0.49
    step = float(lv[1] - lv[0])
    tgt = (lv[k] + frac * step).clamp(dev.g_min, dev.g_max)
    assert torch.equal(dev.target_levels(tgt), k)
    single = STTMRAM((2000, 2), preset="pma_mtj_delta56_x4", seed=6)
    assert torch.equal(single.program(tgt).pulses, k)             # from all-AP: one pulse per MTJ to flip
    k_now = (single.state == 0).sum(-1)
    assert torch.equal(single.program(lv[4 - k]).pulses, (4 - k - k_now).abs())   # read-before-write
    res = dev.program(tgt, verify=True)                           # default tolerance: 1 % of the window
    assert torch.equal((dev.state == 0).sum(-1), k)               # nearest of the n+1 levels
    assert torch.equal(res.converged, res.error.abs() <= 0.01 * (dev.g_max - dev.g_min))
    err = (res.conductance - lv[k]) / lv[k]
    assert float(err.abs().max()) < 5 * 0.03                      # only the D2D spread of R_P remains
    # G = Σ_k g_k exp(−σ_R ξ_k): relative error std per cell = σ_R sqrt(Σ g_k²) / Σ g_k
    g_p, g_ap = dev.g_max / 4, dev.g_min / 4
    pred = 0.03 * torch.sqrt(k * g_p ** 2 + (4 - k) * g_ap ** 2) / lv[k]
    assert abs(float((err / pred).std()) - 1) < Z / math.sqrt(2 * err.numel())
    # on-level targets with a half-step tolerance converge everywhere
    res = dev.program(lv[k.flip(0)], verify=True, tolerance=0.5 * step)
    assert bool(res.converged.all()) and torch.equal((dev.state == 0).sum(-1), k.flip(0))


def test_single_shot_wer_and_verify_converges():
    dev = STTMRAM((N,), seed=11, t_write=2e-9, i_write=1.2 * STTMRAM.presets["pma_mtj_delta56"].ic0_p_to_ap)
    # AP -> P (all cells start AP)
    p_set = dev.switching_probability(direction="ap_to_p")[:, 0]
    res = dev.program(dev.g_max)
    fail = (dev.state[:, 0] == 1)
    assert torch.equal(res.pulses, torch.ones(N, dtype=torch.int64))
    q = 1 - p_set
    assert abs(float(fail.double().mean()) - float(q.mean())) < Z * math.sqrt(float((q * (1 - q)).sum())) / N
    assert 0.05 < float(q.mean()) < 0.5                           # the chosen write is visibly error-prone
    # verify: every cell reaches its level; mean pulses per MTJ = E[1/P_sw] (geometric law)
    dev2 = STTMRAM((N,), seed=12, t_write=2e-9, i_write=dev.params.i_write)
    p_set = dev2.switching_probability(direction="ap_to_p")[:, 0]
    res = dev2.program(dev2.g_max, verify=True, tolerance=0.5 * (dev2.g_max - dev2.g_min))
    assert bool((dev2.state == 0).all()) and bool(res.converged.all())
    mean_pulses, pred = float(res.pulses.double().mean()), float((1 / p_set).mean())
    var = float(((1 - p_set) / p_set ** 2).mean())
    assert abs(mean_pulses - pred) < Z * math.sqrt(var / N)
    # P -> AP single shot and verify
    p_reset = dev2.switching_probability(direction="p_to_ap")[:, 0]
    dev2.program(dev2.g_min)
    q = 1 - p_reset
    fail = float((dev2.state[:, 0] == 0).double().mean())
    assert abs(fail - float(q.mean())) < Z * math.sqrt(float((q * (1 - q)).sum())) / N
    dev2.program(dev2.g_min, verify=True, max_pulses=100)
    assert bool((dev2.state == 1).all())


def test_apply_pulses_stochastic_graded_potentiation():
    base = STTMRAM.presets["stochastic_mtj_delta25"]
    i = 0.6 * base.ic0_ap_to_p
    tp = -math.log(1 - 0.3) * base.tau0 * math.exp(base.delta * 0.4)     # P_sw = 0.3 per pulse
    for m in (1, 2, 4):
        dev = STTMRAM((5000,), preset="stochastic_mtj_delta25", seed=m, mtjs_per_cell=4, d2d_delta_sigma=0.0)
        dev.apply_pulses(m, current=i, width=tp)
        n_p = (dev.state == 0).sum(-1).double()
        q = 1 - (1 - 0.3) ** m
        assert abs(float(n_p.mean()) - 4 * q) < Z * math.sqrt(4 * q * (1 - q) / 5000)
    g_before = dev.conductance().clone()
    g_after = dev.apply_pulses(-20)                                # strong depression: back to AP
    assert bool((g_after <= g_before + 1e-15).all())
    assert float((dev.state == 1).double().mean()) > 0.99
    pulses = torch.zeros(5000, dtype=torch.int64)
    assert torch.equal(dev.apply_pulses(pulses), dev.conductance())


# ----------------------------------------------------------------------------- faults
def test_stuck_fault_rates_and_behaviour():
    dev = STTMRAM((N,), seed=21, p_stuck_on=0.05, p_stuck_off=0.03)
    on, off = dev.stuck == STUCK_ON, dev.stuck == STUCK_OFF
    assert binom_ok(float(on.double().mean()), 0.05, N) and binom_ok(float(off.double().mean()), 0.03, N)
    mid = dev.levels.mean()
    res = dev.program(dev.g_min, verify=True, tolerance=1e-7, max_pulses=7)
    assert torch.all(res.conductance[on] == dev.g_max) and torch.all(res.conductance[off] == dev.g_min)
    assert not bool(res.converged[on | off].any())
    assert bool((res.pulses[on] == 7).all())
    dev.apply_pulses(5)
    g = dev.conductance()
    assert torch.all(g[on] == dev.g_max) and torch.all(g[off] == dev.g_min)
    i = dev.current(0.3)
    assert torch.allclose(i[on], torch.full_like(i[on], 0.3 * dev.g_max))
    assert torch.allclose(i[off], torch.full_like(i[off], 0.3 * dev.g_min))
    ok = dev.stuck == STUCK_NONE
    assert bool((dev.conductance()[ok] > mid).all())


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    dev = STTMRAM((3, 4))
    with pytest.raises(ValueError, match="NaN"):
        dev.program(torch.full((3, 4), float("nan")))
    with pytest.raises(ValueError, match=">= 0"):
        dev.program(torch.full((3, 4), -1e-5))
    with pytest.raises(ValueError, match="g_min, g_max"):
        dev.program(torch.full((3, 4), 2 * dev.g_max))
    assert dev.program(2 * dev.g_max, clip=True).conductance.shape == (3, 4)
    with pytest.raises(ValueError, match="target_conductance has shape"):
        dev.program(torch.full((5, 4), dev.g_min))
    with pytest.raises(ValueError, match="t must be"):
        dev.read(-1.0)
    with pytest.raises(ValueError, match="t must be"):
        dev.retention_failure_probability(-1.0)
    with pytest.raises(ValueError, match="pulses has shape"):
        dev.apply_pulses(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="voltage has shape"):
        dev.current(torch.ones(5))
    with pytest.raises(ValueError, match="current must be"):
        dev.apply_pulses(1, current=-1e-4)
    with pytest.raises(ValueError, match="width must be > 0"):
        dev.apply_pulses(1, width=0.0)
    with pytest.raises(ValueError, match="pulse_width must be > 0"):
        dev.switching_probability(1e-4, -1e-9)
    with pytest.raises(ValueError, match="direction"):
        dev.switching_probability(direction="up")
    with pytest.raises(ValueError, match="tolerance"):
        dev.program(dev.g_min, verify=True, tolerance=0.0)
    with pytest.raises(ValueError, match="max_pulses"):
        dev.program(dev.g_min, verify=True, max_pulses=0)
    with pytest.raises(ValueError, match="unknown stt_mram preset"):
        STTMRAM((2,), preset="nope")
    with pytest.raises(ValueError, match="unknown stt_mram parameter"):
        STTMRAM((2,), resistance=3.0)
    with pytest.raises(ValueError, match=r"delta must be in \[1, 300\]"):
        STTMRAM((2,), delta=-5.0)
    with pytest.raises(ValueError, match="mtjs_per_cell must be an integer"):
        STTMRAM((2,), mtjs_per_cell=1.5)
    with pytest.raises(ValueError, match="r_p must be"):
        STTMRAM((2,), r_p=0.0)
    with pytest.raises(ValueError, match="d2d_delta_sigma must be"):
        STTMRAM((2,), d2d_delta_sigma=0.9)
    with pytest.raises(ValueError, match="g_max = .* is derived from r_p"):
        STTMRAMParams(g_max=1e-3).validate()
    with pytest.raises(ValueError, match="g_max = .* is derived from r_p"):
        STTMRAM((2,), g_max=1e-3)
    with pytest.raises(ValueError, match="derived"):
        stt_mram_params(g_min=1e-6)
    with pytest.raises(ValueError, match="alpha must be"):
        critical_current(1.5, 56.0, 0.8, 300.0)
    with pytest.raises(ValueError, match="pulse_width"):
        switching_probability(1e-4, -1.0, STTMRAMParams())
    with pytest.raises(ValueError, match="shape"):
        STTMRAM((0, 3))


# ----------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    seed=st.integers(0, 2 ** 31 - 1),
    n=st.integers(1, 4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    t=st.floats(0.0, 1e4),
    u=st.floats(0.0, 1.0),
    verify=st.booleans(),
)
def test_property_read_finite_nonnegative_shape_dtype(shape, seed, n, dtype, t, u, verify):
    dev = STTMRAM(shape, preset="stochastic_mtj_delta25", seed=seed, dtype=dtype, mtjs_per_cell=n,
                  p_stuck_on=0.1, p_stuck_off=0.1)
    res = dev.program(dev.g_min + u * (dev.g_max - dev.g_min), verify=verify, max_pulses=10)
    assert res.pulses.shape == shape and res.pulses.dtype == torch.int64
    assert bool((res.pulses >= 0).all()) and bool((res.pulses <= (10 if verify else n)).all())
    for g in (dev.read(t), dev.conductance(), dev.apply_pulses(1)):
        assert g.shape == shape and g.dtype == dtype
        assert bool(torch.isfinite(g).all()) and bool((g >= 0).all())
        assert bool((g <= 1.2 * dev.g_max).all())
    k = (dev.state_at(t) == 0).sum(-1)
    assert bool(((k >= 0) & (k <= n)).all())
    i = dev.current(torch.full((2, *shape), 0.2, dtype=dtype))
    assert i.shape == (2, *shape) and i.dtype == dtype and bool((i >= 0).all())
