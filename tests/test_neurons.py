"""Surrogate gradients and LIF/IF/LI neuron dynamics against closed-form solutions."""
from __future__ import annotations

import math

import pytest
import torch

from training import surrogate as sg
from training.neurons import (
    IF, LIF, IFCell, IFParameters, LIFCell, LIFParameters, LIFState, LIParameters, LeakyIntegrator,
    if_sequence, if_step, lif_initial_state, lif_sequence, lif_step, li_sequence, li_step,
    membrane_max, membrane_mean, spike_count,
)

NAMES = sorted(sg.SURROGATES)


# ============================================================================= surrogates
@pytest.mark.parametrize("name", NAMES)
def test_surrogate_forward_is_exact_heaviside(name):
    x = torch.tensor([-3.0, -1e-7, 0.0, 1e-7, 2.0, -0.0])
    out = sg.get_surrogate(name, 10.0)(x)
    assert torch.equal(out, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0]))
    assert out.dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("slope", [1.0, 5.0, 25.0])
def test_surrogate_backward_equals_analytic_and_smooth_derivative(name, slope):
    x = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64, requires_grad=True)
    (g_spk,) = torch.autograd.grad(sg.get_surrogate(name, slope)(x).sum(), x)
    assert torch.allclose(g_spk, sg.DERIVATIVES[name](x.detach(), slope), rtol=0, atol=1e-15)
    (g_smooth,) = torch.autograd.grad(sg.SMOOTH[name](x, slope).sum(), x)
    assert torch.allclose(g_spk, g_smooth, rtol=1e-12, atol=1e-12)
    # peak-normalised: derivative 1 at threshold
    assert float(sg.DERIVATIVES[name](torch.zeros(1, dtype=torch.float64), slope)) == pytest.approx(1.0)


def test_surrogate_analytic_forms():
    x = torch.tensor([-0.3, 0.0, 0.1], dtype=torch.float64)
    k = 4.0
    assert torch.allclose(sg.fast_sigmoid_derivative(x, k), 1.0 / (k * x.abs() + 1.0) ** 2)
    assert torch.allclose(sg.arctan_derivative(x, k), 1.0 / (1.0 + (math.pi / 2 * k * x) ** 2))
    assert torch.allclose(sg.triangle_derivative(x, k), torch.tensor([0.0, 1.0, 0.6], dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_smooth_functions_pass_gradcheck(name):
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(40, generator=gen, dtype=torch.float64) - 0.5) * 0.6
    if name == "triangle":  # keep finite differences away from the kinks at 0 and ±1/slope
        x = x[((x.abs() - 0.1).abs() > 1e-3) & (x.abs() > 1e-3)]
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: sg.SMOOTH[name](t, 10.0), (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_slope_sets_width(name):
    x = torch.tensor([0.05], dtype=torch.float64)
    narrow = float(sg.DERIVATIVES[name](x, 20.0))
    wide = float(sg.DERIVATIVES[name](x, 2.0))
    assert narrow < wide <= 1.0
    # width scales as 1/slope: derivative at x with slope k equals derivative at k*x with slope 1
    assert float(sg.DERIVATIVES[name](x, 8.0)) == pytest.approx(float(sg.DERIVATIVES[name](8.0 * x, 1.0)))


def test_surrogate_errors():
    with pytest.raises(ValueError, match="surrogate must be one of.*arctan.*fast_sigmoid"):
        sg.get_surrogate("relu", 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf"), "5"):
        with pytest.raises(ValueError, match="slope"):
            sg.get_surrogate("arctan", bad)


# ============================================================================= LIF closed forms
def _const(value, T, shape=(1,), dtype=torch.float64):
    return torch.full((T, *shape), value, dtype=dtype)


def test_lif_subthreshold_trajectory_matches_closed_form():
    tau, dt, T, RI = 20e-3, 0.5e-3, 400, 0.9
    p = LIFParameters(tau_mem=tau, v_th=1.0)
    z, v, _ = lif_sequence(_const(RI, T, (3,)), p, dt)
    t = dt * torch.arange(1, T + 1, dtype=torch.float64)
    expected = RI * (1.0 - torch.exp(-t / tau))
    assert z.sum() == 0
    assert torch.allclose(v[:, 0], expected, rtol=0, atol=1e-6)
    assert (v[:, 0] - expected).abs().max() < 1e-13  # exact integration: only rounding error


def test_lif_with_leak_potential_relaxes_to_vleak_plus_input():
    p = LIFParameters(tau_mem=5e-3, v_leak=-0.5, v_th=1.0, v_reset=-0.6)
    z, v, _ = lif_sequence(_const(0.7, 200), p, 1e-3)
    assert z.sum() == 0
    t = 1e-3 * torch.arange(1, 201, dtype=torch.float64)
    assert torch.allclose(v[:, 0], -0.5 + 0.7 * (1 - torch.exp(-t / 5e-3)), atol=1e-12)


@pytest.mark.parametrize("tau_syn", [4e-3, 10e-3, 10e-3 * (1 + 1e-9)])
def test_lif_current_synapse_matches_closed_form(tau_syn):
    tau_m, dt, T, x = 10e-3, 1e-3, 60, 0.8
    p = LIFParameters(tau_mem=tau_m, tau_syn=tau_syn)
    z, v, state = lif_sequence(_const(x, T), p, dt)
    t = dt * torch.arange(1, T + 1, dtype=torch.float64)
    if abs(tau_syn - tau_m) < 1e-6 * tau_m:  # equal-tau limit (the general form cancels here)
        shape = 1 - torch.exp(-t / tau_m) * (1 + t / tau_m)
    else:
        shape = 1 - (tau_m * torch.exp(-t / tau_m) - tau_syn * torch.exp(-t / tau_syn)) / (tau_m - tau_syn)
    assert z.sum() == 0
    assert torch.allclose(v[:, 0], x * shape, atol=1e-9)
    assert float(state.i[0]) == pytest.approx(x * (1 - math.exp(-T * dt / tau_syn)), abs=1e-12)


def test_tau_syn_zero_equals_no_synapse():
    x = torch.rand(30, 2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    a = lif_sequence(x, LIFParameters(tau_syn=None))[1]
    b = lif_sequence(x, LIFParameters(tau_syn=0.0))[1]
    assert torch.equal(a, b)


@pytest.mark.parametrize("RI", [1.3, 2.0, 4.7])
def test_lif_first_spike_time(RI):
    tau, dt, v_th = 10e-3, 0.1e-3, 1.0
    z, _, _ = lif_sequence(_const(RI, 400), LIFParameters(tau_mem=tau, v_th=v_th), dt)
    t_first = dt * (int(z[:, 0].nonzero()[0]) + 1)  # spike emitted at the end of its step
    t_exact = tau * math.log(RI / (RI - v_th))
    assert t_exact <= t_first < t_exact + dt


def test_lif_rate_matches_analytic_f_I_curve():
    tau, dt, T = 20e-3, 0.1e-3, 10000
    drives = [1.05, 1.5, 3.0, 10.0]
    p = LIFParameters(tau_mem=tau, reset="zero", v_reset=0.0)
    z, _, _ = lif_sequence(torch.tensor(drives, dtype=torch.float64).expand(T, -1), p, dt)
    for k, RI in enumerate(drives):
        times = z[:, k].nonzero().flatten().double()
        isi_steps = torch.diff(times)
        t_isi = tau * math.log(RI / (RI - 1.0))  # analytic f-I curve: f = 1 / t_isi
        assert len(times) >= 10
        # reset to zero => every ISI is the same: t_isi rounded up to the step grid
        assert torch.all((isi_steps * dt >= t_isi - 1e-12) & (isi_steps * dt < t_isi + dt))
        rate = (len(times) - 1) / ((times[-1] - times[0]) * dt)
        assert float(rate) == pytest.approx(1.0 / t_isi, rel=dt / t_isi)


def test_lif_zero_input_stays_at_rest_and_subthreshold_silent():
    z, v, _ = lif_sequence(_const(0.0, 50, (2, 3)), LIFParameters(v_leak=0.2, v_reset=0.1))
    assert z.sum() == 0 and torch.allclose(v, torch.full_like(v, 0.2))


def test_reset_subtract_keeps_overshoot_zero_does_not():
    a = 1 - math.exp(-0.1)  # one step of 1 ms with tau_mem = 10 ms
    x = torch.tensor([[30.0]], dtype=torch.float64)
    z, st = lif_step(x, None, LIFParameters(reset="subtract"), dt=1e-3)
    assert float(z) == 1.0 and float(st.v) == pytest.approx(30.0 * a - 1.0)
    z, st = lif_step(x, None, LIFParameters(reset="zero", v_reset=-0.2), dt=1e-3)
    assert float(z) == 1.0 and float(st.v) == pytest.approx(-0.2)


# ============================================================================= IF
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_if_count_is_floor_T_x_over_vth(dtype):
    T, v_th = 97, 0.5
    x = torch.arange(1, 33, dtype=dtype) / 64.0  # dyadic drives in (0, v_th]: exact sums
    z, v, _ = if_sequence(x.expand(T, -1).contiguous(), IFParameters(v_th=v_th))
    expected = torch.floor(T * x.double() / v_th)
    assert z.dtype == dtype and v.dtype == dtype
    assert torch.equal(spike_count(z).double(), expected)
    assert torch.allclose(v[-1].double(), T * x.double() - expected * v_th)


def test_if_step_matches_sequence_and_cell():
    x = torch.rand(20, 3, 5, generator=torch.Generator().manual_seed(1))
    z_seq = IF()(x)
    cell, state, zs = IFCell(), None, []
    for t in range(20):
        z, state = cell(x[t], state)
        zs.append(z)
    assert torch.equal(torch.stack(zs), z_seq)
    z0, _ = if_step(x[0], None)
    assert torch.equal(z0, z_seq[0])


@pytest.mark.parametrize("n_ref", [0, 1, 3, 7])
def test_refractory_blocks_exactly_n_steps_if(n_ref):
    # drive = v_th: without refractoriness the neuron fires every step
    z, v, _ = if_sequence(torch.ones(50, 1), IFParameters(refractory_steps=n_ref))
    times = z[:, 0].nonzero().flatten()
    assert int(times[0]) == 0
    assert torch.all(torch.diff(times) == n_ref + 1)
    for t0 in times.tolist():  # membrane clamped to v_reset while refractory
        assert torch.all(v[t0 + 1:t0 + 1 + n_ref, 0] == 0.0)


def test_refractory_lif_delays_isi_by_n_steps():
    tau, dt, RI = 10e-3, 0.1e-3, 3.0
    base = LIFParameters(tau_mem=tau, reset="zero")
    z0, _, _ = lif_sequence(_const(RI, 3000), base, dt)
    z5, v5, _ = lif_sequence(_const(RI, 3000), base._replace(refractory_steps=5), dt)
    isi0 = torch.diff(z0[:, 0].nonzero().flatten())
    isi5 = torch.diff(z5[:, 0].nonzero().flatten())
    assert torch.all(isi0 == isi0[0]) and torch.all(isi5 == isi0[0] + 5)
    t0 = int(z5[:, 0].nonzero()[0])
    assert torch.all(v5[t0:t0 + 6, 0] == 0.0) and v5[t0 + 6, 0] > 0


# ============================================================================= modules, dtypes, gradients
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_modules_shapes_and_dtypes(dtype):
    x = torch.rand(15, 4, 6, generator=torch.Generator().manual_seed(2), dtype=dtype) * 2
    z = LIF()(x)
    z2, v = LIF(record_membrane=True)(x)
    assert z.shape == x.shape and z.dtype == dtype and torch.equal(z, z2) and v.shape == x.shape
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    out = LeakyIntegrator()(x)
    assert out.shape == x.shape and out.dtype == dtype
    assert membrane_max(out).shape == (4, 6) and membrane_mean(out).shape == (4, 6)
    assert spike_count(z).shape == (4, 6)
    zi, vi = IF(record_membrane=True)(x)
    assert zi.dtype == dtype and vi.shape == x.shape


def test_lif_cell_matches_sequence_and_continues_state():
    x = torch.rand(30, 2, 3, generator=torch.Generator().manual_seed(4)) * 3
    p = LIFParameters(tau_syn=5e-3, refractory_steps=2)
    z_all, v_all, final = lif_sequence(x, p, 1e-3)
    cell, state, zs = LIFCell(p, 1e-3), None, []
    for t in range(30):
        z, state = cell(x[t], state)
        zs.append(z)
    assert torch.equal(torch.stack(zs), z_all) and torch.equal(state.v, final.v)
    # splitting the sequence and carrying the state gives the same result
    za, _, sa = lif_sequence(x[:11], p, 1e-3)
    zb, _, _ = lif_sequence(x[11:], p, 1e-3, sa)
    assert torch.equal(torch.cat([za, zb]), z_all)


def test_leaky_integrator_closed_form_and_step():
    p = LIParameters(tau_mem=8e-3)
    v, _ = li_sequence(_const(2.5, 40), p, 1e-3)
    t = 1e-3 * torch.arange(1, 41, dtype=torch.float64)
    assert torch.allclose(v[:, 0], 2.5 * (1 - torch.exp(-t / 8e-3)), atol=1e-12)  # no threshold, no reset
    v1, _ = li_step(torch.tensor([2.5], dtype=torch.float64), None, p, 1e-3)
    assert float(v1) == pytest.approx(float(v[0, 0]))


@pytest.mark.parametrize("detach_reset", [True, False])
def test_gradients_flow_through_surrogate(detach_reset):
    w = torch.full((1, 5), 0.8, requires_grad=True)
    x = torch.rand(40, 3, 1, generator=torch.Generator().manual_seed(5)) * 2
    z = LIF(LIFParameters(detach_reset=detach_reset, surrogate="arctan", slope=5.0))(x @ w)
    loss = spike_count(z).sum()
    loss.backward()
    assert loss > 0 and torch.isfinite(w.grad).all() and (w.grad > 0).all()


def test_detach_reset_changes_gradient_only():
    x = (torch.rand(30, 2, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 2)
    grads, counts = [], []
    for detach in (True, False):
        xx = x.clone().requires_grad_(True)
        z, v, _ = lif_sequence(xx, LIFParameters(detach_reset=detach))
        (v.sum() + z.sum()).backward()
        grads.append(xx.grad)
        counts.append(z.sum())
    assert counts[0] == counts[1] and not torch.allclose(grads[0], grads[1])


# ============================================================================= validation
@pytest.mark.parametrize("field,value,match", [
    ("tau_mem", 0.0, r"tau_mem must be in \(0"), ("tau_mem", float("nan"), "tau_mem must be finite"),
    ("tau_syn", -1e-3, r"tau_syn must be in \[0"), ("v_th", "1", "v_th must be a finite real"),
    ("v_reset", 1.5, "v_reset must be < v_th"), ("reset", "hard", r"reset must be one of \['subtract', 'zero'\]"),
    ("refractory_steps", -1, r"refractory_steps must be an int in \[0"),
    ("refractory_steps", 1.5, "refractory_steps"), ("surrogate", "relu", "surrogate must be one of"),
    ("slope", 0.0, r"slope must be in \(0"), ("detach_reset", 1, "detach_reset must be a bool"),
])
def test_lif_parameter_errors(field, value, match):
    p = LIFParameters()._replace(**{field: value})
    with pytest.raises(ValueError, match=match):
        LIF(p)
    with pytest.raises(ValueError, match=match):
        lif_step(torch.zeros(2), None, p)


def test_other_input_errors():
    with pytest.raises(ValueError, match=r"dt must be in \(0"):
        LIF(dt=0.0)
    with pytest.raises(ValueError, match="dt"):
        lif_sequence(torch.zeros(3, 2), dt=-1e-3)
    with pytest.raises(ValueError, match="x must be a floating-point"):
        LIF()(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"T >= 1"):
        IF()(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="v_reset must be < v_th"):
        IF(IFParameters(v_th=0.0))
    with pytest.raises(ValueError, match="tau_mem"):
        LeakyIntegrator(LIParameters(tau_mem=-1.0))


def test_parameters_serialise_to_plain_values():
    for p in (LIFParameters(tau_syn=5e-3), IFParameters(), LIParameters()):
        d = p._asdict()
        assert all(v is None or isinstance(v, (int, float, str, bool)) for v in d.values())
        assert type(p)(**d) == p
    st = lif_initial_state(torch.zeros(2, 3), LIFParameters(v_leak=0.3))
    assert isinstance(st, LIFState) and torch.all(st.v == 0.3) and st.refrac.dtype == torch.int64
