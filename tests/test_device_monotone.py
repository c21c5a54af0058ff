"""Issue 17: for every family and preset, drift and spread change monotonically with the time
since programming (hypothesis over presets and times up to 10 years). A spread that shrinks
with time, or devices that drift back toward their targets, would be artefacts."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import FAMILIES

F64 = torch.float64
TEN_YEARS = 10 * 365.25 * 86400.0
PRESETS = [(family, name) for family, cls in sorted(FAMILIES.items()) for name in sorted(cls.presets)]
times = st.floats(0.0, TEN_YEARS, allow_nan=False)


def _device(family, preset, seed=0, **kw):
    if family == "rram":
        kw.setdefault("retention_beyond_data", "extend")
    dev = devices.make(family, (64,), seed=seed, preset=preset, **kw)
    gen = torch.Generator().manual_seed(seed)
    target = dev.g_min + (dev.g_max - dev.g_min) * torch.rand(64, generator=gen, dtype=F64)
    dev.program(target)
    return dev


@settings(max_examples=40, deadline=None)
@given(case=st.sampled_from(PRESETS), t1=times, t2=times, mode=st.sampled_from(["hold", "extend"]))
def test_drift_and_spread_are_monotone_in_time(case, t1, t2, mode):
    family, preset = case
    t1, t2 = min(t1, t2), max(t1, t2)
    kw = {"retention_beyond_data": mode} if family == "rram" else {}
    dev = _device(family, preset, **kw)
    eps = 1e-12
    if family == "rram":
        g0 = dev.conductance()
        d1 = (dev.conductance_at(t1) - g0).abs()
        d2 = (dev.conductance_at(t2) - g0).abs()
        assert bool((d2 >= d1 * (1 - 1e-12) - 1e-18).all())  # no device drifts back to its target
        g = torch.linspace(dev.g_min, dev.g_max, 17, dtype=F64)
        s1, s2 = dev.programming_sigma(g, t1), dev.programming_sigma(g, t2)
        assert bool((s2 >= s1 * (1 - 1e-12)).all())  # the spread never shrinks
    elif family == "pcm":
        g1, g2 = dev.drifted_conductance(t1), dev.drifted_conductance(t2)
        assert bool((g2 <= g1 * (1 + eps)).all())  # power-law drift only goes down
        r1 = dev.read_noise_sigma(t1) / g1.clamp_min(1e-30)
        r2 = dev.read_noise_sigma(t2) / g2.clamp_min(1e-30)
        assert bool((r2 >= r1 * (1 - 1e-12)).all())  # the relative 1/f spread grows
    elif family == "stt_mram":
        p1, p2 = dev.retention_failure_probability(t1), dev.retention_failure_probability(t2)
        assert bool((p2 >= p1).all())
        f1 = dev.state_at(t1) != dev.state
        f2 = dev.state_at(t2) != dev.state
        assert bool((f2 | ~f1).all())  # a flipped MTJ stays flipped (deterministic coupling in t)
    elif family == "floating_gate":
        q_n = dev.params.q_neutral
        q1, q2 = (dev.stored_charge(t1) - q_n).abs(), (dev.stored_charge(t2) - q_n).abs()
        assert bool((q2 <= q1 * (1 + eps)).all())  # charge only leaks toward neutral
    else:
        rest = dev.relaxed_state(1e30)
        x1, x2 = (dev.relaxed_state(t1) - rest).abs(), (dev.relaxed_state(t2) - rest).abs()
        assert bool((x2 <= x1 * (1 + 1e-9) + 1e-15).all())  # relaxation toward rest, never back


@pytest.mark.parametrize("family, preset", PRESETS)
def test_reads_beyond_the_data_follow_the_choice(family, preset):
    """Only RRAM has a data limit (2 days); everything else reads at any time with the default."""
    dev = devices.make(family, (4,), seed=1, preset=preset)
    if family == "rram":
        with pytest.raises(ValueError, match="retention_beyond_data"):
            dev.read(TEN_YEARS)
        assert dev.retention_data_limit() == 2 * 86400.0
    else:
        assert bool(torch.isfinite(dev.read(TEN_YEARS)).all())
