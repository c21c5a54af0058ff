"""DAC/ADC/TIA quantisation, differential weight mapping and MVM energy."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xbar.peripherals import ADC, DAC, TIA, DifferentialMapping, mvm_energy, quantize


def test_dac_levels_step_and_saturation():
    dac = DAC(bits=4, v_max=0.2)
    assert dac.step == pytest.approx(0.2 / 7)
    x = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64)
    v = dac(x)
    levels = torch.unique(v)
    assert len(levels) == 2 * 7 + 1  # mid-tread signed: -7..7
    assert float(v.max()) == pytest.approx(0.2) and float(v.min()) == pytest.approx(-0.2)
    inside = x.abs() <= 1.0
    assert float((v[inside] - 0.2 * x[inside]).abs().max()) <= dac.step / 2 + 1e-15
    unsigned = DAC(bits=3, v_max=0.3, signed=False)
    assert torch.unique(unsigned(x)).numel() == 8
    assert float(unsigned(x).min()) == 0.0


def test_quantizer_straight_through_gradient():
    x = torch.tensor([-2.0, -0.3, 0.1, 0.45, 2.0], dtype=torch.float64, requires_grad=True)
    y = quantize(x, 0.25, -1.0, 1.0)
    assert torch.allclose(y, torch.tensor([-1.0, -0.25, 0.0, 0.5, 1.0], dtype=torch.float64))
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64))


def test_adc_quantisation_error_is_uniform_and_saturation_counted():
    adc = ADC(bits=6, v_range=1.0)
    gen = torch.Generator().manual_seed(0)
    v = torch.rand(200000, generator=gen, dtype=torch.float64) * 1.8 - 0.9
    err = adc(v) - v
    # uniform quantisation noise: std = step / sqrt(12)
    assert float(err.std()) == pytest.approx(adc.step / math.sqrt(12), rel=0.01)
    assert float(err.abs().max()) <= adc.step / 2 + 1e-15
    assert adc.saturation_fraction(v) == 0.0
    assert adc.saturation_fraction(torch.tensor([2.0, 0.0, -3.0, 0.5])) == pytest.approx(0.5)
    assert torch.equal(ADC(ideal=True)(v), v)


def test_tia_gain():
    assert float(TIA(r_tia=2e4)(torch.tensor(1e-6))) == pytest.approx(0.02)


def test_differential_mapping_round_trip_and_difference():
    m = DifferentialMapping(g_min=1e-6, g_max=40e-6, w_max=2.0)
    w = torch.linspace(-2, 2, 41, dtype=torch.float64)
    g_pos, g_neg = m.to_conductances(w)
    assert bool((g_pos >= m.g_min).all() and (g_pos <= m.g_max).all())
    assert bool((torch.minimum(g_pos, g_neg) == m.g_min).all())  # one device of each pair at g_min
    assert torch.allclose(g_pos - g_neg, w * (m.g_max - m.g_min) / m.w_max, rtol=0, atol=1e-20)
    assert torch.allclose(m.to_weights(g_pos, g_neg), w, atol=1e-12)


def test_differential_mapping_errors():
    m = DifferentialMapping(g_min=1e-6, g_max=40e-6)
    with pytest.raises(ValueError, match="w_max"):
        m.to_conductances(torch.tensor([1.5]))
    g_pos, _ = m.to_conductances(torch.tensor([1.5]), clip=True)
    assert float(g_pos) == pytest.approx(40e-6)
    with pytest.raises(ValueError, match="NaN"):
        m.to_conductances(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="g_max must be > g_min"):
        DifferentialMapping(g_min=2e-6, g_max=1e-6)
    with pytest.raises(ValueError, match="DAC.bits"):
        DAC(bits=0)
    with pytest.raises(ValueError, match="ADC.v_range"):
        ADC(v_range=-1.0)


def test_mvm_energy_sums_source_power_and_conversions():
    v = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    i = torch.tensor([[1e-6, 3e-6]], dtype=torch.float64)
    e = mvm_energy(v, i, t_read=10e-9, dac=DAC(energy_per_conversion=1e-13),
                   adc=ADC(energy_per_conversion=2e-12), n_outputs=3)
    expected = (0.1 * 1e-6 + 0.2 * 3e-6) * 10e-9 + 2 * 1e-13 + 3 * 2e-12
    assert float(e) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(bits=st.integers(1, 12), v_max=st.floats(0.01, 2.0), x=st.floats(-3, 3))
def test_property_dac_output_in_range_and_on_grid(bits, v_max, x):
    dac = DAC(bits=bits, v_max=v_max)
    v = float(dac(torch.tensor(x, dtype=torch.float64)))
    assert -v_max - 1e-12 <= v <= v_max + 1e-12
    assert abs(v / dac.step - round(v / dac.step)) < 1e-9
