"""circuits.neurons.mif: exact-splitting MIF neuron vs analytic / solve_ivp references, Euler failure."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.special import expit

from circuits.neurons.mif import (X_INIT_KANG2021, MIFNeuron, MIFParameters, MIFState, analog_readout, clip_to_rails,
                                  count_spikes, membrane_step, mif_initial_state, mif_step, mif_step_euler, spike_readout)
from devices.volatile import SwitchParameters

F64 = torch.float64
P = MIFParameters()
# SI values of the MIF preset, written out independently of the package
C, E1, E2, R_ON, R_OFF, V_ON, V_OFF, TAU, K_TH = 1e-10, 0.0, 0.05, 1e3, 1e5, 0.110, 0.005, 1e-4, 0.015


def rhs(t, y, i_of_t):
    v, x1, x2 = y
    dv = i_of_t(t)
    dx = []
    for x, e in ((x1, E1), (x2, E2)):
        vk = v - e
        a, b = expit((vk - V_ON) / K_TH) / TAU, expit((V_OFF - vk) / K_TH) / TAU
        dx.append(a - (a + b) * x)
        dv -= (x / R_ON + (1 - x) / R_OFF) * vk
    return [dv / C, *dx]


def reference(i_of_t, t_end, y0=(0.0, X_INIT_KANG2021, X_INIT_KANG2021)):
    return solve_ivp(rhs, (0.0, t_end), list(y0), method="Radau", rtol=1e-11, atol=1e-14, args=(i_of_t,),
                     dense_output=True, max_step=2e-7)


def simulate(step, i_dc, t_end, dt, p=P):
    n = int(round(t_end / dt))
    s = mif_initial_state((1,), dtype=F64)
    i = torch.tensor([i_dc], dtype=F64)
    out = []
    for _ in range(n):
        v, s = step(i, s, p, dt)
        out.append(float(v[0]))
    return dt * np.arange(1, n + 1), np.array(out)


@pytest.fixture(scope="module")
def dc_reference():
    return reference(lambda t: 20e-6, 100e-6)


# ----------------------------------------------------------------------------- membrane
def test_membrane_step_is_the_analytic_solution():
    v0 = torch.tensor([0.0, 0.3, -0.1], dtype=F64)
    i = torch.tensor([2e-6, -1e-6, 5e-5], dtype=F64)
    g1 = torch.tensor([1e-5, 1e-3, 3e-4], dtype=F64)
    g2 = torch.tensor([2e-5, 1e-5, 1e-3], dtype=F64)
    for dt in (1e-9, 1e-7, 1e-6, 1e-3):
        got = membrane_step(v0, i, g1, g2, E1, E2, C, dt)
        for k in range(3):
            gt = float(g1[k] + g2[k])
            v_inf = (float(i[k]) + float(g1[k]) * E1 + float(g2[k]) * E2) / gt
            exact = v_inf + (float(v0[k]) - v_inf) * math.exp(-gt * dt / C)
            assert float(got[k]) == pytest.approx(exact, rel=1e-13, abs=1e-16)
    # semigroup property: two half steps are one full step
    half = membrane_step(membrane_step(v0, i, g1, g2, E1, E2, C, 5e-7), i, g1, g2, E1, E2, C, 5e-7)
    assert torch.allclose(half, membrane_step(v0, i, g1, g2, E1, E2, C, 1e-6), rtol=1e-13, atol=1e-16)


# ----------------------------------------------------------------------------- full step vs solve_ivp
def test_full_step_matches_solve_ivp_at_small_dt(dc_reference):
    t, v = simulate(mif_step, 20e-6, 100e-6, 5e-8)
    ref = dc_reference.sol(t)[0]
    swing = ref.max() - ref.min()
    assert swing > 0.15  # M1 switches: a real spike-like transient (v peaks ≈ 0.22 V, repolarises)
    assert np.abs(v - ref).max() / swing <= 1e-4


def test_convergence_as_dt_to_zero(dc_reference):
    errs = {}
    for split in ("strang", "lie"):
        for dt in (4e-7, 2e-7, 1e-7):
            t, v = simulate(mif_step, 20e-6, 100e-6, dt, P._replace(splitting=split))
            errs[split, dt] = np.abs(v - dc_reference.sol(t)[0]).max()
    order = math.log2(errs["strang", 2e-7] / errs["strang", 1e-7])
    assert order > 1.8                                           # Strang: second order
    assert errs["strang", 4e-7] > errs["strang", 2e-7] > errs["strang", 1e-7]
    assert math.log2(errs["lie", 2e-7] / errs["lie", 1e-7]) > 0.9  # Lie: at least first order
    assert errs["strang", 1e-7] < errs["lie", 1e-7]


def test_forward_euler_goes_wrong_where_exact_update_is_accurate(dc_reference):
    # The paper's step (Δt = 1 µs ↔ one code step): once M1 turns ON, G1 Δt / C ≈ 10 and the
    # Euler membrane factor 1 − G_tot Δt/C leaves (−1, 1).
    t, v_exact = simulate(mif_step, 20e-6, 100e-6, 1e-6)
    ref = dc_reference.sol(t)[0]
    swing = ref.max() - ref.min()
    assert np.abs(v_exact - ref).max() / swing < 0.02
    with np.errstate(all="ignore"):
        t, v_euler = simulate(mif_step_euler, 20e-6, 100e-6, 1e-6)
        err = np.abs(v_euler - ref)
    assert (~np.isfinite(v_euler)).any() or np.nanmax(err) / swing > 100
    # ... and it is the step size: at Δt = 5 ns forward Euler is fine too
    t, v_small = simulate(mif_step_euler, 20e-6, 20e-6, 5e-9)
    assert np.abs(v_small - dc_reference.sol(t)[0]).max() / swing < 0.01


def test_si_mapping_reproduces_the_coded_units():
    # The allzp/snntorch MIF update in its own units (mV-like volts, unit step), Jacobi order.
    r_on, r_off, v_on, v_off, tau, k_th, c, e1, e2 = 1e3, 1e5, 110.0, 5.0, 100.0, 15.0, 1e-4, 0.0, 50.0
    v, x1, x2 = 0.0, X_INIT_KANG2021, X_INIT_KANG2021
    i_code = 5e-3
    s = mif_initial_state((1,), dtype=F64)
    for _ in range(200):
        g1, g2 = x1 / r_on + (1 - x1) / r_off, x2 / r_on + (1 - x2) / r_off
        dx = [(1 / tau) * ((1 - x) * expit((v - e - v_on) / k_th) - x * expit((v_off - (v - e)) / k_th))
              for x, e in ((x1, e1), (x2, e2))]
        v, x1, x2 = v + (i_code - g1 * (v - e1) - g2 * (v - e2)) / c, x1 + dx[0], x2 + dx[1]
        v_si, s = mif_step_euler(torch.tensor([i_code * 1e-3], dtype=F64), s, P, 1e-6)  # 1 mA per code unit
        assert float(v_si[0]) == pytest.approx(1e-3 * v, rel=1e-9, abs=1e-15)
        assert (float(s.x1[0]), float(s.x2[0])) == pytest.approx((x1, x2), rel=1e-9)


# ----------------------------------------------------------------------------- stability, gradients
def test_stiff_parameters_stay_finite():
    s = MIFState(torch.tensor([0.0, 0.2, -0.1], dtype=F64), torch.tensor([1.0, 0.5, 0.0], dtype=F64),
                 torch.tensor([1.0, 0.0, 1.0], dtype=F64))
    i = torch.tensor([1e-2, 0.0, -1e-3], dtype=F64)
    for p, dt in ((P._replace(c=1e-18), 1e-6), (P, 10.0), (P, 1e-6)):
        state = s
        for _ in range(20):
            v, state = mif_step(i, state, p, dt)
            assert torch.isfinite(v).all()
            assert ((state.x1 >= 0) & (state.x1 <= 1) & (state.x2 >= 0) & (state.x2 <= 1)).all()
    # G Δt / C ≈ 1e9: the membrane lands exactly on E_eff of the step's conductances (Lie order:
    # the conductances used are those after the device update), no overshoot
    v, new = mif_step(i, s, P._replace(c=1e-18, splitting="lie"), 1e-6)
    g1, g2 = new.x1 / R_ON + (1 - new.x1) / R_OFF, new.x2 / R_ON + (1 - new.x2) / R_OFF
    assert torch.allclose(v, (i + g1 * E1 + g2 * E2) / (g1 + g2), rtol=1e-12)


def test_gradcheck_mif_step():
    # currents in µA so that gradcheck's finite-difference step (1e-6) is small against them
    i_ua = torch.tensor([[5.0, 20.0], [0.0, 40.0]], dtype=F64, requires_grad=True)
    v = torch.tensor([[0.02, 0.12], [0.3, 0.05]], dtype=F64, requires_grad=True)
    x1 = torch.tensor([[0.02, 0.3], [0.9, 0.1]], dtype=F64)
    x2 = torch.tensor([[0.05, 0.2], [0.5, 0.01]], dtype=F64)
    for split in ("strang", "lie"):
        p = P._replace(splitting=split)

        def f(i_ua, v):
            out, s = mif_step(i_ua * 1e-6, MIFState(v, x1, x2), p, 1e-6)
            return out, s.x1, s.x2

        assert torch.autograd.gradcheck(f, (i_ua, v))


def test_bptt_gradient_through_a_sequence():
    neuron = MIFNeuron(3, dtype=F64)
    i = torch.full((60, 2, 3), 1e-5, dtype=F64, requires_grad=True)
    loss = analog_readout(neuron(i), neuron.dt, "integral").sum()
    loss.backward()
    assert torch.isfinite(i.grad).all() and (i.grad.abs().sum((1, 2)) > 0).all()


# ----------------------------------------------------------------------------- input compliance rails
def test_rails_match_an_independent_hard_rail_reference():
    """200 µA DC with the upper rail at 0.3 V: the onset transient runs into the rail, is held
    there while M1 switches ON (V across it 0.3 V > v_on), and leaves it once M1's current
    exceeds the input. Reference: Radau-free RK45 of the ODE whose dv/dt is zeroed at the rail
    while the unconstrained dv/dt points outward (the hard-rail source), independent of the
    clip-the-exact-step scheme; the torch scheme converges to it as Δt and v_knee shrink."""
    v_high, i_dc = 0.3, 200e-6

    def rhs_rail(t, y):
        d = rhs(t, y, lambda t: i_dc)
        if y[0] >= v_high and d[0] > 0:
            d[0] = 0.0
        return d

    ref = solve_ivp(rhs_rail, (0.0, 60e-6), [0.0, X_INIT_KANG2021, X_INIT_KANG2021], method="RK45", rtol=1e-10,
                    atol=1e-13, max_step=2e-9, dense_output=True)
    t_fine = np.linspace(0, 60e-6, 6001)
    v_ref = ref.sol(t_fine)[0]
    held = np.mean(v_ref > v_high - 1e-6)
    assert 0.02 < held < 0.9 and v_ref[-1] < v_high - 0.05  # it rides the rail for a while, then leaves it
    errors = {}
    for dt in (1e-7, 2e-8):
        t, v = simulate(mif_step, i_dc, 60e-6, dt, P._replace(v_high=v_high, v_knee=1e-5))
        errors[dt] = np.abs(v - ref.sol(t)[0]).max() / np.ptp(v_ref)
        assert v.max() <= v_high + 1e-12
    assert errors[2e-8] < 1e-4 and errors[1e-7] < 1e-3, errors  # measured 2.6e-5, 3.0e-4


def test_rails_bound_the_membrane_for_any_input_and_leave_the_range_untouched():
    i = torch.tensor([[-1e-2, -1e-3, 0.0, 20e-6, 1e-3, 1e-2]], dtype=F64).expand(50, 1, 6)
    free = MIFNeuron(6, dtype=F64)(i)
    assert float(free.abs().max()) > 50.0  # an ideal source drives the membrane to tens of volts
    railed = MIFNeuron(6, v_low=-0.5, v_high=0.5, v_knee=0.02, dtype=F64)(i)
    assert float(railed.min()) >= -0.5 and float(railed.max()) <= 0.5 + 1e-12
    assert float(railed[-1, 0, 0]) < -0.5 + 0.02 * math.log(2) and float(railed[-1, 0, -1]) > 0.5 - 0.02 * math.log(2)
    # inside the range the smoothed clip changes v by at most v_knee·exp(−distance/v_knee)
    far = MIFNeuron(2, v_low=-10.0, v_high=10.0, dtype=F64)(i[:, :, 2:4])
    torch.testing.assert_close(far, free[:, :, 2:4], rtol=0, atol=1e-13)  # rounding of v_high − (v_high − v)
    near = railed[:, :, 3] - free[:, :, 3]  # the 20 µA spike peaks at 0.22 V, 0.28 V from the rail
    assert float(near.abs().max()) <= 0.02 * math.exp(-0.27 / 0.02)


def test_gradcheck_through_an_active_rail():
    v = torch.tensor([0.45, 0.5, 0.55, -0.52], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: clip_to_rails(v, -0.5, 0.5, 0.02), (v,))
    i_ua = torch.tensor([[300.0, 2000.0]], dtype=F64, requires_grad=True)
    s = mif_initial_state((1, 2), dtype=F64)
    p = P._replace(v_low=-0.5, v_high=0.3)

    def f(i_ua):
        return mif_step(i_ua * 1e-6, s, p, 1e-6)[0]

    assert torch.autograd.gradcheck(f, (i_ua,))
    out = f(i_ua)
    out.sum().backward()
    assert float(out.detach().max()) > 0.29 and (i_ua.grad > 0).all()  # at the rail the gradient is small, not zero


# ----------------------------------------------------------------------------- behaviour
def test_pulse_response_is_spike_like_without_reset():
    neuron = MIFNeuron(3, dtype=F64)
    t = np.arange(600) * neuron.dt
    i = torch.zeros(600, 1, 3, dtype=F64)
    on = torch.tensor((t % 200e-6) < 10e-6)
    for k, amp in enumerate((1e-5, 2e-5, 5e-5)):
        i[on, 0, k] = amp
    v, s = neuron(i, return_states=True)
    level = neuron.v_spike
    assert torch.equal(count_spikes(v, level), torch.full((1, 3), 3))
    for start in (0, 200, 400):
        seg = v[start:start + 60, 0]
        assert (seg[:10].max(0).values > level).all()            # crosses the readout level
        assert (seg[25:].max(0).values < level).all()           # and repolarises after the pulse
    # the larger inputs switch M1 ON, which repolarises v while the input is still on
    peak = v[:10, 0, 2].argmax()
    assert float(v[peak, 0, 2]) > 0.3 and float(v[9, 0, 2]) < 0.8 * float(v[peak, 0, 2])
    assert float(s.x1[:10, 0, 2].max()) > 0.1
    assert torch.equal(s.v, v)


def test_spike_readout_is_detached_and_analog_readouts():
    v = torch.tensor([[0.0], [0.05], [0.02], [0.04]], dtype=F64, requires_grad=True)
    s = spike_readout(v, 0.03)
    assert not s.requires_grad and torch.equal(s[:, 0], torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=F64))
    assert int(count_spikes(v, 0.03)[0]) == 2
    with torch.no_grad():
        assert float(analog_readout(v, 1e-6, "integral")[0]) == pytest.approx(0.11e-6)
        assert float(analog_readout(v, 1e-6, "peak")[0]) == pytest.approx(0.05)
        assert float(analog_readout(v, 1e-6, "mean")[0]) == pytest.approx(0.0275)
    analog_readout(v, 1e-6, "peak").sum().backward()
    assert v.grad[1, 0] == 1.0
    with pytest.raises(ValueError, match="mode"):
        analog_readout(v, 1e-6, "max")


def test_float32_matches_float64_and_chunking():
    i = torch.rand(80, 2, 4, generator=torch.Generator().manual_seed(0), dtype=F64) * 3e-5
    v64 = MIFNeuron(4, dtype=F64)(i)
    n32 = MIFNeuron(4)
    v32 = n32(i.float())
    assert v32.dtype == torch.float32
    assert (v32.double() - v64).abs().max() < 1e-4 * (v64.max() - v64.min())
    n = MIFNeuron(4, dtype=F64)
    full, states = n(i, return_states=True)
    first, s1 = n(i[:30], return_states=True)
    last = MIFState(s1.v[-1], s1.x1[-1], s1.x2[-1])
    assert torch.allclose(torch.cat([first, n(i[30:], last)]), full, rtol=0, atol=1e-15)


def test_device_variation_per_neuron_seeded():
    a = MIFNeuron(8, d2d=0.1, seed=3, dtype=F64)
    b = MIFNeuron(8, d2d=0.1, seed=3, dtype=F64)
    c = MIFNeuron(8, d2d=0.1, seed=4, dtype=F64)
    assert torch.equal(a.m1_r_on, b.m1_r_on) and not torch.equal(a.m1_r_on, c.m1_r_on)
    assert len(set(a.m1_v_on.tolist())) == 8 and not torch.equal(a.m1_v_on, a.m2_v_on)
    i = torch.full((50, 1, 8), 2e-5, dtype=F64)
    va = a(i)
    assert torch.equal(va, b(i)) and va[:, 0].std(1).max() > 0
    assert torch.equal(MIFNeuron(8, dtype=F64).m1_r_on, torch.full((8,), R_ON, dtype=F64))
    # C2C noise: reproducible from the seed, different from the noise-free run
    n1, n2 = MIFNeuron(8, c2c_sigma=0.2, seed=3, dtype=F64), MIFNeuron(8, c2c_sigma=0.2, seed=3, dtype=F64)
    w1 = n1(i)
    assert torch.equal(w1, n2(i)) and not torch.equal(w1, MIFNeuron(8, seed=3, dtype=F64)(i))
    assert torch.equal(n1(i, generator=torch.Generator().manual_seed(9)),
                       n2(i, generator=torch.Generator().manual_seed(9)))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,match", [
    (dict(c=-1e-10), "c .membrane capacitance"), (dict(c=0.0), "c .membrane capacitance"),
    (dict(device_overrides=dict(v_off=0.2)), "v_off must be < v_on"),
    (dict(device_overrides=dict(r_on=1e6)), "r_on must be < r_off"), (dict(splitting="rk4"), "splitting"),
    (dict(d2d=0.5), "d2d"), (dict(dt=0.0), "dt"), (dict(e2=float("nan")), "e2"), (dict(x_init=1.5), "x_init"),
    (dict(n=2.5), "number of neurons"), (dict(v_low=0.5, v_high=0.5), "v_low must be < v_high"),
    (dict(v_knee=0.0), "v_knee"), (dict(v_high=float("nan")), "v_high"),
])
def test_bad_parameters_raise(kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=match):
        MIFNeuron(kwargs.pop("n", 2), **kwargs)


def test_bad_inputs_raise():
    n = MIFNeuron(3)
    with pytest.raises(ValueError, match="finite"):
        n(torch.tensor([[[0.0, float("nan"), 0.0]]]))
    with pytest.raises(ValueError, match=r"\(T, batch, 3\)"):
        n(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="generator"):
        mif_step(torch.zeros(2), mif_initial_state((2,)), P._replace(m1=SwitchParameters(c2c_sigma=0.1)), 1e-6)
