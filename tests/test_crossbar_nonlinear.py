"""Nonlinear cells: device objects, 1S1R selectors, EKV 1T1R, Newton failure reporting."""
from __future__ import annotations

import math

import pytest
import torch

from xbar.crossbar import ConvergenceError, Crossbar
from xbar.topology import selector_iv, selector_v0

F64 = torch.float64


class SinhDevice:
    """Test-only device: I = a sinh(b V) per cell, a = G/b so the small-signal conductance is G."""

    def __init__(self, g: torch.Tensor, b: float = 5.0):
        self.shape = tuple(g.shape)
        self.g, self.b = g, b
        self.params = type("P", (), {"v_read": 0.2})()

    def conductance(self):
        return self.g * torch.sinh(self.b * torch.tensor(0.2, dtype=F64)) / (self.b * 0.2)

    def current(self, voltage):
        return (self.g / self.b) * torch.sinh(self.b * voltage)


def rand(rows, cols, seed=0, lo=1e-4, hi=1e-3):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, cols, dtype=F64, generator=gen)


def test_device_object_ideal_wires_exact():
    g = rand(4, 5)
    dev = SinhDevice(g)
    v = torch.rand(3, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    out = Crossbar(dev, r_row=0, r_col=0, r_source=0, r_sense=0).solve(v)
    expected = dev.current(v.unsqueeze(-1).expand(3, 4, 5)).sum(-2)
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize("method", ["direct", "block", "cg"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_device_object_with_ir_drop_kcl(method, shape):
    dev = SinhDevice(rand(*shape, lo=1e-3, hi=1e-2))
    v = torch.rand(2, shape[0], dtype=F64, generator=torch.Generator().manual_seed(2))
    sol = Crossbar(dev, r_row=2.0, r_col=3.0, r_source=1.0, r_sense=1.0, method=method).full_solution(v)
    assert float(sol.kcl_residual.max()) <= 1e-12
    assert bool((sol.power >= 0).all())
    torch.testing.assert_close(sol.i_cell, dev.current(sol.v_cell), rtol=1e-13, atol=1e-18)
    ref = Crossbar(dev, r_row=2.0, r_col=3.0, r_source=1.0, r_sense=1.0, method="direct").solve(v)
    torch.testing.assert_close(sol.i_out, ref, rtol=1e-11, atol=0)


@pytest.mark.parametrize("kind", ["sinh", "exp"])
def test_selector_nonlinearity_definition(kind):
    v0 = selector_v0(kind, None, 1000.0, 1.2)
    i_w = selector_iv(kind, 1e-6, v0, torch.tensor(1.2, dtype=F64))[0]
    i_half = selector_iv(kind, 1e-6, v0, torch.tensor(0.6, dtype=F64))[0]
    assert math.isclose(float(i_w / i_half), 1000.0, rel_tol=1e-12)


def test_1s1r_series_split_solves_cell_equation():
    """The eliminated internal node satisfies I_mem(v_a) = I_sel(v_cell - v_a)."""
    g = rand(3, 3)
    xb = Crossbar(g, topology="1S1R", selector_i_s=1e-6, selector_v_0=0.1, r_row=0, r_col=0, r_source=0, r_sense=0)
    v = torch.tensor([[1.0, -0.5, 0.3]], dtype=F64)
    sol = xb.full_solution(v)
    v_a = sol.i_cell / g
    i_sel = selector_iv("sinh", 1e-6, 0.1, sol.v_cell - v_a)[0]
    torch.testing.assert_close(sol.i_cell, i_sel, rtol=1e-12, atol=1e-20)


def _sneak_fraction(topology_kw, nl, rows=16):
    """Read cell (0, 0) with the V/2 scheme: row 0 at V, other rows at V/2, column 0 sensed at 0 V,
    other columns at V/2. Sneak = column-0 current minus the selected cell's own current."""
    v_read = 1.0
    g = torch.full((rows, rows), 1e-2, dtype=F64)  # device far more conductive than the selector
    v = torch.full((1, rows), v_read / 2, dtype=F64)
    v[0, 0] = v_read
    bias = torch.full((1, rows), v_read / 2, dtype=F64)
    bias[0, 0] = 0.0
    xb = Crossbar(g, r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0, **topology_kw)
    sol = xb.full_solution(v, v_col_bias=bias)
    i_sel = sol.i_cell[0, 0, 0]
    return float((sol.i_out[0, 0] - i_sel) / i_sel)


def test_1s1r_reduces_sneak_current_by_selector_nonlinearity():
    nl = 1000.0
    passive = _sneak_fraction({}, nl)
    selected = _sneak_fraction(dict(topology="1S1R", selector_i_s=1e-10, selector_nl=nl, selector_v_w=1.0,
                                    selector_v_0=None), nl)
    assert passive == pytest.approx(15 * 0.5, rel=1e-12)  # 15 half-selected cells at V/2
    # selector dominates the series pair: reduction close to NL/2 (the linear ratio of V/2)
    assert passive / selected > nl / 4


def test_1t1r_ekv_gates_off_block_current_and_on_conducts():
    g = rand(4, 4, lo=1e-3, hi=1e-2)
    v = torch.full((1, 4), 0.5, dtype=F64)
    kw = dict(topology="1T1R", transistor="ekv", mos_beta=1e-2)
    on = Crossbar(g, **kw).solve(v)
    off = Crossbar(g, gate_enable=torch.zeros(4, dtype=torch.bool), **kw).solve(v)
    assert float(off.abs().max()) < 1e-6 * float(on.abs().max())
    sol = Crossbar(g, **kw).full_solution(v)
    assert float(sol.kcl_residual.max()) <= 1e-12


def test_newton_budget_exhausted_raises_convergence_error():
    g = rand(4, 4, lo=1e-3, hi=1e-2)
    xb = Crossbar(g, topology="1S1R", selector_i_s=1e-9, selector_v_0=0.02, newton_max_iter=1)
    with pytest.raises(ConvergenceError) as info:
        xb.solve(torch.full((4,), 2.0, dtype=F64))
    assert info.value.iterations == 1 and info.value.residual > 0
    assert isinstance(info.value, RuntimeError)
    assert "residual" in str(info.value)


def test_zero_input_nonlinear_gives_zero():
    xb = Crossbar(rand(3, 3), topology="1S1R")
    assert float(xb.solve(torch.zeros(3, dtype=F64)).abs().max()) == 0.0
