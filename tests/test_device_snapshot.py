"""Devices read at a time t with their nonlinear I-V (issue 16): ``dev.at_time(t)``."""
import pytest
import torch

import devices
from devices import FAMILIES
from xbar import Crossbar

F64 = torch.float64


def _programmed(family, shape=(4, 5), seed=0, **kw):
    dev = devices.make(family, shape, seed=seed, **kw)
    gen = torch.Generator().manual_seed(seed)
    target = dev.g_min + (dev.g_max - dev.g_min) * (0.2 + 0.6 * torch.rand(shape, generator=gen, dtype=F64))
    dev.program(target)
    return dev


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_snapshot_reads_once_and_scales_the_family_iv(family):
    dev = _programmed(family, p_stuck_on=0.1, p_stuck_off=0.1)
    t = 3600.0
    snap = dev.at_time(t)
    g = snap.conductance()
    assert snap.shape == dev.shape and g.shape == dev.shape
    assert torch.equal(snap.conductance(), g)  # read noise drawn once, at the at_time call
    v_read = dev.params.v_read
    # I(v_read) = G_t v_read exactly, per device
    torch.testing.assert_close(snap.current(torch.full(dev.shape, v_read, dtype=F64)), g * v_read, rtol=1e-12,
                               atol=1e-30)
    # the shape of the I-V is the family's: the ratio I(v)/I(v_read) of the snapshot equals the
    # device's own (state at t) wherever the state did not change
    v = torch.full(dev.shape, 2.5 * v_read, dtype=F64)
    ratio_snap = snap.current(v) / snap.current(torch.full(dev.shape, v_read, dtype=F64))
    assert bool(torch.isfinite(ratio_snap).all())
    # differentiable in v (Newton solves)
    vv = torch.full(dev.shape, 0.3 * v_read, dtype=F64, requires_grad=True)
    snap.current(vv).sum().backward()
    assert vv.grad is not None and bool(torch.isfinite(vv.grad).all())
    # stuck devices are ohmic at their stuck conductance
    on = dev.stuck == 1
    if bool(on.any()):
        torch.testing.assert_close(snap.current(v)[on], v[on] * dev.g_max, rtol=1e-12, atol=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_snapshot_at_zero_time_without_noise_is_the_device(family):
    quiet = {"rram": dict(read_noise=0.0), "pcm": dict(read_q_coeff=0.0), "stt_mram": dict(read_noise=0.0),
             "floating_gate": dict(read_noise=0.0), "volatile": dict(read_noise=0.0)}[family]
    dev = _programmed(family, **quiet)
    snap = dev.at_time(0.0)
    torch.testing.assert_close(snap.conductance(), dev.conductance(), rtol=1e-12, atol=0)
    v = torch.linspace(-0.4, 0.4, 9, dtype=F64).reshape(9, 1, 1) * dev.params.v_read / 0.2
    torch.testing.assert_close(snap.current(v), dev.current(v), rtol=1e-10, atol=1e-30)


def test_snapshot_combines_pcm_drift_with_its_nonlinear_iv_and_is_frozen():
    """Crossbar(pcm) used the as-programmed state, Crossbar(pcm.read(t)) dropped the nonlinearity;
    the snapshot has both: drifted conductance at v_read, the amorphous sinh shape above it."""
    dev = _programmed("pcm", shape=(3, 3), read_q_coeff=0.0)
    year = 3.15e7
    snap = dev.at_time(year)
    drifted = dev.drifted_conductance(year)
    torch.testing.assert_close(snap.conductance(), drifted, rtol=1e-12, atol=0)
    assert bool((snap.conductance() < dev.conductance()).all())  # drift
    v = torch.full((3, 3), 0.6, dtype=F64)
    torch.testing.assert_close(snap.current(v) / dev.current(v), drifted / dev.conductance(), rtol=1e-12, atol=0)
    assert bool((snap.current(v) / v > 1.05 * drifted).all())  # superlinear: not ohmic
    # later changes of the device do not touch the snapshot
    before = snap.current(v).clone()
    dev.apply_pulses(-1)
    assert torch.equal(snap.current(v), before)
    # small v: linear (ohmic limit of the sinh law)
    small = torch.full((3, 3), 1e-4, dtype=F64)
    torch.testing.assert_close(snap.current(small) / small, snap.current(2 * small) / (2 * small), rtol=1e-6, atol=0)


def test_stt_snapshot_uses_the_retention_state_at_t():
    dev = devices.make("stt_mram", (2000,), seed=1, preset="stochastic_mtj_delta25", read_noise=0.0,
                       read_duration=1e-15)
    dev.program(torch.full((2000,), dev.g_max, dtype=F64))
    t = 72.0
    state_t = dev.state_at(t).clone()
    snap = dev.at_time(t)
    flipped = (state_t == 1).squeeze(-1)
    assert 0.2 < float(flipped.double().mean()) < 0.5  # (1 - exp(-2t/tau))/2 with tau ~ 72 s
    torch.testing.assert_close(snap.conductance(), dev._cell_g(state_t), rtol=1e-12, atol=0)
    v = torch.full((2000,), 0.4, dtype=F64)
    p = dev.params
    tmr_v = p.tmr0 / (1 + (0.4 / p.v_h) ** 2)
    g_p = 1.0 / dev.mtj_r_p.squeeze(-1)
    want = torch.where(flipped, 0.4 * g_p / (1 + tmr_v), 0.4 * g_p)
    torch.testing.assert_close(snap.current(v), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("family", ["rram", "pcm", "stt_mram"])
def test_crossbar_solves_with_snapshot_cells(family):
    dev = _programmed(family, shape=(6, 5), seed=2)
    snap = dev.at_time(86400.0)
    xb = Crossbar(snap, r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    v_in = torch.full((2, 6), 0.1, dtype=F64) * dev.params.v_read / 0.2
    i_out = xb.solve(v_in)
    assert i_out.shape == (2, 5) and bool(torch.isfinite(i_out).all())
    # no wire resistance, small read voltage: the column currents approach v @ G_t (the
    # snapshot's conductance), not the as-programmed conductance
    ideal = Crossbar(snap, r_row=1e-9, r_col=1e-9, r_source=1e-9, r_sense=1e-9)
    v_small = torch.full((1, 6), dev.params.v_read, dtype=F64)
    got = ideal.solve(v_small)
    want = v_small @ snap.conductance()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-15)
