"""RRAM crossbar transient (xbar.transient) against ngspice, physics checks and input validation.

The ngspice tests share one xdist group (libngspice is a process singleton; run with
``--dist loadgroup``). memxbar runs on a time grid that contains every PWL breakpoint, and the
ngspice waveforms (own adaptive time points, at most 2 ns apart) are interpolated onto it.
"""
import numpy as np
import pytest
import torch

from circuits.spice.crossbar_export import crossbar_transient_netlist
from circuits.spice.device_models import rram_cell
from circuits.spice.netlist import Netlist
from circuits.spice.ngspice import run_netlist
from devices.rram import RRAM
from devices.rram_physics import gap_for_conductance
from xbar.crossbar import Crossbar
from xbar.transient import rram_crossbar_transient

ngspice = pytest.mark.xdist_group("ngspice")
RISE = 10e-9  # s, pulse edges
SEL = (1, 2)  # selected cell of the 4x4 arrays


def pulse_grid(width: float, n: int = 200) -> np.ndarray:
    """Output times (s): uniform grid plus the PWL breakpoints of :func:`pulse`."""
    t_end = width + 2 * RISE + 40e-9
    grid = np.union1d(np.linspace(0.0, t_end, n), [RISE, RISE + width, 2 * RISE + width])
    return grid[np.concatenate([[True], np.diff(grid) > 1e-12])]


def pulse(t: np.ndarray, amplitude: float, width: float) -> np.ndarray:
    """Trapezoid (V): 0 → amplitude over RISE, held ``width`` s, back to 0 over RISE."""
    return amplitude * np.clip(np.minimum(t / RISE, (width + 2 * RISE - t) / RISE), 0.0, 1.0)


def set_conductance(dev: RRAM, index, g: float) -> None:
    """Put one cell at read conductance ``g`` (S) through its gap."""
    gap = gap_for_conductance(dev._gp, torch.tensor(g, dtype=torch.float64), dev.params.v_read, dev.i0_scale[index])
    dev.gap[index] = gap


def close(a: np.ndarray, b: np.ndarray, swing: float, frac: float = 0.01) -> float:
    """max |a - b| as a fraction of ``swing`` (asserted <= frac by the callers)."""
    return float(np.abs(a - b).max() / swing)


# ------------------------------------------------------------------------ (a) single cell
def single_cell(amplitude: float, r_series: float, g_start: float, width: float = 1e-6, *, mismatch=None):
    """One RRAM cell behind ``r_series`` (Ω): ngspice (hand-written netlist) vs memxbar (1x1 Crossbar).
    ``mismatch = (attribute, factor)`` scales one of memxbar's D2D factors (``rate_scale``:
    gap velocity prefactor, ``i0_scale``: current prefactor) after the netlist is written."""
    t = pulse_grid(width)
    v = pulse(t, amplitude, width)
    dev = RRAM(shape=(1, 1), seed=3)
    set_conductance(dev, (0, 0), g_start)
    net = Netlist("rram behind a resistor")
    net.vsource("in", "src", "0", pwl=list(zip(t.tolist(), v.tolist())))
    net.resistor("series", "src", "te", r_series)
    gap_node = rram_cell(net, "c0", "te", "0", dev.params, float(dev.gap[0, 0]), float(dev.i0_scale[0, 0]),
                         float(dev.rate_scale[0, 0]))
    net.tran(1e-9, float(t[-1]), max_step=2e-9, uic=True)
    net.set_options(reltol=1e-6, abstol=1e-15, vntol=1e-9)
    res = run_netlist(net.render())
    gap_s = np.interp(t, res["time"], res[gap_node] * 1e-9)
    i_s = np.interp(t, res["time"], -res["vin#branch"])
    if mismatch is not None:  # after the netlist: only memxbar sees it
        setattr(dev, mismatch[0], getattr(dev, mismatch[0]) * mismatch[1])
    xb = Crossbar(dev, r_source=r_series, r_row=0.0, r_col=0.0, r_sense=0.0)
    out = rram_crossbar_transient(xb, t, v.reshape(-1, 1), np.zeros((t.size, 1)))
    return gap_s, i_s, out.gap[:, 0, 0].numpy(), out.i_out[:, 0].numpy()


@ngspice
@pytest.mark.parametrize("amplitude, r_series, g_start", [(2.5, 10e3, 1e-6), (-1.6, 1e3, 30e-6)],
                         ids=["set", "reset"])
def test_single_cell_pulse_matches_ngspice(amplitude, r_series, g_start):
    gap_s, i_s, gap_m, i_m = single_cell(amplitude, r_series, g_start)
    swing_gap = np.ptp(gap_s)
    assert swing_gap > 0.5e-9  # a real, gradual switching event (not a sub-pm creep)
    assert np.sign(gap_s[-1] - gap_s[0]) == (-1 if amplitude > 0 else 1)
    assert close(gap_m, gap_s, swing_gap) <= 0.01
    assert close(i_m, i_s, np.ptp(i_s)) <= 0.01


@ngspice
@pytest.mark.parametrize("mismatch", [("rate_scale", 1.5), ("i0_scale", 1.05)])
def test_single_cell_comparison_detects_a_wrong_model(mismatch):
    """A 50 % faster gap velocity or a 5 % larger current prefactor in memxbar than in the
    netlist breaks the 1 % agreement (the self-limited SET is insensitive to small velocity
    errors: its end point is set by the series resistor)."""
    gap_s, i_s, gap_m, i_m = single_cell(2.5, 10e3, 1e-6, mismatch=mismatch)
    assert max(close(gap_m, gap_s, np.ptp(gap_s)), close(i_m, i_s, np.ptp(i_s))) > 0.01


# ------------------------------------------------------------------------ (b) 4x4 V/2 write
def v_half_write(amplitude: float, width: float, n: int = 4):
    """V/2 scheme: selected row at +V/2, selected column at -V/2, all other lines at 0 V."""
    t = pulse_grid(width)
    v_rows, v_cols = np.zeros((t.size, n)), np.zeros((t.size, n))
    v_rows[:, SEL[0]] = pulse(t, amplitude / 2, width)
    v_cols[:, SEL[1]] = pulse(t, -amplitude / 2, width)
    return t, v_rows, v_cols


def array_4x4(amplitude: float, g_selected: float | None, r_drive: float, width: float = 0.5e-6):
    """4x4 RRAM array (10 Ω wire segments, drivers and sense ends ``r_drive`` Ω) under a V/2 write
    of the cell SEL: initial gaps (m), ngspice gaps (T, 4, 4) m and the memxbar result."""
    dev = RRAM(shape=(4, 4), seed=5)
    if g_selected is not None:
        set_conductance(dev, SEL, g_selected)
    xb = Crossbar(dev, r_row=10.0, r_col=10.0, r_source=r_drive, r_sense=r_drive)
    t, v_rows, v_cols = v_half_write(amplitude, width)
    net = crossbar_transient_netlist(xb, t, v_rows, v_cols, max_step=2e-9)
    res = run_netlist(net.render())
    gap_s = np.array([[np.interp(t, res["time"], res[f"gap_cell_{i}_{j}"]) for j in range(4)] for i in range(4)])
    gap_s = np.moveaxis(gap_s, -1, 0) * 1e-9  # (T, rows, cols) m
    gap0 = dev.gap.clone().numpy()
    out = rram_crossbar_transient(xb, t, v_rows, v_cols)
    return gap0, gap_s, out


@ngspice
@pytest.mark.parametrize("amplitude, g_selected, r_drive", [(3.0, None, 5e3), (-3.0, 30e-6, 500.0)],
                         ids=["set", "reset"])
def test_4x4_half_select_write_matches_ngspice(amplitude, g_selected, r_drive):
    gap0, gap_s, out = array_4x4(amplitude, g_selected, r_drive)
    gap_m = out.gap.numpy()
    swing = np.ptp(gap_s[:, SEL[0], SEL[1]])
    assert swing > 0.3e-9
    assert close(gap_m[:, SEL[0], SEL[1]], gap_s[:, SEL[0], SEL[1]], swing) <= 0.01
    half = np.zeros((4, 4), dtype=bool)
    half[SEL[0], :] = half[:, SEL[1]] = True
    half[SEL] = False
    d_s, d_m = gap_s[:, half] - gap0[half], gap_m[:, half] - gap0[half]
    assert np.abs(d_s).max() < 0.05 * swing  # half-selected cells barely move ...
    assert np.abs(d_m - d_s).max() <= 0.01 * swing  # ... and memxbar agrees on how much


# ------------------------------------------------------------------------ (c) physics
def test_no_pulse_and_ideal_wires_nothing_moves():
    dev = RRAM(shape=(3, 5), seed=1)
    dev.program(torch.full((3, 5), 20e-6, dtype=torch.float64))
    gap0 = dev.gap.clone()
    xb = Crossbar(dev, r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)
    t = np.linspace(0.0, 1e-6, 50)
    out = rram_crossbar_transient(xb, t, np.zeros((50, 3)), np.zeros((50, 5)))
    assert torch.equal(out.gap, gap0.expand(50, 3, 5))
    assert torch.equal(dev.gap, gap0)
    assert float(out.v_cell.abs().max()) == 0.0 and float(out.i_out.abs().max()) == 0.0
    assert out.steps == 49  # one step per output interval where nothing moves


def test_ideal_wires_read_gives_exact_cell_voltages_and_currents():
    """r = 0 everywhere: every cell sees v_row - v_col exactly, i_out is the column sum of I(V)."""
    dev = RRAM(shape=(3, 4), seed=2)
    xb = Crossbar(dev, r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)
    t = np.array([0.0, 1e-8])
    v_rows, v_cols = np.array([[0.1, 0.2, -0.1]] * 2), np.array([[0.0, 0.05, -0.05, 0.1]] * 2)
    out = rram_crossbar_transient(xb, t, v_rows, v_cols)
    v_cell = torch.tensor(v_rows[0][:, None] - v_cols[0][None, :])
    assert torch.allclose(out.v_cell[1], v_cell, rtol=0, atol=1e-15)
    assert torch.allclose(out.i_out[1], dev.current(v_cell).sum(0), rtol=1e-12, atol=0)


def test_transient_operating_point_matches_crossbar_solver():
    """The transient's warm-started KCL solve agrees with Crossbar.full_solution (same array)."""
    dev = RRAM(shape=(5, 3), seed=4)
    dev.program(torch.rand(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 30e-6 + 5e-6)
    xb = Crossbar(dev, r_row=20.0, r_col=30.0, r_source=100.0, r_sense=50.0, row_drive="both")
    v_in, bias = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0]), torch.tensor([0.05, -0.1, 0.0])
    ref = xb.full_solution(v_in.reshape(1, -1), v_col_bias=bias.reshape(1, -1))
    out = rram_crossbar_transient(xb, [0.0, 1e-9], v_in.expand(2, 5), bias.expand(2, 3))
    assert torch.allclose(out.v_cell[0], ref.v_cell[0], rtol=0, atol=1e-12)
    assert torch.allclose(out.i_out[0], ref.i_out[0], rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("amplitude, g_selected", [(3.0, None), (-3.0, 30e-6)], ids=["set", "reset"])
def test_selected_cell_moves_monotonically_in_the_pulse_direction(amplitude, g_selected):
    dev = RRAM(shape=(4, 4), seed=5)
    if g_selected is not None:
        set_conductance(dev, SEL, g_selected)
    xb = Crossbar(dev, r_row=10.0, r_col=10.0, r_source=2e3, r_sense=2e3)
    t, v_rows, v_cols = v_half_write(amplitude, 0.3e-6)
    gap = rram_crossbar_transient(xb, t, v_rows, v_cols).gap[:, SEL[0], SEL[1]].numpy()
    step = np.diff(gap) * np.sign(amplitude)  # SET shrinks the gap, RESET grows it
    assert (step <= 0).all()
    assert gap[0] - gap[-1] == pytest.approx(np.sign(amplitude) * abs(gap[-1] - gap[0]))
    assert abs(gap[-1] - gap[0]) > 0.3e-9


def test_step_control_converges():
    """Halving max_gap_step changes the waveform by far less than the 1 % tolerance; the default
    takes large steps where nothing moves (about one per output interval outside the pulse)."""
    runs = []
    for mgs in (2e-12, 1e-12):
        dev = RRAM(shape=(4, 4), seed=5)
        xb = Crossbar(dev, r_row=10.0, r_col=10.0, r_source=5e3, r_sense=5e3)
        t, v_rows, v_cols = v_half_write(3.0, 0.3e-6)
        runs.append(rram_crossbar_transient(xb, t, v_rows, v_cols, max_gap_step=mgs))
    g0, g1 = runs[0].gap[:, SEL[0], SEL[1]], runs[1].gap[:, SEL[0], SEL[1]]
    assert float((g0 - g1).abs().max()) < 0.003 * float(g1.max() - g1.min())
    assert runs[1].steps > runs[0].steps


# ------------------------------------------------------------------------ (d) validation
@pytest.mark.parametrize("change, match", [
    (dict(times=[0.0, 1e-9, 1e-9]), "strictly increasing"),
    (dict(times=[0.0]), "at least two"),
    (dict(times=[0.0, float("nan"), 2e-9]), "finite"),
    (dict(v_rows=np.zeros((3, 3))), r"v_rows must have shape \(len\(times\), rows\) = \(3, 2\)"),
    (dict(v_cols=np.zeros((3,))), "v_cols must have shape"),
    (dict(v_rows=np.full((3, 2), np.inf)), "v_rows must be finite"),
    (dict(substeps=0), r"substeps must be an int(eger in \[1, inf\)| >= 1)"),
    (dict(max_gap_step=0.0), r"max_gap_step must be in \(0, 1e-0?9\]"),
    (dict(max_gap_step=1e-6), "max_gap_step"),
])
def test_bad_input_raises(change, match):
    xb = Crossbar(RRAM(shape=(2, 4), seed=0))
    args = dict(times=[0.0, 1e-9, 2e-9], v_rows=np.zeros((3, 2)), v_cols=np.zeros((3, 4)), substeps=1,
                max_gap_step=2e-12)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        rram_crossbar_transient(xb, args["times"], args["v_rows"], args["v_cols"], substeps=args["substeps"],
                                max_gap_step=args["max_gap_step"])


def test_non_rram_cells_are_rejected():
    with pytest.raises(ValueError, match="devices.RRAM"):
        rram_crossbar_transient(Crossbar(torch.full((2, 2), 1e-5)), [0.0, 1e-9], np.zeros((2, 2)), np.zeros((2, 2)))
