"""Regression tests of the solver defects of issue 15 (each failed before its fix) and of the
exactness of the cell-voltage ("wire") formulation against a 50-digit reference."""
from __future__ import annotations

import warnings

import mpmath
import pytest
import torch

from xbar import ConvergenceError, Crossbar
from xbar._nodal import kcl_backward_error
from xbar.topology import CellModel, MemoryElement, ekv_iv, selector_iv

F64 = torch.float64


def rand_g(rows, cols, seed=0, lo=1e-6, hi=1e-4):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, cols, dtype=F64, generator=gen)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def mp_reference(g, v, r_row, r_col, r_source, r_sense, dps=50):
    """Output currents (A) of the default crossbar circuit (rows driven at column 0, columns sensed
    at row m-1) from a dense nodal solve in ``dps``-digit arithmetic (mpmath)."""
    mpmath.mp.dps = dps
    m, n = g.shape
    size = 2 * m * n
    a, b = mpmath.zeros(size, size), mpmath.zeros(size, 1)
    row = lambda i, j: i * n + j  # noqa: E731
    col = lambda i, j: m * n + i * n + j  # noqa: E731

    def conn(p, q, c):
        a[p, p] += c
        a[q, q] += c
        a[p, q] -= c
        a[q, p] -= c

    for i in range(m):
        for j in range(n):
            conn(row(i, j), col(i, j), mpmath.mpf(float(g[i, j])))
            if j + 1 < n:
                conn(row(i, j), row(i, j + 1), 1 / mpmath.mpf(r_row))
            if i + 1 < m:
                conn(col(i, j), col(i + 1, j), 1 / mpmath.mpf(r_col))
        a[row(i, 0), row(i, 0)] += 1 / mpmath.mpf(r_source)
        b[row(i, 0)] = mpmath.mpf(float(v[i])) / mpmath.mpf(r_source)
    for j in range(n):
        a[col(m - 1, j), col(m - 1, j)] += 1 / mpmath.mpf(r_sense)
    x = mpmath.lu_solve(a, b)
    return torch.tensor([float(x[col(m - 1, j)] / mpmath.mpf(r_sense)) for j in range(n)], dtype=F64)


# ------------------------------------------------------------------ tiny but non-zero wires
HOSTILE = dict(r_row=1e-12, r_col=1e-12, r_source=1.0, r_sense=1.0)


def test_tiny_wire_resistance_is_exact_against_a_50_digit_reference():
    """4x4, G up to 1e3 S, 1e-12 Ohm wires behind 1 Ohm drivers: the nodal formulation lost the
    driver conductance in the rounding of 2e12 S diagonals (relative error 3.3e-3 before); "auto"
    now switches to the cell-voltage formulation, exact to rounding."""
    g = 1e3 * torch.rand(4, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    v = torch.rand(4, dtype=F64, generator=torch.Generator().manual_seed(1))
    ref = mp_reference(g, v, **HOSTILE)
    sol = Crossbar(g, **HOSTILE).full_solution(v)
    assert sol.method == "wire"
    assert rel(sol.i_out[0], ref) < 1e-13
    assert float(sol.kcl_residual.max()) < 1e-14
    assert rel(Crossbar(g, method="wire", **HOSTILE).solve(v), ref) < 1e-13


@pytest.mark.parametrize("method", ["cg", "block", "direct"])
def test_nodal_methods_refuse_wires_far_below_the_driver_resistance(method):
    g = rand_g(4, 4)
    with pytest.raises(ValueError, match="lose precision"):
        Crossbar(g, method=method, **HOSTILE).solve(torch.ones(4, dtype=F64))


@pytest.mark.parametrize("r, r_end", [(1e-9, 1.0), (1e-6, 10.0), (0.5, 2.0), (3.0, 0.25)])
def test_wire_formulation_matches_the_50_digit_reference(r, r_end):
    g = rand_g(3, 5, lo=1e-5, hi=1e-2, seed=2)
    v = torch.linspace(-0.4, 0.9, 3, dtype=F64)
    ref = mp_reference(g, v, r, r, r_end, r_end)
    assert rel(Crossbar(g, method="wire", r_row=r, r_col=r, r_source=r_end, r_sense=r_end).solve(v), ref) < 1e-13


@pytest.mark.parametrize("row_drive", ["first", "last", "both"])
@pytest.mark.parametrize("col_sense", ["first", "last", "both"])
@pytest.mark.parametrize("ideal", [False, True])
def test_wire_formulation_matches_the_nodal_solvers_for_every_termination(row_drive, col_sense, ideal):
    g = rand_g(6, 8, lo=1e-4, hi=1e-2, seed=3)
    v = torch.rand(2, 6, dtype=F64, generator=torch.Generator().manual_seed(4))
    bias = 0.1 * torch.rand(2, 8, dtype=F64, generator=torch.Generator().manual_seed(5))
    kw = dict(r_row=0.8, r_col=1.7, r_source=0.0 if ideal else 0.6, r_sense=2.0, row_drive=row_drive,
              col_sense=col_sense)
    ref = Crossbar(g, method="direct", **kw).full_solution(v, v_col_bias=bias)
    sol = Crossbar(g, method="wire", **kw).full_solution(v, v_col_bias=bias)
    assert rel(sol.i_out, ref.i_out) < 1e-12
    assert rel(sol.v_row, ref.v_row) < 1e-12
    assert float(sol.kcl_residual.max()) < 1e-14


def test_zero_resistance_wires_use_the_wire_formulation_exactly():
    g = rand_g(5, 7, seed=6)
    v = torch.rand(3, 5, dtype=F64)
    kw = dict(r_row=0.0, r_col=0.0, r_source=2.0, r_sense=1.0)
    sol = Crossbar(g, **kw).full_solution(v)
    assert sol.method == "wire"
    assert rel(sol.i_out, Crossbar(g, method="direct", **kw).full_solution(v).i_out) < 1e-13


# ------------------------------------------------------------------ relative KCL residual
def test_kcl_residual_is_small_for_exact_solutions_and_large_for_wrong_ones():
    """Before: max|F| / current scale read 0.05-1.24 on solutions correct to 1e-14 (wires of
    1e12 S make the residual's own rounding exceed the currents). Now: the componentwise backward
    error, a few eps for an exact solution whatever the conductances span."""
    g = 1e3 * torch.rand(4, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    v = torch.rand(4, dtype=F64)
    for kw in (HOSTILE, dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0)):
        xb = Crossbar(g, **kw)
        assert float(xb.full_solution(v).kcl_residual.max()) < 1e-14
    xb = Crossbar(g, r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0)
    x_p, x_q, _ = xb.nodes(v.unsqueeze(0), torch.zeros(1, 4, dtype=F64), g)
    x_p = x_p * (1 + 1e-6)  # a solution wrong in the 6th digit
    i = g * (x_p - x_q)
    s_p, s_q = v.unsqueeze(0), torch.zeros(1, 4, dtype=F64)
    err = kcl_backward_error(xb._grid(), x_p, x_q, i, g.expand_as(i), s_p, s_q)
    assert float(err.max()) > 1e-8


# ------------------------------------------------------------------ dpotrf stale upper triangle
def test_transfer_sweep_emits_no_overflow_warning_at_low_wire_resistance():
    """The block sweep scaled a stale upper triangle left by dpotrf by g_q^2 per block until inf
    (RuntimeWarning: overflow at 64 x 64 with 1 mOhm wires; results were right)."""
    g = rand_g(64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = Crossbar(g, r_row=1e-3, r_col=1e-3, r_source=1.0, r_sense=1.0).transfer_matrix()
    assert bool(torch.isfinite(a).all())
    v = torch.rand(2, 64, dtype=F64)
    ref = Crossbar(g, method="wire", r_row=1e-3, r_col=1e-3, r_source=1.0, r_sense=1.0).solve(v)
    assert rel(v @ a, ref) < 1e-10


# ------------------------------------------------------------------ conductances by reference
def test_in_place_edits_of_the_conductances_are_revalidated():
    """Before: float64 conductances were kept by reference and never re-checked: writing NaN or a
    negative value after construction gave NaN or negative currents."""
    g = rand_g(4, 5)
    xb = Crossbar(g)
    v = torch.ones(4, dtype=F64)
    xb.solve(v)
    g[1, 2] = float("nan")
    with pytest.raises(ValueError, match="conductances must be finite"):
        xb.solve(v)
    g[1, 2] = -1e-6
    with pytest.raises(ValueError, match="conductances must be >= 0"):
        xb.full_solution(v)
    g[1, 2] = 5e-5
    torch.testing.assert_close(xb.solve(v), Crossbar(g.clone()).solve(v), rtol=1e-14, atol=0)


def test_float32_conductances_are_read_like_float64_ones():
    """float32 input used to be copied at construction (later edits ignored), float64 kept by
    reference: now both are read at every solve."""
    g32 = rand_g(3, 3).float()
    xb = Crossbar(g32)
    v = torch.ones(3, dtype=F64)
    before = xb.solve(v)
    g32.mul_(2.0)
    after = xb.solve(v)
    assert rel(after, before) > 0.5
    torch.testing.assert_close(after, Crossbar(g32.clone()).solve(v), rtol=1e-14, atol=0)
    g32[0, 0] = float("inf")
    with pytest.raises(ValueError, match="conductances"):
        xb.solve(v)


def test_gradients_still_reach_a_conductance_tensor_that_requires_grad():
    g = rand_g(4, 3).requires_grad_(True)
    xb = Crossbar(g)
    xb.solve(torch.ones(4, dtype=F64)).sum().backward()
    assert g.grad is not None and bool((g.grad > 0).all())


@pytest.mark.parametrize("big", [1e120, 1e300])
def test_overflowing_conductances_raise_a_clear_error(big):
    """Before: a LinAlgError "Schur block not positive definite" (or NaN) for overflowing cells."""
    g = rand_g(4, 4)
    g[0, 0] = big
    with pytest.raises(ValueError, match="<= 1e\\+100 S"):
        Crossbar(g).solve(torch.ones(4, dtype=F64))


# ------------------------------------------------------------------ non-finite cell currents
class _Breakdown:
    """A minimal device object whose I-V law is NaN above 2 V (as a device model outside its range)."""

    shape = (2, 2)

    def conductance(self):
        return torch.full(self.shape, 1e-4, dtype=F64)

    def current(self, v):
        i = 1e-4 * v + 1e-6 * v ** 3
        return torch.where(v.abs() > 2.0, torch.full_like(i, float("nan")), i)


def test_a_nan_cell_current_raises_naming_the_cause():
    """Before: NaN from the device's I-V flowed through Crossbar.solve (kcl_residual NaN, no error)."""
    xb = Crossbar(_Breakdown())
    assert bool(torch.isfinite(xb.solve(torch.full((2,), 1.0, dtype=F64))).all())
    with pytest.raises(ValueError, match="not finite"):
        xb.solve(torch.full((2,), 5.0, dtype=F64))
    with pytest.raises(ValueError, match="not finite"):
        xb.full_solution(torch.full((2,), 5.0, dtype=F64))


# ------------------------------------------------------------------ 1S1R inner series split
@pytest.mark.parametrize("v_cell", [30.0, -45.0, 80.0])
def test_selector_split_converges_far_beyond_v0(v_cell):
    """Before: the inner Newton gave up after 200 iterations for V/v0 >~ 200 (each step moved the
    selector voltage by about v0). Now: Newton on the selector's inverse I-V, bracketed."""
    cm = CellModel(MemoryElement(None), lambda v: selector_iv("sinh", 1e-7, 0.1, v),
                   series_inverse=lambda i: 0.1 * torch.asinh(i / 1e-7))
    g = torch.full((1, 1, 1), 1e-4, dtype=F64)
    v = torch.full((1, 1, 1), v_cell, dtype=F64)
    v_a = cm._split(v, g)
    i_mem = 1e-4 * v_a
    i_sel = selector_iv("sinh", 1e-7, 0.1, v - v_a)[0]
    assert float(((i_mem - i_sel) / i_mem).abs().max()) < 1e-11


def test_current_balance_split_is_safeguarded_without_an_inverse():
    """Without an inverse I-V (EKV access transistor) the bracketed, rtsafe-safeguarded Newton
    converges too, at most at bisection speed."""
    v_gate = torch.tensor([[1.2]], dtype=F64)
    cm = CellModel(MemoryElement(None), lambda v: ekv_iv(v, v_gate, 0.4, 1.3, 2e-4, 0.02585))
    g = torch.full((1, 1, 3), 1e-3, dtype=F64)
    v = torch.tensor([[[0.05, 3.0, 40.0]]], dtype=F64)
    v_a = cm._split(v, g)
    i_mem = 1e-3 * v_a
    i_ser = ekv_iv(v - v_a, v_gate, 0.4, 1.3, 2e-4, 0.02585)[0]
    assert float(((i_mem - i_ser) / i_mem).abs().max()) < 1e-12


def test_1s1r_array_solves_at_400_v0_where_it_failed_before():
    g = torch.full((3, 3), 1e-4, dtype=F64)
    xb = Crossbar(g, topology="1S1R", selector_v_0=0.1, r_row=1.0, r_col=1.0)
    sol = xb.full_solution(torch.full((3,), 40.0, dtype=F64))
    assert float(sol.kcl_residual.max()) < 1e-12
    assert bool((sol.i_out > 0).all())
    with pytest.raises(ConvergenceError):  # budget still enforced
        CellModel(MemoryElement(None), lambda v: selector_iv("sinh", 1e-7, 0.1, v), inner_max_iter=2)._split(
            torch.full((1, 1, 1), 40.0, dtype=F64), torch.full((1, 1, 1), 1e-4, dtype=F64))
