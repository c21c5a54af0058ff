"""devices.volatile: the MSS volatile threshold switch (exact update, presets, variation, interface)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.special import expit

from devices.volatile import (PRESETS, SwitchParameters, VolatileMemristor, VolatileParams, validate_switch_parameters,
                              volatile_conductance, volatile_params, volatile_rates, volatile_steady_state,
                              volatile_step)

F64 = torch.float64
NO_VAR = dict(d2d_r_sigma=0.0, d2d_v_sigma=0.0, d2d_tau_sigma=0.0, c2c_sigma=0.0)


def sig(z):
    return expit(z)


def rates_np(v, p: SwitchParameters, x=0.0):
    """Independent numpy rates (1/s), including the feedback-shifted thresholds."""
    vv = abs(v) if p.bipolar else v
    w = p.v_on - p.v_off
    th_on = p.v_on - p.feedback * x * w
    th_off = p.v_off + p.feedback * (1 - x) * w
    return sig((vv - th_on) / p.k_th) / p.tau_on, sig((th_off - vv) / p.k_th) / p.tau


def t64(x):
    return torch.tensor(x, dtype=F64)


# ----------------------------------------------------------------------------- presets / config
def test_presets_units_and_derived_window():
    assert set(PRESETS) == {"mif_kang2021", "ag_diffusive_wang2017", "nbo2_pickett2013"}
    d = VolatileMemristor((2, 3))
    assert d.family == "volatile" and d.preset == "mif_kang2021"
    p = d.params
    assert (p.r_on, p.r_off, p.v_on, p.v_off, p.tau, p.k_th) == (1e3, 1e5, 0.110, 0.005, 1e-4, 0.015)
    assert (p.g_min, p.g_max) == pytest.approx((1e-5, 1e-3), rel=1e-15)
    ag = VolatileMemristor.from_preset("ag_diffusive_wang2017", (4,)).params
    assert ag.r_off / ag.r_on >= 1e5 and 0.2 <= ag.v_on <= 0.5 and 1e-6 <= ag.tau <= 1e-3 and ag.bipolar
    # overriding r_on/r_off recomputes the derived window; an inconsistent explicit window is rejected
    assert VolatileMemristor((1,), r_on=2e3).params.g_max == pytest.approx(5e-4, rel=1e-15)
    with pytest.raises(ValueError, match="g_max is derived: it must equal 1/r_on"):
        VolatileMemristor((1,), g_max=2e-3)
    with pytest.raises(ValueError, match="derived"):
        volatile_params(g_min=1e-6)


def test_config_roundtrip_and_reproducibility():
    a = VolatileMemristor((50,), preset="ag_diffusive_wang2017", seed=11)
    b = VolatileMemristor.from_config(a.to_config())
    c = VolatileMemristor((50,), preset="ag_diffusive_wang2017", seed=12)
    for name in ("r_on", "r_off", "v_on", "tau", "tau_on", "x"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.r_on, c.r_on)
    n = torch.arange(50) % 4
    ga, gb = a.apply_pulses(n, interval=2e-6), b.apply_pulses(n, interval=2e-6)  # C2C noise per pulse, seeded
    assert torch.equal(ga, gb)
    assert not torch.equal(ga, c.apply_pulses(n, interval=2e-6))


# ----------------------------------------------------------------------------- exact update
CASES = [  # (preset, V, x0, dt)
    ("mif_kang2021", 0.0, 0.9, 3e-5), ("mif_kang2021", 0.06, 0.02, 2e-4), ("mif_kang2021", 0.2, 0.01, 5e-5),
    ("mif_kang2021", -0.1, 0.7, 1e-4), ("ag_diffusive_wang2017", 0.35, 0.0, 3e-6),
    ("ag_diffusive_wang2017", -0.4, 0.1, 2e-6), ("ag_diffusive_wang2017", 0.05, 1.0, 2e-4),
    ("nbo2_pickett2013", 1.001, 0.0, 4e-9), ("nbo2_pickett2013", 0.598, 1.0, 3e-9),
]


@pytest.mark.parametrize("preset,v,x0,dt", CASES)
def test_exact_update_equals_closed_form_and_solve_ivp(preset, v, x0, dt):
    p = PRESETS[preset].switch_parameters()._replace(c2c_sigma=0.0, feedback=0.0)
    a, b = rates_np(v, p)
    x_inf = a / (a + b)
    closed = x_inf + (x0 - x_inf) * math.exp(-(a + b) * dt)
    got = float(volatile_step(t64(x0), t64(v), dt, p))
    assert got == pytest.approx(closed, abs=1e-13)
    sol = solve_ivp(lambda t, x: a - (a + b) * x, (0.0, dt), [x0], method="DOP853", rtol=1e-10, atol=1e-13)
    assert abs(got - sol.y[0, -1]) <= 1e-8


def test_steady_state_rates_and_conductance():
    p = SwitchParameters()
    v = torch.linspace(-0.3, 0.3, 61, dtype=F64)
    a, b = volatile_rates(v, p)
    an, bn = rates_np(v.numpy(), p)
    assert np.allclose(a.numpy(), an, rtol=1e-12) and np.allclose(b.numpy(), bn, rtol=1e-12)
    assert torch.allclose(volatile_steady_state(v, p), a / (a + b), rtol=1e-12)
    x = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    assert torch.allclose(volatile_conductance(x, p), torch.tensor([1e-5, 0.5e-3 + 0.5e-5, 1e-3], dtype=F64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stable_for_huge_steps_and_extreme_voltages(dtype):
    for preset in PRESETS:
        p = PRESETS[preset].switch_parameters()._replace(c2c_sigma=0.0)
        x0 = torch.tensor([0.0, 0.3, 1.0, 0.999], dtype=dtype)
        for v in (0.0, 0.05, 0.5 * (p.v_on + p.v_off), 2 * p.v_on, -3.0, 100.0, -1e4):
            vt = torch.full_like(x0, v)
            for dt in (0.0, 1e-12, p.tau, 1e3 * p.tau, 1e9):
                x = volatile_step(x0, vt, dt, p)
                assert torch.isfinite(x).all() and (x >= 0).all() and (x <= 1).all()
                if dt == 0.0:
                    assert torch.equal(x, x0)
            if p.feedback == 0.0:  # exact: a huge step lands on x∞
                assert torch.allclose(volatile_step(x0, vt, 1e9, p), volatile_steady_state(vt, p).expand_as(x0),
                                      atol=1e-6 if dtype == torch.float32 else 1e-15)


@settings(max_examples=60, deadline=None)
@given(x0=st.floats(0.0, 1.0), v=st.floats(-2.0, 2.0), log_dt=st.floats(-12.0, 3.0),
       preset=st.sampled_from(sorted(PRESETS)))
def test_property_closed_form_and_bounds(x0, v, log_dt, preset):
    p = PRESETS[preset].switch_parameters()._replace(c2c_sigma=0.0, feedback=0.0)
    dt = 10.0 ** log_dt
    a, b = rates_np(v, p)
    expect = a / (a + b) + (x0 - a / (a + b)) * math.exp(-(a + b) * dt) if a + b > 0 else x0
    got = float(volatile_step(t64(x0), t64(v), dt, p))
    assert 0.0 <= got <= 1.0 and got == pytest.approx(expect, abs=1e-12)


def test_gradcheck_volatile_step():
    p = SwitchParameters()
    x = torch.tensor([0.1, 0.5, 0.9], dtype=F64, requires_grad=True)
    v = torch.tensor([0.05, 0.11, 0.2], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, v: volatile_step(x, v, 3e-5, p), (x, v))


def test_c2c_noise_is_lognormal_on_rates_and_needs_generator():
    p = SwitchParameters(c2c_sigma=0.3)
    x = torch.zeros(200_000, dtype=F64)
    with pytest.raises(ValueError, match="generator"):
        volatile_step(x, x + 0.2, 1e-6, p)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    y1, y2 = volatile_step(x, x + 0.2, 1e-6, p, g1), volatile_step(x, x + 0.2, 1e-6, p, g2)
    assert torch.equal(y1, y2)
    # at V = 0.2 V the ON rate dominates: x(dt) ≈ a dt, so log x carries the ON rate's lognormal factor
    a, b = rates_np(0.2, p)
    lx = torch.log(y1)
    assert float(lx.std()) == pytest.approx(0.3, rel=0.03)
    assert float(lx.median()) == pytest.approx(math.log(a / (a + b) * (1 - math.exp(-(a + b) * 1e-6))), abs=0.01)


# ----------------------------------------------------------------------------- switching behaviour
def test_switching_loop_threshold_hold_and_relaxation():
    d = VolatileMemristor((1,), preset="ag_diffusive_wang2017", **NO_VAR)
    p = d.params
    dt, n = 5e-8, 2000
    up = np.linspace(0.0, 0.5, n)
    v = np.concatenate([up, up[::-1]])  # 0 → 0.5 V → 0 in 200 µs
    current, x = d.simulate(torch.tensor(v)[:, None], dt)
    x, current = x[:, 0].numpy(), current[:, 0].numpy()
    k_on = int(np.argmax(x[:n] > 0.5))
    assert p.v_on - 5 * p.k_th < v[k_on] < p.v_on + 5 * p.k_th          # switches ON at the threshold
    down = slice(n, 2 * n)
    held = v[down] > p.v_off + 5 * p.k_th
    assert (x[down][held] > 0.99).all()                                 # holds ON down to v_off
    i_up = np.interp(0.2, up, current[:n])
    i_down = np.interp(0.2, up, current[down][::-1])
    assert i_down / i_up > 1e4                                          # hysteretic I-V loop
    d.step(0.0, 10 * p.tau)
    assert float(d.x[0]) < 1e-3                                         # relaxes OFF at rest
    # relaxation at 0 V: e-folding time = 1/(a(0) + b(0)) ≈ τ
    d.program(t64([d.g_max]))
    ts = np.linspace(0.0, 3 * p.tau, 3001)
    xs = np.array([float(d.relaxed_state(t)[0]) for t in ts])
    t_e = ts[int(np.argmax(xs < xs[0] / math.e))]
    assert t_e == pytest.approx(p.tau, rel=0.01)
    m = VolatileMemristor((1,))  # MIF preset: rate a(0) + b(0) = 0.584/τ (v_off is only 1/3 k_th)
    a, b = rates_np(0.0, m.params.switch_parameters())
    m.program(t64([m.g_max]))
    x_inf = float(volatile_steady_state(t64(0.0), m.params.switch_parameters()))
    assert float(m.relaxed_state(2e-4)[0]) == pytest.approx(x_inf + (1 - x_inf) * math.exp(-(a + b) * 2e-4),
                                                            rel=1e-12)


def test_feedback_makes_switching_regenerative():
    # With ρ = 1 an ON device holds anywhere above v_off and an OFF one stays OFF below v_on.
    p = PRESETS["nbo2_pickett2013"].switch_parameters()._replace(c2c_sigma=0.0)
    v = torch.full((2,), 0.8, dtype=F64)
    x = torch.tensor([0.0, 1.0], dtype=F64)
    for _ in range(1000):
        x = volatile_step(x, v, 1e-9, p)
    assert float(x[0]) < 1e-6 and float(x[1]) > 1 - 1e-6   # bistable in the window
    pure = p._replace(feedback=0.0)
    xs = volatile_steady_state(v, pure)
    assert float(xs[0]) == float(xs[1])                     # the pure MSS has a single x∞(V)


# ----------------------------------------------------------------------------- interface
def test_program_read_current_and_pulses():
    d = VolatileMemristor((3,), seed=2)
    target = torch.tensor([1e-5, 5e-4, 1e-3], dtype=F64)
    res = d.program(target, verify=True)
    assert torch.allclose(res.conductance, target, rtol=1e-12) and res.converged.all()
    assert torch.allclose(d.read(0.0), target, rtol=1e-12)
    g1, g2 = d.read(5e-5), d.read(5e-4)
    rest = volatile_conductance(volatile_steady_state(torch.zeros(3, dtype=F64), d.dynamics), d.dynamics)
    assert (g2[1:] < g1[1:]).all() and (g1[1:] < target[1:]).all()   # a volatile device forgets its write
    assert torch.allclose(d.read(10.0), rest, rtol=1e-9)
    v = torch.linspace(-0.05, 0.05, 7, dtype=F64)[:, None].repeat(1, 3).requires_grad_(True)  # batch dim
    i = d.current(v)
    assert i.shape == (7, 3) and torch.allclose(i, d.conductance() * v)
    i.sum().backward()
    assert torch.allclose(v.grad, d.conductance().expand(7, 3))
    # pulses: positive pulses above v_on switch ON; unaddressed devices relax meanwhile
    m = VolatileMemristor((3,))
    g0 = m.conductance()
    g = m.apply_pulses(torch.tensor([0, 1, 3]), amplitude=0.2, width=2e-5)
    assert g[0] <= g0[0] and g0[1] < g[1] < g[2]
    m.program(torch.full((3,), m.g_max, dtype=F64))
    g = m.apply_pulses(torch.tensor([-3, 0, 0]), amplitude=0.2, width=2e-5)  # polar device: negative = OFF
    assert g[0] < 0.85 * g[1]                                                # faster than relaxing at rest
    ag = VolatileMemristor((1,), preset="ag_diffusive_wang2017", **NO_VAR)
    assert float(ag.apply_pulses(-1, width=2e-5)[0]) > 0.9 * ag.g_max  # bipolar: either polarity switches ON


def test_d2d_statistics():
    n = 40_000
    d = VolatileMemristor((n,), preset="ag_diffusive_wang2017", seed=3)
    p = d.params
    lr_on, lr_off = torch.log(d.r_on / p.r_on), torch.log(d.r_off / p.r_off)
    tol = 4 / math.sqrt(2 * n)
    assert float(lr_on.std()) == pytest.approx(p.d2d_r_sigma, rel=tol)
    assert float(lr_off.std()) == pytest.approx(p.d2d_r_sigma, rel=tol)
    assert abs(float(lr_on.mean())) < 4 * p.d2d_r_sigma / math.sqrt(n)
    assert abs(float(torch.corrcoef(torch.stack([lr_on, lr_off]))[0, 1])) < 4 / math.sqrt(n)
    trunc = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi) / math.erf(3 / math.sqrt(2)))  # N(0,1) cut at ±3
    assert float((d.v_on / p.v_on).std()) == pytest.approx(p.d2d_v_sigma * trunc, rel=tol)
    assert float((d.tau / p.tau).std()) == pytest.approx(p.d2d_tau_sigma * trunc, rel=tol)
    assert torch.allclose(d.tau / p.tau, d.tau_on / p.tau_on)
    assert float((d.v_on / p.v_on).mean()) == pytest.approx(1.0, abs=4 * p.d2d_v_sigma / math.sqrt(n))
    assert (d.v_on > p.v_off).all() and (d.tau > 0).all()
    # zero spread gives the nominal values exactly
    z = VolatileMemristor((5,), **NO_VAR)
    assert torch.equal(z.r_on, torch.full((5,), 1e3, dtype=F64))


def test_stuck_devices():
    d = VolatileMemristor((2000,), p_stuck_on=0.1, p_stuck_off=0.1, seed=4)
    d.program(torch.full((2000,), 5e-4, dtype=F64))
    g = d.read(0.0)
    on, off = d.stuck == 1, d.stuck == -1
    assert torch.allclose(g[on], torch.full_like(g[on], d.g_max))
    assert torch.allclose(g[off], torch.full_like(g[off], d.g_min))
    assert 0.07 < float(on.double().mean()) < 0.13


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("overrides,match", [
    (dict(r_on=2e5), "r_on must be < r_off"), (dict(v_off=0.2), "v_off must be < v_on"),
    (dict(tau=-1e-4), "tau must be in"), (dict(k_th=0.0), "k_th must be in"), (dict(tau_on=float("nan")), "tau_on"),
    (dict(d2d_v_sigma=0.4), "d2d_v_sigma"), (dict(feedback=1.5), "feedback"), (dict(r_off=-1.0), "r_off"),
    (dict(c2c_sigma=-0.1), "c2c_sigma"), (dict(bogus=1.0), "unknown volatile parameter"),
])
def test_bad_parameters_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        VolatileMemristor((2,), **overrides)


def test_bad_inputs_raise():
    d = VolatileMemristor((2,))
    with pytest.raises(ValueError, match="unknown volatile preset"):
        VolatileMemristor((2,), preset="nope")
    with pytest.raises(ValueError, match="NaN"):
        d.current(torch.tensor([float("nan"), 0.0]))
    with pytest.raises(ValueError, match="voltage must be finite"):
        d.step(torch.tensor([float("nan"), 0.0]), 1e-6)
    with pytest.raises(ValueError, match="dt must be in"):
        d.step(0.1, -1.0)
    with pytest.raises(ValueError, match="t must be in"):
        d.read(-1.0)
    with pytest.raises(ValueError, match="target_conductance"):
        d.program(torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"m\.v_off must be < m\.v_on"):
        validate_switch_parameters(SwitchParameters(v_off=torch.tensor([0.0, 0.2])), "m")
    assert isinstance(d.params, VolatileParams)
