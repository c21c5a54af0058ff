"""Hostile inputs for every device family and preset (issue 15): bad shapes, seeds, dtypes,
devices, parameters (bool / str / NaN / inf / huge / wrong type), targets, times, voltages and
pulse counts. Every one must raise a ``ValueError`` that names the parameter: no other
exception type, no silent answer, no NaN leaving a device model."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import FAMILIES

F64 = torch.float64
PRESETS = [(family, name) for family, cls in sorted(FAMILIES.items()) for name in sorted(cls.presets)]
NAN, INF = float("nan"), float("inf")

BAD_SHAPES = ["64", 2.7, (2.7, 3), (0, 3), (), [], None, True, (2, -1), [2.0, 3], "abc", (2, "3")]
BAD_SEEDS = [1.9, 1.0, "abc", 2**64, -1, True, None, NAN, [1]]
BAD_DTYPES = ["float128", torch.int32, torch.float16, "float16", 3, None]
BAD_DEVICES = ["gpu", 3, None, "cuda:99" if torch.cuda.is_available() else "cuda"]
BAD_REALS = [True, False, "0.01", NAN, INF, -INF, None, [1.0], 1e300, -1e300]
BAD_INTS = [2.5, 2.0, True, "3", None, -(10**9), 10**9, NAN]
BAD_BOOLS = [1, 0, "yes", "no", None, 1.0]
BAD_STRS = ["bogus", 1, True, None, ""]
BAD_TUPLES = ["123", (NAN,), (), ("a",), (True,), None, (1.0, INF)]
BAD_TIMES = [-1.0, NAN, INF, "1", True, None, [1.0]]
BAD_TARGETS = [NAN, INF, -1e-6, "1e-6", True, None, [[1e-6] * 5]]
BAD_TOLERANCES = [0.0, -1.0, NAN, INF, "0.1", True]
BAD_MAX_PULSES = [2.9, 2.0, True, 0, -1, 10**9, "5", None]
BAD_PULSES = [-(2**63), 2**64, 10**6, 0.5, True, "3", [1.5], None, torch.ones(7, dtype=torch.long),
              torch.tensor([1.5]), torch.tensor([True])]
BAD_VOLTAGES = [NAN, INF, -INF, "0.1", True, None, torch.ones(7, dtype=F64), 1e6]


def _bad_values(field_type: str):
    return {"float": BAD_REALS, "int": BAD_INTS, "bool": BAD_BOOLS, "str": BAD_STRS, "tuple": BAD_TUPLES}[field_type]


def _raises_naming(fn, *names):
    """``fn()`` raises ValueError whose message names one of ``names``."""
    try:
        fn()
    except ValueError as exc:
        msg = str(exc)
        assert any(n in msg for n in names), (names, msg)
        return
    except Exception as exc:  # noqa: BLE001 - any other type is a defect
        raise AssertionError(f"expected ValueError naming {names}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"expected ValueError naming {names}, got no error")


def _make(family, preset, **kw):
    return devices.make(family, (2, 3), seed=1, preset=preset, **kw)


@pytest.mark.parametrize("family, preset", PRESETS)
def test_constructor_arguments(family, preset):
    for shape in BAD_SHAPES:
        _raises_naming(lambda: devices.make(family, shape, seed=0, preset=preset), "shape")
    for seed in BAD_SEEDS:
        _raises_naming(lambda: devices.make(family, (2,), seed=seed, preset=preset), "seed")
    for dtype in BAD_DTYPES:
        _raises_naming(lambda: devices.make(family, (2,), preset=preset, dtype=dtype), "dtype")
    for dev in BAD_DEVICES:
        _raises_naming(lambda: devices.make(family, (2,), preset=preset, device=dev), "device")
    _raises_naming(lambda: devices.make(family, (2,), preset="nope"), "preset")
    _raises_naming(lambda: devices.make(family, (2,), preset=3), "preset")
    _raises_naming(lambda: devices.make(family, (2,), bogus_field=1.0), "bogus_field")
    _raises_naming(lambda: devices.make("nope", (2,)), "family")
    _raises_naming(lambda: FAMILIES[family]((2,), params=object()), "params")


@pytest.mark.parametrize("family, preset", PRESETS)
def test_every_parameter_refuses_bad_values(family, preset):
    cls = FAMILIES[family]
    derived = {"g_min", "g_max"} if family in ("stt_mram", "volatile") else set()
    for f in dataclasses.fields(cls.presets[preset]):
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        for bad in _bad_values(kind):
            names = (f.name,) if f.name not in derived else (f.name, "derived")
            _raises_naming(lambda: _make(family, preset, **{f.name: bad}), *names)


@pytest.mark.parametrize("family, preset", PRESETS)
def test_method_arguments(family, preset):
    dev = _make(family, preset)
    mid = 0.5 * (dev.g_min + dev.g_max)
    for t in BAD_TIMES:
        _raises_naming(lambda: dev.read(t), "t")
        _raises_naming(lambda: dev.at_time(t), "t")
        _raises_naming(lambda: dev.conductance_at(t), "t")
    for target in BAD_TARGETS:
        _raises_naming(lambda: dev.program(target), "target_conductance")
    _raises_naming(lambda: dev.program(mid, verify="yes"), "verify")
    _raises_naming(lambda: dev.program(mid, clip="no"), "clip")
    for tol in BAD_TOLERANCES:
        _raises_naming(lambda: dev.program(mid, verify=True, tolerance=tol), "tolerance")
    for mp in BAD_MAX_PULSES:
        _raises_naming(lambda: dev.program(mid, verify=True, max_pulses=mp), "max_pulses")
    for n in BAD_PULSES:
        _raises_naming(lambda: dev.apply_pulses(n), "pulses", "max_steps")
    _raises_naming(lambda: dev.apply_pulses(1, max_steps=0), "max_steps")
    _raises_naming(lambda: dev.apply_pulses(1, max_steps=2.5), "max_steps")
    for v in BAD_VOLTAGES:
        if isinstance(v, float) and v == 1e6 and dev.iv_voltage_limit is None:
            i = dev.current(v)  # saturating / ohmic laws: finite at any finite voltage
            assert bool(torch.isfinite(i).all())
            continue
        _raises_naming(lambda: dev.current(v), "voltage")
    for target in ("cuda:99", "tpu", 5):
        _raises_naming(lambda: dev.to(target), "device")


@pytest.mark.parametrize("family, preset", PRESETS)
def test_from_config_refuses_malformed_configs(family, preset):
    cls = FAMILIES[family]
    cfg = _make(family, preset).to_config()
    cases = {"shape": ["64", [2.7, 3]], "seed": [1.9, "abc", 2**64], "dtype": ["float128"],
             "preset": ["nope", 3], "params": ["x", {"bogus": 1.0}]}
    for key, values in cases.items():
        for value in values:
            names = ("bogus",) if value == {"bogus": 1.0} else (key,)
            _raises_naming(lambda: cls.from_config({**cfg, key: value}), *names)
    _raises_naming(lambda: cls.from_config([1, 2]), "config")
    _raises_naming(lambda: cls.from_config({**cfg, "colour": 1}), "colour")
    _raises_naming(lambda: cls.from_config({k: v for k, v in cfg.items() if k != "params"}), "params")
    real = next(f.name for f in dataclasses.fields(cls.presets[preset])
                if f.type == "float" and f.name not in ("g_min", "g_max"))
    _raises_naming(lambda: cls.from_config({**cfg, "params": {**cfg["params"], real: "0.01"}}), real)


def test_issue_15_examples():
    from devices import PCM, RRAM, FloatingGate
    _raises_naming(lambda: RRAM("64"), "shape")
    _raises_naming(lambda: RRAM((2.7, 3)), "shape")
    _raises_naming(lambda: RRAM((2,), seed=1.9), "seed")
    _raises_naming(lambda: RRAM((2,), read_noise=True), "read_noise")
    _raises_naming(lambda: RRAM((2,), read_noise="0.01"), "read_noise")
    _raises_naming(lambda: RRAM((2,), verify_reads=2.5), "verify_reads")
    _raises_naming(lambda: RRAM((2,)).program(10e-6, verify=True, max_pulses=2.9), "max_pulses")
    _raises_naming(lambda: RRAM((2,), dtype="float128"), "dtype")
    _raises_naming(lambda: RRAM((2,), seed="abc"), "seed")
    _raises_naming(lambda: RRAM((2,), seed=2**64), "seed")
    _raises_naming(lambda: RRAM((2,)).current(NAN), "voltage")
    _raises_naming(lambda: FloatingGate((2,)).current(INF), "voltage")
    _raises_naming(lambda: RRAM((2,)).apply_pulses(-(2**63)), "pulses")
    _raises_naming(lambda: RRAM((2,), prog_sigma_1s=(NAN, 1.0)), "prog_sigma_1s")
    _raises_naming(lambda: RRAM((2,), prog_sigma_1s="123"), "prog_sigma_1s")
    # PCM at 250 V: outside the documented validity range of its I-V law (|V| <= 10 V)
    _raises_naming(lambda: PCM((1, 1)).current(250.0), "voltage")
    i = PCM((1, 1)).current(10.0)
    assert bool(torch.isfinite(i).all())
    # unbounded work: refused with the estimated cost and the flag that lifts the cap
    with pytest.raises(ValueError, match=r"estimated .* s of compute.*max_steps="):
        RRAM((2,)).apply_pulses(10**6)
    with pytest.raises(ValueError, match=r"200000 update steps.*max_steps="):
        FloatingGate((2,)).apply_pulses(1, width=1.0)
    g = FloatingGate((2,)).apply_pulses(1, width=1e-3, max_steps=1000)  # lifted explicitly
    assert bool(torch.isfinite(g).all())


_FIELD_VALUES = st.one_of(st.booleans(), st.text(max_size=4), st.just(NAN), st.just(INF), st.none(),
                          st.lists(st.floats(allow_nan=False), max_size=2), st.floats(min_value=1e200, max_value=1e300),
                          st.floats(max_value=-1e200, min_value=-1e300))


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(PRESETS), data=st.data())
def test_property_malformed_parameter_dicts(case, data):
    """Hypothesis: any dict of 1-3 parameters with malformed values raises a ValueError that
    names one of them (never another exception, never a device built with them)."""
    family, preset = case
    fields = [f.name for f in dataclasses.fields(FAMILIES[family].presets[preset])]
    keys = data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    values = {k: data.draw(_FIELD_VALUES) for k in keys}
    _raises_naming(lambda: _make(family, preset, **values), *keys, "derived")


@pytest.mark.parametrize("family, preset", PRESETS)
def test_no_nan_leaves_a_device_at_the_edges_of_valid_inputs(family, preset):
    dev = _make(family, preset, p_stuck_on=0.2, p_stuck_off=0.2)
    lim = dev.iv_voltage_limit or 100.0
    outs = [dev.program(dev.g_min).conductance, dev.program(dev.g_max).conductance, dev.read(0.0),
            dev.current(torch.tensor([-lim, -1e-12, 0.0, 1e-12, lim], dtype=F64).reshape(5, 1, 1)),
            dev.conductance_at(1e9 if family != "rram" else 2 * 86400.0)]
    for o in outs:
        assert bool(torch.isfinite(o).all())
    assert math.isfinite(float(dev.at_time(0.0).current(0.01).sum()))
