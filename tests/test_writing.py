"""V/2 and V/3 writing, half-select disturb through the device pulse models, read margin."""
import math

import pytest
import torch

from devices import PCM, RRAM, STTMRAM, FloatingGate
from devices.rram_physics import switching_threshold
from xbar.writing import (HALF_SELECTED_COL, HALF_SELECTED_ROW, SELECTED, UNSELECTED, bias_voltages,
                          cell_categories, read_margin, read_margin_vs_size, write_cell)

IDEAL = dict(r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)


def _rand_g(shape, seed, lo=1e-6, hi=40e-6):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def _by_category(res):
    return {k: res.v_cell[res.category == k] for k in (SELECTED, HALF_SELECTED_ROW, HALF_SELECTED_COL, UNSELECTED)}


def test_bias_voltages_and_categories():
    v_rows, v_cols = bias_voltages(3, 4, (1, 2), 1.5, "v/3")
    assert torch.equal(v_rows, torch.tensor([0.5, 1.5, 0.5], dtype=torch.float64))
    assert torch.equal(v_cols, torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64))
    cat = cell_categories(3, 4, (1, 2))
    assert cat[1, 2] == SELECTED and (cat[1] == HALF_SELECTED_ROW).sum() == 3
    assert (cat[:, 2] == HALF_SELECTED_COL).sum() == 2 and (cat == UNSELECTED).sum() == 6


@pytest.mark.parametrize("scheme, half, unsel", [("v/2", 0.5, 0.0), ("v/3", 1 / 3, -1 / 3)])
def test_ideal_wires_give_exact_scheme_voltages(scheme, half, unsel):
    v = 2.0
    res = write_cell(_rand_g((5, 6), 0), (2, 4), v, scheme=scheme, **IDEAL)
    cells = _by_category(res)
    assert float(cells[SELECTED]) == v and res.v_delivered == v
    for k in (HALF_SELECTED_ROW, HALF_SELECTED_COL):
        assert torch.allclose(cells[k], torch.full_like(cells[k], half * v), rtol=0, atol=1e-15)
    assert torch.allclose(cells[UNSELECTED], torch.full_like(cells[UNSELECTED], unsel * v), rtol=0, atol=1e-15)
    assert res.pulse_model == "none" and torch.equal(res.delta_g, torch.zeros(5, 6, dtype=torch.float64))
    if scheme == "v/2":  # exactly V/2 (binary fractions), exactly 0 on unselected cells
        assert torch.equal(cells[HALF_SELECTED_ROW], torch.full_like(cells[HALF_SELECTED_ROW], 1.0))
        assert torch.equal(cells[UNSELECTED], torch.zeros_like(cells[UNSELECTED]))


def test_wire_resistance_lowers_delivered_voltage_and_matches_ladder_formula():
    """1 x N row, ideal driver and column drivers, selected cell at the far end. With
    u_k = v_k - V/2 the half-selected nodes obey u_{k-1} - 2u_k + u_{k+1} = r G u_k, so
    u_k = (V/2) cosh(k θ) + B sinh(k θ), cosh θ = 1 + r G / 2, and B follows from KCL at the
    selected (last) node: (u_{N-1} - u_{N-2}) + r G (u_{N-1} + V/2) = 0."""
    n, v, r, g = 12, 1.6, 25.0, 2e-3
    res = write_cell(torch.full((1, n), g, dtype=torch.float64), (0, n - 1), v, scheme="v/2",
                     r_row=r, r_col=0.0, r_source=0.0, r_sense=0.0)
    theta = math.acosh(1 + r * g / 2)
    c = [math.cosh(k * theta) for k in range(n)]
    s = [math.sinh(k * theta) for k in range(n)]
    a = v / 2
    b = -(a * (c[n - 1] * (1 + r * g) - c[n - 2]) + r * g * v / 2) / (s[n - 1] * (1 + r * g) - s[n - 2])
    v_sel = a * c[n - 1] + b * s[n - 1] + v / 2
    assert res.v_delivered == pytest.approx(v_sel, rel=1e-12)
    assert res.v_delivered < 0.95 * v
    u = torch.tensor([a * c[k] + b * s[k] + v / 2 for k in range(n)], dtype=torch.float64)
    assert torch.allclose(res.v_cell[0, :-1], u[:-1] - v / 2, rtol=1e-11, atol=1e-14)
    # a larger array with wires: the farther the cell, the less voltage it gets
    g_arr = torch.full((16, 16), 20e-6, dtype=torch.float64)
    near = write_cell(g_arr, (15, 0), 2.0, r_row=5.0, r_col=5.0, r_source=50.0, r_sense=50.0).v_delivered
    far = write_cell(g_arr, (0, 15), 2.0, r_row=5.0, r_col=5.0, r_source=50.0, r_sense=50.0).v_delivered
    assert far < near < 2.0


def test_v3_lowers_the_worst_unselected_stress_by_one_third():
    g = _rand_g((12, 12), 1)
    worst = {}
    for scheme in ("v/2", "v/3"):
        res = write_cell(g, (5, 7), 2.4, scheme=scheme, r_row=2.0, r_col=2.0, r_source=20.0, r_sense=20.0)
        worst[scheme] = float(res.v_cell[res.category != SELECTED].abs().max())
        assert res.power > 0
    assert worst["v/2"] == pytest.approx(1.2, rel=2e-2) and worst["v/3"] == pytest.approx(0.8, rel=2e-2)
    assert worst["v/3"] / worst["v/2"] == pytest.approx(2 / 3, rel=2e-2)


def _rram(seed=0, shape=(6, 6), preset=None):
    dev = RRAM(shape, seed=seed, preset=preset)
    lo, hi = (2e-6, 38e-6) if preset is None else (1.5 * dev.g_min, 10 * dev.g_min)
    dev.program(_rand_g(shape, seed + 10, lo, hi))
    return dev


def test_rram_disturb_zero_below_threshold_nonzero_above():
    dev = _rram(preset="stanford_pku_memtorch")  # the single-sinh law with a hard F_min threshold
    v_th = float(switching_threshold(dev.params.gap_params(), dev.gap).min())
    v_low = 1.9 * v_th  # half-select voltage V/2 = 0.95 threshold
    res = write_cell(dev, (2, 3), v_low, scheme="v/2", r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    assert res.pulse_model == "rram_gap"
    assert float(res.v_cell[res.category != SELECTED].abs().max()) < v_th
    assert torch.equal(res.disturb, torch.zeros_like(res.disturb))
    assert torch.equal(res.g_after[res.category != SELECTED], res.g_before[res.category != SELECTED])
    # above threshold: a half-selected cell is SET-disturbed exactly when its own cell voltage
    # exceeds its own F_min threshold (the source resistances and the cells' sinh I-V drop part of
    # V/2); the unselected cells (about 0 V) are not
    dev2 = _rram(preset="stanford_pku_memtorch")
    v_th2 = switching_threshold(dev2.params.gap_params(), dev2.gap)
    res2 = write_cell(dev2, (2, 3), 3.4, scheme="v/2", r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    half = (res2.category == HALF_SELECTED_ROW) | (res2.category == HALF_SELECTED_COL)
    above = half & (res2.v_cell.abs() > v_th2)
    assert bool(above.any()) and bool((half & ~above).any())
    assert bool((res2.delta_g[above] > 0).all())
    assert bool((res2.delta_g[half & ~above] == 0).all())
    assert float(res2.disturb[res2.category == UNSELECTED].max()) == 0.0
    assert res2.delta_g[2, 3] > 0  # the selected cell is SET
    # V/3 at the same write voltage disturbs far less
    dev3 = _rram(preset="stanford_pku_memtorch")
    res3 = write_cell(dev3, (2, 3), 3.4, scheme="v/3", r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    assert float(res3.disturb.max()) < 1e-3 * float(res2.disturb.max())
    # the device state really changed (the array is written in place)
    assert torch.equal(dev2.conductance(), res2.g_after)


def test_rram_reset_write_and_segments():
    dev = _rram(seed=3)
    res = write_cell(dev, (1, 1), -1.6, scheme="v/3", r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    assert res.delta_g[1, 1] < 0 and res.v_delivered < -1.5
    dev_a, dev_b = _rram(seed=4), _rram(seed=4)
    one = write_cell(dev_a, (0, 0), 1.8, r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    four = write_cell(dev_b, (0, 0), 1.8, r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0, segments=4)
    assert one.delta_g[0, 0] > 0 and four.delta_g[0, 0] > 0
    assert four.width == pytest.approx(dev_b.params.t_pulse)


def test_selector_voltage_split_in_1s1r():
    g = _rand_g((4, 5), 2)
    opts = dict(topology="1S1R", selector_i_s=1e-9, selector_v_0=0.08, r_row=1.0, r_col=1.0,
                r_source=5.0, r_sense=5.0)
    res = write_cell(g, (1, 3), 1.5, **opts)
    # memory element: i = G v_device; selector: i = I_s sinh((v_cell - v_device)/V_0)
    assert torch.allclose(res.i_cell, g * res.v_device, rtol=1e-9, atol=1e-18)
    assert torch.allclose(res.i_cell, 1e-9 * torch.sinh((res.v_cell - res.v_device) / 0.08), rtol=1e-7, atol=1e-18)
    assert 0 < res.v_delivered < float(res.v_cell[1, 3])


def test_other_families_pulse_models():
    shape = (4, 4)
    # PCM: amplitude-free pulses, only the selected cell is written
    pcm = PCM(shape, seed=0)
    pcm.program(torch.full(shape, 10e-6, dtype=torch.float64))
    res = write_cell(pcm, (1, 2), 2.0, **IDEAL)
    assert res.pulse_model == "pcm_amplitude_free" and res.delta_g[1, 2] != 0
    assert torch.equal(res.disturb, torch.zeros_like(res.disturb))
    with pytest.raises(ValueError, match="segments"):
        write_cell(pcm, (1, 2), 2.0, segments=2, **IDEAL)
    # STT-MRAM: current-driven switching; V/2 at 1 V half-selects with 0.5 V (above I_c0), V/3 does not
    disturb = {}
    for scheme in ("v/2", "v/3"):
        stt = STTMRAM(shape, seed=0)
        stt.program(torch.full(shape, 0.5 * (stt.g_min + stt.g_max), dtype=torch.float64))
        res = write_cell(stt, (1, 2), 1.0, scheme=scheme, **IDEAL)
        assert res.pulse_model == "stt_current"
        disturb[scheme] = float(res.disturb.max())
    assert disturb["v/2"] > 0 and disturb["v/3"] == 0
    # floating gate (pFET): a tunnelling pulse (v < 0) lowers the selected cell's G with negligible
    # FN tunnelling at half the voltage; an injection pulse (v > 0) raises it
    fg = FloatingGate(shape, seed=0)
    fg.program(torch.full(shape, 0.5 * (fg.g_min + fg.g_max), dtype=torch.float64))
    res = write_cell(fg, (1, 2), -10.5, **IDEAL)
    assert res.pulse_model == "floating_gate" and res.delta_g[1, 2] < 0
    assert float(res.disturb.max()) < 1e-4 * float(res.delta_g[1, 2].abs())
    res = write_cell(fg, (1, 2), float(fg.params.v_inj), **IDEAL)
    assert res.delta_g[1, 2] > 0


def test_write_errors():
    g = _rand_g((3, 3), 0)
    with pytest.raises(ValueError, match="scheme"):
        write_cell(g, (0, 0), 1.0, scheme="ground")
    with pytest.raises(ValueError, match="v_write"):
        write_cell(g, (0, 0), 0.0)
    with pytest.raises(ValueError, match="v_write"):
        write_cell(g, (0, 0), float("nan"))
    with pytest.raises(ValueError, match=r"selected\[1\]"):
        write_cell(g, (0, 3), 1.0)
    with pytest.raises(ValueError, match="topology"):
        write_cell(g, (0, 0), 1.0, topology="1T1R")
    with pytest.raises(ValueError, match="segments"):
        write_cell(g, (0, 0), 1.0, segments=0)
    with pytest.raises(ValueError, match="width"):
        write_cell(g, (0, 0), 1.0, width=-1e-9)
    with pytest.raises(ValueError, match="r_row"):
        write_cell(g, (0, 0), 1.0, r_row=-1.0)


def test_read_margin_ideal_formulas():
    g_l, g_h = 1e-4, 1e-6
    for n in (2, 9, 33):
        rm = read_margin(n, g_l, g_h, scheme="v/2", v_read=0.3, **IDEAL)
        expected = (g_l - g_h) / (g_l * (1 + (n - 1) / 2))
        assert rm.margin == pytest.approx(expected, rel=1e-12)
        assert rm.i_cell_lrs == pytest.approx(0.3 * g_l, rel=1e-12)
        grounded = read_margin(n, g_l, g_h, scheme="ground", **IDEAL)
        assert grounded.margin == pytest.approx(1 - g_h / g_l, rel=1e-12)
    best = read_margin(16, g_l, g_h, unselected="hrs", **IDEAL)
    assert best.margin > read_margin(16, g_l, g_h, **IDEAL).margin
    pull_up = read_margin(8, g_l, g_h, definition="pull_up", v_read=1.0, r_row=0.0, r_col=0.0, r_source=0.0,
                          r_sense=1e3)
    assert pull_up.margin == pytest.approx((pull_up.i_lrs - pull_up.i_hrs) * 1e3, rel=1e-12)


def test_read_margin_falls_with_size_and_a_selector_keeps_it():
    sizes = [2, 16, 64]
    g_l, g_h = 1e-4, 1e-6
    wires = dict(r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
    passive = read_margin_vs_size(sizes, g_l, g_h, "0T1R", v_read=1.0, **wires)
    selector = read_margin_vs_size(sizes, g_l, g_h, "1S1R", v_read=1.0, selector_i_s=1e-11, selector_v_0=None, selector_nl=2e4,
                                   selector_v_w=1.0, **wires)
    assert bool((passive[1:] < passive[:-1]).all()) and bool((selector[1:] < selector[:-1]).all())
    assert passive[-1] < 0.1 * passive[0]
    assert selector[-1] > 0.7 * selector[0]
    assert bool((selector[1:] > passive[1:]).all())
    # grounded unselected lines: no sneak current into the sensed column, only IR drop
    grounded = read_margin_vs_size(sizes, g_l, g_h, "0T1R", scheme="ground", v_read=1.0, **wires)
    assert bool((grounded > 0.9).all()) and bool((grounded > selector).all())


def test_read_margin_errors():
    with pytest.raises(ValueError, match="g_hrs"):
        read_margin(4, 1e-6, 1e-4)
    with pytest.raises(ValueError, match="unselected"):
        read_margin(4, 1e-4, 1e-6, unselected="mixed")
    with pytest.raises(ValueError, match="definition"):
        read_margin(4, 1e-4, 1e-6, definition="snr")
    with pytest.raises(ValueError, match="n must"):
        read_margin(0, 1e-4, 1e-6)
    with pytest.raises(ValueError, match="scheme"):
        read_margin(4, 1e-4, 1e-6, scheme="floating")
    with pytest.raises(ValueError, match="v_read"):
        read_margin(4, 1e-4, 1e-6, v_read=0.0)
    with pytest.raises(ValueError, match="sizes"):
        read_margin_vs_size([], 1e-4, 1e-6)
