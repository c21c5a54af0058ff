"""RRAM: Stanford–PKU gap physics and Wan et al. (2022) programming statistics."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from devices.rram import RRAM, RRAMParams
from devices.rram_physics import (gap_conductance, gap_current, gap_for_conductance, gap_velocity, integrate_gap,
                                  simulate_waveform, switching_threshold)

N_STAT = 20000


def wan_sigma(g_siemens, coeffs=(0.348, 16.030, -43.853, 45.393, -16.815)):
    x = g_siemens / 40e-6
    return sum(c * x**k for k, c in enumerate(coeffs)) * 1e-6


def test_same_seed_same_numbers_different_seed_different():
    target = torch.full((32, 32), 20e-6, dtype=torch.float64)
    a, b, c = RRAM((32, 32), seed=7), RRAM((32, 32), seed=7), RRAM((32, 32), seed=8)
    for dev in (a, b, c):
        dev.program(target)
    ra, rb, rc = a.read(t=3600.0), b.read(t=3600.0), c.read(t=3600.0)
    assert torch.equal(ra, rb)
    assert not torch.equal(ra, rc)
    assert ra.dtype == torch.float64 and ra.shape == (32, 32)


@pytest.mark.parametrize("g_target", [5e-6, 20e-6, 35e-6])
def test_programming_error_matches_wan2022_fit(g_target):
    dev = RRAM((N_STAT,), seed=1, read_noise=0.0)
    res = dev.program(torch.full((N_STAT,), g_target, dtype=torch.float64))
    err = res.error.numpy()
    sigma_fit = wan_sigma(g_target)
    se_sigma = sigma_fit / math.sqrt(2 * N_STAT)
    assert abs(err.std() - sigma_fit) < 4 * se_sigma, (err.std(), sigma_fit)
    assert abs(err.mean()) < 4 * sigma_fit / math.sqrt(N_STAT)
    # the state really holds that conductance: read() at t=0 without read noise returns it
    assert torch.allclose(dev.read(0.0), res.conductance, rtol=1e-12, atol=0)


def test_relaxation_spread_grows_to_one_day_fit():
    g_target = 20e-6
    dev = RRAM((N_STAT,), seed=2, read_noise=0.0)
    dev.program(torch.full((N_STAT,), g_target, dtype=torch.float64))
    spread_1s = (dev.read(1.0) - g_target).std().item()
    spread_1d = (dev.read(86400.0) - g_target).std().item()
    fit_1d = wan_sigma(g_target, (0.701, 22.086, -50.773, 47.095, -16.458))
    assert spread_1d > spread_1s
    assert abs(spread_1d - fit_1d) < 4 * fit_1d / math.sqrt(2 * N_STAT)
    # retention is a deterministic function of t per device: two reads at the same t agree
    assert torch.equal(dev.read(86400.0), dev.read(86400.0))


def test_read_noise_sigma():
    dev = RRAM((N_STAT,), seed=3)
    dev.program(torch.full((N_STAT,), 10e-6, dtype=torch.float64))
    diff = (dev.read() - dev.conductance()).numpy()
    expected = dev.params.read_noise * dev.g_max
    assert abs(diff.std() - expected) < 4 * expected / math.sqrt(2 * N_STAT)


def test_iv_is_sinh_and_odd_and_matches_conductance():
    dev = RRAM((4, 4), seed=0)
    dev.program(torch.full((4, 4), 15e-6, dtype=torch.float64))
    p = dev.params
    v = torch.linspace(-0.6, 0.6, 25, dtype=torch.float64).reshape(25, 1, 1)
    i = dev.current(v)
    assert i.shape == (25, 4, 4)
    assert torch.allclose(i, -dev.current(-v), rtol=1e-14)
    ratio = i / dev.current(torch.tensor(p.v_read, dtype=torch.float64))
    expected = torch.sinh(v / p.v0) / math.sinh(p.v_read / p.v0)
    assert torch.allclose(ratio, expected.expand_as(ratio), rtol=1e-12)
    assert torch.allclose(dev.current(p.v_read) / p.v_read, dev.conductance(), rtol=1e-12)
    # superlinear: the chord conductance at 0.6 V exceeds the one at the read voltage
    assert bool((i[-1] / 0.6 > dev.conductance() * 1.2).all())


def test_current_is_differentiable_in_voltage():
    dev = RRAM((3, 3), seed=0)
    v = torch.full((3, 3), 0.3, dtype=torch.float64, requires_grad=True)
    dev.current(v).sum().backward()
    p = dev.params
    g_diff = dev.current(v.detach()) / (p.v0 * torch.tanh(v.detach() / p.v0))
    assert torch.allclose(v.grad, g_diff, rtol=1e-12)


def test_gap_integrator_matches_solve_ivp():
    p = RRAMParams().gap_params()
    gap0 = 1.3e-9
    for voltage, icc in [(1.8, 50e-6), (-1.2, None), (1.8, 150e-6)]:
        def rhs(_t, y):
            return [float(gap_velocity(p, torch.tensor(y[0], dtype=torch.float64),
                                       torch.tensor(voltage, dtype=torch.float64), i_compliance=icc))]
        ref = solve_ivp(rhs, (0.0, 1e-6), [gap0], method="LSODA", rtol=1e-10, atol=1e-17).y[0, -1]
        got = float(integrate_gap(p, torch.tensor([gap0], dtype=torch.float64), voltage, 1e-6,
                                  max_gap_step=2e-12, i_compliance=icc))
        assert abs(got - ref) <= 1e-3 * abs(ref - gap0) + 1e-15, (voltage, got, ref)


def test_reads_are_non_destructive_and_memtorch_set_keeps_its_threshold():
    """The Guan generation-recombination set has no field threshold: the gap moves at every
    voltage, but a 0.2 V read moves it negligibly (1e12 reads of 10 ns: < 1e-6 of G; a
    continuous 0.2 V bias for 10 years would change G by ~1 %).
    The MemTorch single-sinh set keeps its F_min gate: nothing moves below F_min t_ox/gamma."""
    dev = RRAM((100,), seed=0)
    dev.program(torch.full((100,), 20e-6, dtype=torch.float64))
    p = dev.params.gap_params()
    assert float(switching_threshold(p, dev.gap).max()) == 0.0
    vel = gap_velocity(p, dev.gap, torch.full((100,), dev.params.v_read, dtype=torch.float64), dev.i0_scale,
                       dev.rate_scale)
    read_time = 1e12 * 10e-9  # s under bias
    rel_change = (vel.abs() * read_time / dev.params.g0).max()  # dG/G = dgap/g0
    assert 0 < float(rel_change) < 1e-6
    assert 1e-3 < float((vel.abs() * 3.15e8 / dev.params.g0).max()) < 0.05
    mt = RRAM((100,), seed=0, preset="stanford_pku_memtorch")
    mt.program(torch.full((100,), 0.5e-3, dtype=torch.float64))
    g_before = mt.conductance().clone()
    threshold = float(switching_threshold(mt.params.gap_params(), mt.gap).min())
    assert threshold > mt.params.v_read
    mt.apply_pulses(50, amplitude=0.9 * threshold)
    assert torch.equal(mt.conductance(), g_before)


def _verilog_a_switch(p: RRAMParams, gap0: float, v_of_t, t_end: float, g_stop: float, direction: int):
    """The ASU/Stanford Verilog-A (and Siena ``stanfordmemristor``) equations written out
    independently: generation-recombination gap rate with the *dynamic* temperature
    ``dT/dt = |VI|/C_th - (T - T0)/tau_th`` (tau_th = 0.23 ns, C_th = 0.318 fJ/K), integrated
    by LSODA; returns the time (s) at which G(v_read) crosses ``g_stop``."""
    kb, q = 1.380649e-23, 1.602176634e-19
    c_th, tau_th = 0.318e-15, 0.23e-9

    def rhs(t, y):
        gap, temp = y
        v = v_of_t(t)
        i = p.i0 * math.exp(-gap / p.g0) * math.sinh(v / p.v0)
        gamma = p.gamma0 - p.beta_gamma * (gap / 1e-9) ** 3
        x = gamma * p.a0 * q * v / (p.t_ox * kb * temp)
        dgap = -p.vel0 * (math.exp(-q * p.ea / (kb * temp) + x) - math.exp(-q * p.ea_r / (kb * temp) - x))
        if (gap <= p.gap_min and dgap < 0) or (gap >= p.gap_max and dgap > 0):
            dgap = 0.0
        return [dgap, abs(v * i) / c_th - (temp - p.t_amb) / tau_th]

    def crossed(t, y):
        g = p.i0 * math.exp(-y[0] / p.g0) * math.sinh(p.v_read / p.v0) / p.v_read
        return (g - g_stop) * direction
    crossed.terminal = True
    sol = solve_ivp(rhs, (0.0, t_end), [gap0, p.t_amb], method="LSODA", events=crossed, rtol=1e-8,
                    atol=[1e-16, 1e-6], max_step=t_end / 2000)
    return float(sol.t_events[0][0])


def _memxbar_switch(p: RRAMParams, gap0: float, v_start: float, v_end: float | None, t_end: float,
                    g_stop: float, direction: int, steps: int = 2000):
    gp = p.gap_params()
    gap = torch.tensor([gap0], dtype=torch.float64)
    dt = t_end / steps
    for k in range(steps):
        v0 = v_start if v_end is None else v_start + (v_end - v_start) * k / steps
        v1 = v_start if v_end is None else v_start + (v_end - v_start) * (k + 1) / steps
        gap = integrate_gap(gp, gap, v0, dt, v1, max_gap_step=2e-12)
        if (float(gap_conductance(gp, gap, p.v_read)) - g_stop) * direction >= 0:
            return (k + 1) * dt
    raise AssertionError("no switching")


def test_switching_speed_and_voltage_follow_the_source_equations():
    """Guan/Yu/Wong set with its generation-recombination law (Ea_g = 1.501 eV, Ea_r = 1.5 eV,
    no F_min; ASU/Stanford Verilog-A, Siena class): the switching time of a RESET pulse and the
    SET switching voltage of a 1 V/us ramp agree with the source's own equations integrated
    independently (dynamic temperature, tau_th = 0.23 ns) to within 3 %. Before this fix the
    preset used the single-sinh law with F_min: RESET at -1.2 V took 1.08 ms (now 0.52 ms), and
    a 0.42-0.68 V hard threshold existed."""
    p = RRAMParams()
    assert (p.rate_law, p.ea, p.ea_r, p.f_min, p.t_amb) == ("generation_recombination", 1.501, 1.5, 0.0, 298.0)
    g_mid = math.sqrt(p.g_min * p.g_max)
    gp = p.gap_params()
    gap_lrs = float(gap_for_conductance(gp, torch.tensor(p.g_max, dtype=torch.float64), p.v_read))
    gap_hrs = float(gap_for_conductance(gp, torch.tensor(p.g_min, dtype=torch.float64), p.v_read))
    # switching speed: RESET at -1.4 V from the top of the window down to sqrt(g_min g_max)
    t_ref = _verilog_a_switch(p, gap_lrs, lambda t: -1.4, 1e-3, g_mid, -1)
    t_mx = _memxbar_switch(p, gap_lrs, -1.4, None, 2 * t_ref, g_mid, -1, steps=400)
    assert t_mx == pytest.approx(t_ref, rel=0.03)
    # switching voltage: SET under a 1 V/us ramp from the bottom of the window
    ramp = 1e6
    t_ref = _verilog_a_switch(p, gap_hrs, lambda t: ramp * t, 4.0 / ramp, g_mid, 1)
    t_mx = _memxbar_switch(p, gap_hrs, 0.0, 4.0, 4.0 / ramp, g_mid, 1, steps=4000)
    assert ramp * t_mx == pytest.approx(ramp * t_ref, rel=0.01)
    assert 1.5 < ramp * t_ref < 2.0  # V
    # the law itself: generation minus recombination, about twice the single-sinh rate of the old form
    gap = torch.tensor([1.0e-9], dtype=torch.float64)
    v = torch.tensor([-1.3], dtype=torch.float64)
    single = gap_velocity(gp._replace(rate_law="single_sinh"), gap, v)
    assert float(gap_velocity(gp, gap, v) / single) == pytest.approx(2.0, rel=0.05)


def test_set_abrupt_reset_gradual_and_compliance_sets_the_level():
    levels = []
    for icc in (30e-6, 60e-6, 120e-6):
        dev = RRAM((500,), seed=4, c2c_sigma=0.0)
        g0 = dev.conductance().mean().item()
        g1 = dev.apply_pulses(1, i_compliance=icc).mean().item()
        g10 = dev.apply_pulses(9, i_compliance=icc).mean().item()
        # abrupt SET: the first pulse does most of the change of the first ten
        assert (g1 - g0) > 0.6 * (g10 - g0)
        levels.append(g10)
    assert levels[0] < levels[1] < levels[2]
    dev = RRAM((500,), seed=4, c2c_sigma=0.0)
    dev.program(torch.full((500,), 38e-6, dtype=torch.float64))
    g = [dev.conductance().mean().item()]
    for _ in range(20):
        g.append(dev.apply_pulses(-1).mean().item())
    steps = -np.diff(g)
    assert (steps > 0).all()  # monotone depression
    assert steps.max() < 0.25 * (g[0] - g[-1]) * 2  # no single pulse does the whole RESET
    assert steps[0] > steps[-1]  # nonlinear: the steps shrink


def test_per_device_signed_amplitude_tensor():
    """A tensor amplitude gives every device its own signed pulse voltage; a uniform tensor
    reproduces the scalar path exactly, and the sign convention is SET > 0, RESET < 0."""
    target = torch.full((6,), 20e-6, dtype=torch.float64)
    ref, dev = RRAM((6,), seed=11), RRAM((6,), seed=11)
    ref.program(target)
    dev.program(target)
    counts = torch.tensor([2, 2, -2, -2, 0, 1])
    g_ref = ref.apply_pulses(counts, amplitude=1.3)
    g_dev = dev.apply_pulses(counts, amplitude=torch.tensor([1.3, 1.3, -1.3, -1.3, 0.0, 1.3], dtype=torch.float64))
    assert torch.equal(g_ref, g_dev)
    # each device only sees its own voltage: zero leaves it unchanged, a low amplitude barely moves it
    dev = RRAM((5,), seed=12)
    dev.program(torch.full((5,), 20e-6, dtype=torch.float64))
    g0 = dev.conductance().clone()
    amp = torch.tensor([1.6, -1.3, 0.0, 0.4, -0.4], dtype=torch.float64)
    g1 = dev.apply_pulses(torch.sign(amp).long(), amplitude=amp)
    assert g1[0] > g0[0] and g1[1] < g0[1]
    assert g1[2] == g0[2]
    assert bool(((g1[3:] - g0[3:]).abs() < 1e-9 * g0[3:]).all())
    with pytest.raises(ValueError, match="amplitude"):
        dev.apply_pulses(torch.ones(5, dtype=torch.long), amplitude=-amp.abs())
    with pytest.raises(ValueError, match="amplitude"):
        dev.apply_pulses(1, amplitude=torch.ones(3, dtype=torch.float64))


def test_c2c_noise_varies_pulse_response_d2d_varies_conductance():
    dev = RRAM((N_STAT,), seed=5)
    dev.program(torch.full((N_STAT,), 30e-6, dtype=torch.float64), verify=False)
    before = dev.conductance()
    after = dev.apply_pulses(-1)
    rel = ((before - after) / before).numpy()
    assert rel.std() > 0.1 * rel.mean()
    # D2D: at one common gap, log conductance spreads with sigma = d2d_sigma
    dev.gap = torch.full((N_STAT,), 1.0e-9, dtype=torch.float64)
    log_g = torch.log(dev.conductance()).numpy()
    assert abs(log_g.std() - dev.params.d2d_sigma) < 4 * dev.params.d2d_sigma / math.sqrt(2 * N_STAT)


def test_write_verify_noise_free_converges_and_reports_pulses():
    n = 2000
    target = torch.linspace(2e-6, 38e-6, n, dtype=torch.float64)
    dev = RRAM((n,), seed=6, read_noise=0.0)
    res = dev.program(target, verify=True, tolerance=0.5e-6, max_pulses=150)
    assert res.converged.float().mean() > 0.99
    assert res.error[res.converged].abs().max() <= 0.5e-6
    assert res.pulses.min() >= 1 and res.pulses.dtype == torch.long
    # farther from the as-fabricated state (g_min) takes more pulses on average
    assert res.pulses[-200:].float().mean() > res.pulses[:200].float().mean()


def test_write_verify_with_read_noise_guard_band():
    n = 2000
    dev = RRAM((n,), seed=6)
    target = torch.full((n,), 20e-6, dtype=torch.float64)
    res = dev.program(target, verify=True, tolerance=1e-6, max_pulses=150)
    # verify reads average 4 reads (σ 0.2 µS) and accept inside a 2σ guard band, so the true
    # conductance ends inside the tolerance for nearly every device
    assert res.converged.float().mean() > 0.98
    single_shot = RRAM((n,), seed=6).program(target).error.std()
    assert res.error.std() < 0.25 * single_shot
    # without the guard band false accepts leave many devices just outside the tolerance
    plain = RRAM((n,), seed=6, verify_margin=0.0, verify_reads=1).program(target, verify=True, tolerance=1e-6,
                                                                           max_pulses=150)
    assert plain.converged.float().mean() < res.converged.float().mean() - 0.05


def test_stuck_at_fault_rates_and_behaviour():
    p_on, p_off = 0.0904, 0.0175
    dev = RRAM((N_STAT,), seed=9, p_stuck_on=p_on, p_stuck_off=p_off)
    frac_on = (dev.stuck == 1).double().mean().item()
    frac_off = (dev.stuck == -1).double().mean().item()
    assert abs(frac_on - p_on) < 4 * math.sqrt(p_on * (1 - p_on) / N_STAT)
    assert abs(frac_off - p_off) < 4 * math.sqrt(p_off * (1 - p_off) / N_STAT)
    res = dev.program(torch.full((N_STAT,), 20e-6, dtype=torch.float64))
    assert torch.all(res.conductance[dev.stuck == 1] == dev.g_max)
    assert torch.all(res.conductance[dev.stuck == -1] == dev.g_min)
    assert not bool(res.converged[dev.stuck != 0].any())
    v = torch.tensor(0.3, dtype=torch.float64)
    assert torch.allclose(dev.current(v)[dev.stuck == 1], v * dev.g_max)


def test_waveform_simulation_set_pulse():
    p = RRAMParams().gap_params()
    times = torch.tensor([0, 10e-9, 110e-9, 120e-9, 200e-9], dtype=torch.float64)
    volts = torch.tensor([0, 1.6, 1.6, 0, 0], dtype=torch.float64)
    gap, cur = simulate_waveform(p, torch.tensor(1.3e-9, dtype=torch.float64), times, volts)
    assert gap.shape == (5,) and cur.shape == (5,)
    assert gap[-1] < gap[0]  # SET closes the gap
    assert gap[-1] == gap[-2]  # nothing moves at 0 V
    assert float(gap_conductance(p, gap[-1], 0.2)) > float(gap_conductance(p, gap[0], 0.2))
    assert torch.allclose(cur, gap_current(p, gap, volts))


@pytest.mark.parametrize("bad, match", [
    (float("nan"), "NaN"),
    (-1e-6, ">= 0"),
    (80e-6, r"\[g_min, g_max\]"),
])
def test_bad_targets(bad, match):
    dev = RRAM((2, 2), seed=0)
    with pytest.raises(ValueError, match=match):
        dev.program(torch.full((2, 2), bad, dtype=torch.float64))


def test_other_bad_inputs():
    dev = RRAM((2, 2), seed=0)
    res = dev.program(torch.full((2, 2), 80e-6, dtype=torch.float64), clip=True)
    assert res.conductance.max() <= dev.g_max * 1.5
    with pytest.raises(ValueError, match="t must be"):
        dev.read(t=-1.0)
    with pytest.raises(ValueError, match="shape"):
        dev.program(torch.full((3, 2), 10e-6, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown rram preset"):
        RRAM((2, 2), preset="nope")
    with pytest.raises(ValueError, match="unknown rram parameter"):
        RRAM((2, 2), g_maxx=1.0)
    with pytest.raises(ValueError, match="g_max must be > g_min"):
        RRAM((2, 2), g_min=50e-6, g_max=40e-6)
    with pytest.raises(ValueError, match="window"):
        RRAM((2, 2), g_max=1e-3)
    with pytest.raises(ValueError, match="tolerance"):
        dev.program(torch.full((2, 2), 10e-6, dtype=torch.float64), verify=True, tolerance=-1.0)
    with pytest.raises(ValueError, match="shape"):
        RRAM((0, 3))


def test_presets_and_config_round_trip():
    for name in RRAM.presets:
        dev = RRAM.from_preset(name, (3, 3), seed=2)
        assert dev.g_min < dev.g_max
        clone = RRAM.from_config(dev.to_config())
        assert torch.equal(clone.conductance(), dev.conductance())
        assert clone.params == dev.params


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), seed=st.integers(0, 2**31 - 1),
       frac=st.floats(0.0, 1.0), t=st.floats(0.0, 3e8), mode=st.sampled_from(["hold", "extend"]))
def test_property_read_finite_nonnegative(rows, cols, seed, frac, t, mode):
    dev = RRAM((rows, cols), seed=seed, p_stuck_on=0.05, p_stuck_off=0.05, retention_beyond_data=mode)
    target = dev.g_min + frac * (dev.g_max - dev.g_min)
    dev.program(torch.full((rows, cols), target, dtype=torch.float64))
    g = dev.read(t=t)
    assert g.shape == (rows, cols) and g.dtype == torch.float64
    assert bool(torch.isfinite(g).all()) and bool((g >= 0).all())


@pytest.mark.parametrize("side", ["min", "max"])
def test_integrate_gap_lands_on_a_bound_without_stalling(side):
    """A gap within half a step of a bound, driven outward, must reach the bound and finish
    (regression: a midpoint clamped onto the bound had zero velocity and the step crawled)."""
    p = RRAMParams().gap_params()
    step = 1e-11
    if side == "min":
        gap0, v = p.gap_min + 0.3 * step, 3.0
    else:
        gap0, v = p.gap_max - 0.3 * step, -3.0
    gap = integrate_gap(p, torch.tensor([gap0], dtype=torch.float64), v, 1e-6, max_gap_step=step, max_iter=1000)
    assert float(gap[0]) == pytest.approx(p.gap_min if side == "min" else p.gap_max, abs=1e-15)


# ----------------------------------------------------------------------------- issue 17 fixes
AIHW_1S = (0.348, 16.030, -43.853, 45.393, -16.815)  # aihwkit ReRamWan2022NoiseModel, Wan 2022, t = 1 s
AIHW_1D = (0.701, 22.086, -50.773, 47.095, -16.458)  # 1 day
AIHW_2D = (0.782, 20.274, -43.507, 37.062, -11.934)  # 2 days


def crosssim_sigma(g_siemens):
    """CrossSim RRAM_Wan: cubic fit to Wan 2022 Extended Data Fig. 3 (t = 1 s), uS with G in uS."""
    g = g_siemens * 1e6
    return (1.536e-4 * g**3 - 1.167e-2 * g**2 + 0.2374 * g + 1.053) * 1e-6


@pytest.mark.parametrize("g, ratio", [(2e-6, 1.42), (20e-6, 1.17), (40e-6, 1.55)])
def test_crosssim_digitisation_preset(g, ratio):
    """The CrossSim digitisation of the same Wan data gives sigma 42 % / 17 % / 55 % larger than
    aihwkit's at 2 / 20 / 40 uS (issue 17); its preset draws exactly that spread."""
    dev = RRAM((N_STAT,), seed=21, preset="wan2022_crosssim", read_noise=0.0)
    assert float(dev.programming_sigma(torch.tensor(g, dtype=torch.float64))) == pytest.approx(crosssim_sigma(g),
                                                                                                 rel=1e-9)
    assert crosssim_sigma(g) / wan_sigma(g) == pytest.approx(ratio, abs=0.01)
    err = dev.program(torch.full((N_STAT,), g, dtype=torch.float64)).error
    lo = dev.params.g_min  # programming is limited to what the gap reaches
    if g - 4 * crosssim_sigma(g) > lo:
        assert float(err.std()) == pytest.approx(crosssim_sigma(g), rel=4 / math.sqrt(2 * N_STAT))
    # same window and gap model as the aihwkit preset: only the digitisation differs
    ref = RRAM.presets["wan2022_neurram"]
    diff = {k for k in dataclass_fields(ref) if getattr(ref, k) != getattr(dev.params, k)}
    assert diff == {"prog_sigma_1s", "read_noise"}


def dataclass_fields(obj):
    import dataclasses
    return [f.name for f in dataclasses.fields(obj)]


def test_retention_spread_never_shrinks_and_refuses_beyond_the_data_unless_chosen():
    """aihwkit's 2-day fit lies below its 1-day fit at 10 uS (3.66 vs 3.72 uS): read literally the
    spread would shrink, and the old log-linear extrapolation gave 3.24 uS at 1 year and 3.05 uS
    at 10 years. The model uses the running maximum of the fits and refuses reads beyond 2 days
    unless retention_beyond_data is chosen."""
    g = 10e-6
    x = g / 40e-6
    s1, sd, s2 = (sum(c * x**k for k, c in enumerate(co)) * 1e-6 for co in (AIHW_1S, AIHW_1D, AIHW_2D))
    assert sd == pytest.approx(3.72e-6, abs=0.01e-6) and s2 < sd  # the fits themselves shrink
    times = [1.0, 10.0, 3600.0, 86400.0, 1.5 * 86400.0, 2 * 86400.0]
    dev = RRAM((1,), seed=0)
    sig = [float(dev.programming_sigma(torch.tensor(g, dtype=torch.float64), t)) for t in times]
    assert all(b >= a for a, b in zip(sig, sig[1:]))
    assert sig[0] == pytest.approx(s1, rel=1e-9) and sig[3] == pytest.approx(sd, rel=1e-9)
    assert sig[5] == pytest.approx(sd, rel=1e-9)  # held at the 1-day value: max(sd, s2)
    with pytest.raises(ValueError, match="retention_beyond_data"):
        dev.read(3 * 86400.0)
    hold = RRAM((1,), seed=0, retention_beyond_data="hold")
    ext = RRAM((1,), seed=0, retention_beyond_data="extend")
    year = 3.15e7
    gt = torch.tensor(g, dtype=torch.float64)
    assert float(hold.programming_sigma(gt, year)) == pytest.approx(sd, rel=1e-9)
    # extend: variance keeps growing linearly in log10(t) at the mean rate of the data
    k = (sd**2 - s1**2) / math.log10(2 * 86400.0)
    want = math.sqrt(sd**2 + k * math.log10(year / (2 * 86400.0)))
    assert float(ext.programming_sigma(gt, year)) == pytest.approx(want, rel=1e-9)
    assert float(ext.programming_sigma(gt, 10 * year)) > float(ext.programming_sigma(gt, year)) > sd
    # the choice is named in the device's config (and so in a study's results)
    assert ext.to_config()["params"]["retention_beyond_data"] == "extend"


def test_readme_write_verify_converges_and_its_guarantees_hold_over_10k_devices():
    """README snippet: program 20 uS, verify=True, tolerance 0.5 uS, max_pulses 100. Before: 84 %
    converged, the rest 0.5-1.4 uS off (the last pulse went unverified and accepted devices kept
    being re-pulsed). Guarantees (module docstring): an accepted device is never pulsed again; a
    device is never left further from the target than it started; converged devices are inside
    the tolerance."""
    n = 10_000
    dev = RRAM((n,), seed=0)
    target = torch.full((n,), 20e-6, dtype=torch.float64)
    res = dev.program(target, verify=True, tolerance=0.5e-6, max_pulses=100)
    assert float(res.converged.double().mean()) > 0.995
    assert bool((res.error[res.converged].abs() <= 0.5e-6).all())
    assert bool((res.error.abs() <= res.initial_error.abs()).all())
    assert int(res.pulses.max()) <= 100
    # re-programming the same array to new targets: still never worse than the start
    new = torch.linspace(2e-6, 38e-6, n, dtype=torch.float64)
    res2 = dev.program(new, verify=True, tolerance=0.5e-6, max_pulses=100)
    assert float(res2.converged.double().mean()) > 0.99
    assert bool((res2.error.abs() <= res2.initial_error.abs() + 1e-12).all())
    # the verify loop averages enough reads for a 3-sigma guard band of half the tolerance
    sigma_v, band = dev.verify_statistics(0.5e-6)
    assert 0.25e-6 <= band == pytest.approx(0.5e-6 - 3 * sigma_v, rel=1e-12) and sigma_v <= 0.25e-6 / 3
    with pytest.raises(ValueError, match="tolerance must be >="):
        dev.verify_statistics(0.01e-6)
