"""Physics checks of the linear crossbar solver (0T1R and linear 1T1R)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from xbar.crossbar import Crossbar, CrossbarConfig

F64 = torch.float64
METHODS = ("direct", "block", "cg")


def rand_g(rows, cols, seed=0, lo=1e-6, hi=1e-4):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, cols, dtype=F64, generator=gen)


def rand_v(batch, rows, seed=1):
    return torch.rand(batch, rows, dtype=F64, generator=torch.Generator().manual_seed(seed))


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def dense_nodal(g, v, r_row, r_col, r_source, r_sense):
    """Independent reference: dense 2mn nodal matrix, row drive at column 0, sense at row m-1."""
    g = g.numpy()
    m, n = g.shape
    N = 2 * m * n
    A = np.zeros((N, N))
    row = lambda i, j: i * n + j  # noqa: E731
    col = lambda i, j: m * n + i * n + j  # noqa: E731

    def conn(a, b, c):
        A[a, a] += c
        A[b, b] += c
        A[a, b] -= c
        A[b, a] -= c

    for i in range(m):
        for j in range(n):
            conn(row(i, j), col(i, j), g[i, j])
            if j + 1 < n:
                conn(row(i, j), row(i, j + 1), 1 / r_row)
            if i + 1 < m:
                conn(col(i, j), col(i + 1, j), 1 / r_col)
        A[row(i, 0), row(i, 0)] += 1 / r_source
    for j in range(n):
        A[col(m - 1, j), col(m - 1, j)] += 1 / r_sense
    out = []
    for vb in v.numpy():
        b = np.zeros(N)
        for i in range(m):
            b[row(i, 0)] = vb[i] / r_source
        x = np.linalg.solve(A, b)
        out.append(np.array([x[col(m - 1, j)] / r_sense for j in range(n)]))
    return torch.tensor(np.array(out))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(5, 7), (7, 5)])
def test_against_independent_dense_nodal_solve(method, shape):
    g, v = rand_g(*shape, lo=1e-3, hi=1e-2), rand_v(3, shape[0])
    r = dict(r_row=2.0, r_col=3.0, r_source=5.0, r_sense=7.0)
    ref = dense_nodal(g, v, **r)
    out = Crossbar(g, method=method, **r).solve(v)
    assert rel(out, ref) < 1e-12


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row_drive", ["first", "last", "both"])
@pytest.mark.parametrize("col_sense", ["first", "last", "both"])
def test_kcl_power_and_method_agreement(method, row_drive, col_sense):
    g, v = rand_g(6, 9, lo=1e-4, hi=1e-2), rand_v(4, 6)
    bias = 0.1 * rand_v(4, 9, seed=5)
    kw = dict(r_row=1.0, r_col=2.0, r_source=0.5, r_sense=0.0, row_drive=row_drive, col_sense=col_sense)
    sol = Crossbar(g, method=method, **kw).full_solution(v, v_col_bias=bias)
    ref = Crossbar(g, method="direct", **kw).full_solution(v, v_col_bias=bias)
    assert float(sol.kcl_residual.max()) <= 1e-12
    assert rel(sol.i_out, ref.i_out) < 1e-11
    assert rel(sol.v_row, ref.v_row) < 1e-11
    assert bool((sol.power >= 0).all())
    # power delivered equals power dissipated in cells (+ wires, terminals): at least the cells'
    assert bool((sol.power >= (sol.i_cell * sol.v_cell).sum((-1, -2)) - 1e-15).all())
    torch.testing.assert_close(sol.v_cell, sol.v_row - sol.v_col)
    torch.testing.assert_close(sol.i_in.sum(-1), sol.i_out.sum(-1), rtol=1e-12, atol=0)


def test_zero_resistance_is_exactly_ideal():
    g, v = rand_g(4, 6), rand_v(3, 4)
    out = Crossbar(g, r_row=0, r_col=0, r_source=0, r_sense=0).solve(v)
    torch.testing.assert_close(out, v @ g, rtol=1e-14, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_tiny_resistance_approaches_ideal(method):
    g, v = rand_g(8, 8), rand_v(2, 8)
    out = Crossbar(g, r_row=1e-9, r_col=1e-9, r_source=1e-9, r_sense=1e-9, method=method).solve(v)
    assert rel(out, v @ g) < 1e-9


def test_one_by_one_hand_formula():
    """1x1: one series loop source -> r_source -> cell G -> r_sense -> 0 V (wires carry no
    current), so I = v / (r_source + 1/G + r_sense)."""
    g = torch.tensor([[2e-3]], dtype=F64)
    v = torch.tensor([0.7], dtype=F64)
    out = Crossbar(g, r_row=3.0, r_col=4.0, r_source=10.0, r_sense=20.0).solve(v)
    torch.testing.assert_close(out, v / (10.0 + 1 / 2e-3 + 20.0), rtol=1e-14, atol=0)


def test_one_by_n_ladder_formula():
    """1xN: each column holds one cell, so branch j is G_j in series with r_sense:
    h_j = 1/(1/G_j + r_sense) (r_col carries no current). Ladder admittance from the far end:
    Y_{N-1} = h_{N-1}, Y_j = h_j + 1/(r_row + 1/Y_{j+1}). The source sees r_source + 1/Y_0, node
    voltages follow the divider V_{j+1} = V_j (1/Y_{j+1}) / (r_row + 1/Y_{j+1}), I_j = h_j V_j."""
    G = [1e-3, 5e-3, 2e-3, 8e-3]
    r_row, r_source, r_sense, v = 2.0, 5.0, 3.0, 0.9
    h = [1 / (1 / gj + r_sense) for gj in G]
    Y = [0.0] * len(G)
    Y[-1] = h[-1]
    for j in range(len(G) - 2, -1, -1):
        Y[j] = h[j] + 1 / (r_row + 1 / Y[j + 1])
    V = [v * (1 / Y[0]) / (r_source + 1 / Y[0])]
    for j in range(1, len(G)):
        V.append(V[-1] * (1 / Y[j]) / (r_row + 1 / Y[j]))
    expected = torch.tensor([h[j] * V[j] for j in range(len(G))], dtype=F64)
    out = Crossbar(torch.tensor([G], dtype=F64), r_row=r_row, r_col=9.0, r_source=r_source, r_sense=r_sense).solve(
        torch.tensor([v], dtype=F64))
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6)])
def test_transfer_matrix_matches_direct_solve(shape):
    g = rand_g(*shape)
    xb = Crossbar(g)
    a = xb.transfer_matrix()
    v = rand_v(5, shape[0])
    ref = Crossbar(g, method="direct").solve(v)
    assert rel(v @ a, ref) < 1e-12
    big = rand_v(4 * shape[0], shape[0], seed=3)  # large batch -> transfer-matrix path
    assert rel(xb.solve(big), Crossbar(g, method="direct").solve(big)) < 1e-12


def test_transfer_cache_invalidated_when_conductances_change():
    g = rand_g(5, 5)
    xb = Crossbar(g)
    a1 = xb.transfer_matrix().clone()
    g.mul_(2.0)
    a2 = xb.transfer_matrix()
    assert not torch.allclose(a1, a2)
    assert rel(a2, Crossbar(g.clone()).transfer_matrix()) < 1e-14


def test_one_dimensional_input_returns_cols():
    g = rand_g(3, 5)
    xb = Crossbar(g)
    assert xb.solve(rand_v(1, 3)[0]).shape == (5,)
    assert xb.solve(rand_v(2, 3)).shape == (2, 5)


def test_1t1r_linear_series_elimination_and_gates_off():
    g, v = rand_g(4, 5, lo=1e-4, hi=1e-3), rand_v(2, 4)
    r_on = 1e3
    xb = Crossbar(g, topology="1T1R", r_access_on=r_on, r_row=0, r_col=0, r_source=0, r_sense=0)
    torch.testing.assert_close(xb.solve(v), v @ (g / (1 + g * r_on)), rtol=1e-14, atol=0)
    xb.gate_enable = torch.zeros(4, dtype=torch.bool)
    assert float(Crossbar(g, topology="1T1R", gate_enable=torch.zeros(4, dtype=torch.bool)).solve(v).abs().max()) == 0.0
    assert float(xb.solve(v).abs().max()) == 0.0


def test_torch_line_backend_matches_lapack():
    """The pure-torch tridiagonal sweep (used on CUDA) agrees with LAPACK on CPU."""
    from xbar._linear import StructuredSolver
    g = rand_g(6, 5)
    xb = Crossbar(g, r_sense=0.0)
    grid = xb._grid()
    d = xb._t(g).unsqueeze(0)
    s_p, s_q = rand_v(2, grid.K), torch.zeros(2, grid.L, dtype=F64)
    z = torch.zeros(2, grid.K, grid.L, dtype=F64)
    for method in ("block", "cg"):
        a = StructuredSolver(grid, d, method=method, backend="torch").solve(z, z, s_p, s_q)
        b = StructuredSolver(grid, d, method=method, backend="lapack").solve(z, z, s_p, s_q)
        torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-15)


def test_config_round_trips_through_asdict():
    cfg = CrossbarConfig(r_row=0.5, topology="1S1R", selector_nl=100.0, selector_v_w=1.0, selector_v_0=None)
    assert CrossbarConfig(**dataclasses.asdict(cfg)) == cfg
    g = rand_g(3, 3)
    a = Crossbar(g, config=cfg).solve(rand_v(1, 3))
    b = Crossbar(g, **dataclasses.asdict(cfg)).solve(rand_v(1, 3))
    torch.testing.assert_close(a, b)
