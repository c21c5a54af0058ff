"""The device-agnostic torch solver path (the one CUDA runs), checked on CPU by forcing backend="torch".

Parallel cyclic reduction against dense solves, the torch CG against the compiled CPU path and
the sparse-LU reference, the kernel count of one CG iteration (a fixed sequence without host
reads), the number of host reads per solve, and CUDA agreement when a GPU is present.
"""
from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from xbar import Crossbar
from xbar._cg_torch import RECURRENCE_OPS, DeviceCG
from xbar._lines import DenseLines, PCRLines, levels, line_off
from xbar._linear import StructuredSolver

F64 = torch.float64
CUDA = torch.cuda.is_available()
_VIEWS = {"aten.view.default", "aten.narrow.default", "aten.slice.Tensor", "aten.select.int",
          "aten.expand.default", "aten.alias.default", "aten._unsafe_view.default", "aten.t.default",
          "aten.transpose.int", "aten.unsqueeze.default", "aten.detach.default"}


class _Ops(TorchDispatchMode):
    """Records every aten op dispatched inside the block."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))

    @property
    def kernels(self):
        return [o for o in self.ops if o not in _VIEWS]

    @property
    def host_reads(self):
        return sum(o.startswith("aten._local_scalar_dense") or o.startswith("aten.item") for o in self.ops)


def rand_g(rows, cols, seed=0, lo=1e-6, hi=1e-4):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(rows, cols, dtype=F64, generator=gen)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64])
@pytest.mark.parametrize("axis", [-1, -2])
@pytest.mark.parametrize("dirichlet", [(False, False), (True, False), (False, True)])
def test_pcr_matches_dense_solve(n, axis, dirichlet):
    """Parallel cyclic reduction solves every line exactly (dense LU reference), Dirichlet rows included."""
    gen = torch.Generator().manual_seed(n)
    shape = (2, 3, n) if axis == -1 else (2, n, 3)
    g = 2.5
    diag = 2 * g + torch.rand(shape, dtype=F64, generator=gen)
    first, last = dirichlet if n > 2 else (False, False)
    off = line_off(n, g, first, last, diag)
    if first:
        diag.select(axis, 0).fill_(1.0)
    if last:
        diag.select(axis, n - 1).fill_(1.0)
    rhs = torch.rand(*shape, dtype=F64, generator=gen)
    x = PCRLines(diag, off, axis).solve(rhs)
    d, r = diag.movedim(axis, -1), rhs.movedim(axis, -1)
    mat = torch.diag_embed(d)
    if n > 1:
        band = off.expand(*d.shape[:-1], n - 1)
        mat = mat + torch.diag_embed(band, 1) + torch.diag_embed(band, -1)
    ref = torch.linalg.solve(mat, r.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(x, ref.movedim(-1, axis), rtol=1e-13, atol=1e-15)
    assert levels(n) == (0 if n == 1 else (n - 1).bit_length())


@pytest.mark.parametrize("shape", [(7, 5), (5, 9), (16, 16)])
@pytest.mark.parametrize("ends", [
    dict(row_drive="first", col_sense="last", r_source=2.0, r_sense=3.0),
    dict(row_drive="both", col_sense="first", r_source=0.0, r_sense=1.0),
    dict(row_drive="last", col_sense="both", r_source=0.5, r_sense=0.0),
])
def test_torch_backend_matches_compiled_cpu_and_sparse_lu(shape, ends):
    g = rand_g(*shape, lo=1e-3, hi=1e-2)
    v = torch.rand(3, shape[0], dtype=F64, generator=torch.Generator().manual_seed(2))
    bias = 0.1 * torch.rand(3, shape[1], dtype=F64, generator=torch.Generator().manual_seed(3))
    kw = dict(r_row=1.5, r_col=0.7, **ends)
    ref = Crossbar(g, method="direct", **kw).full_solution(v, v_col_bias=bias)
    for method in ("cg", "block"):
        for backend in ("torch", "cpu"):
            sol = Crossbar(g, method=method, backend=backend, **kw).full_solution(v, v_col_bias=bias)
            assert rel(sol.i_out, ref.i_out) < 1e-11, (method, backend)
            assert rel(sol.v_col, ref.v_col) < 1e-11, (method, backend)
            assert float(sol.kcl_residual.max()) < 1e-13


def test_torch_cg_at_256_agrees_with_the_compiled_cpu_path_to_1e10():
    """Same results on both paths (the CPU-vs-GPU agreement bar, with torch run on CPU)."""
    g, r = rand_g(128, 128), dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0)
    v = torch.rand(2, 128, dtype=F64, generator=torch.Generator().manual_seed(1))
    a = Crossbar(g, method="cg", backend="torch", **r).solve(v)
    b = Crossbar(g, method="cg", backend="cpu", **r).solve(v)
    assert rel(a, b) < 1e-10


@pytest.mark.parametrize("kw", [dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0),
                                dict(r_row=0.5, r_col=2.0, r_source=0.0, r_sense=1.0, row_drive="both",
                                     col_sense="both")])
def test_dense_line_inverses_match_cyclic_reduction_and_the_cpu_path(kw):
    """The explicit line inverses (chosen on CUDA for many right-hand sides) give the same solution."""
    g = rand_g(32, 24, lo=1e-9, hi=1e-4)
    xb = Crossbar(g, **kw)
    grid, d = xb._grid(), xb._t(g).unsqueeze(0)
    gen = torch.Generator().manual_seed(6)
    s_p, s_q = torch.rand(20, grid.K, dtype=F64, generator=gen), 0.1 * torch.rand(20, grid.L, dtype=F64, generator=gen)
    z = torch.zeros(20, grid.K, grid.L, dtype=F64)
    ref = StructuredSolver(grid, d, method="cg", backend="cpu").solve(z, z, s_p, s_q)
    dense = StructuredSolver(grid, d, method="cg", backend="torch", lines="dense")
    assert isinstance(dense.lines_p, DenseLines) and dense.lines_p.ops_per_solve() == 3
    out = dense.solve(z, z, s_p, s_q)
    assert rel(out[0], ref[0]) < 1e-12 and rel(out[1], ref[1]) < 1e-12


def _cg_for(n: int, batch: int = 1):
    xb = Crossbar(rand_g(n, n), method="cg", backend="torch")
    xb.solve(torch.rand(batch, n, dtype=F64))
    solver = xb._cache["linear"][1]
    c = torch.rand(batch, n, n, dtype=F64, generator=torch.Generator().manual_seed(4))
    solver._buffers(batch, c)
    cg = DeviceCG(solver._schur_torch, solver._precond_torch, (batch, n, n), c, rtol=1e-14, max_iter=100, what="cg")
    return solver, cg, c


@pytest.mark.parametrize("n, batch", [(256, 1), (64, 5)])
def test_torch_cg_iteration_is_a_fixed_kernel_sequence_without_host_reads(n, batch):
    """One iteration launches 4 ceil(log2 n) + 23 kernels (55 at 256 x 256), whatever the batch,
    and never reads a value back to the host."""
    solver, cg, c = _cg_for(n, batch)
    cg._start(c)
    with _Ops() as rec:
        cg._iteration()
    assert rec.host_reads == 0
    assert len(rec.kernels) == solver.ops_per_iteration() == 4 * levels(n) + 23
    counts = collections.Counter(rec.kernels)
    assert counts["aten.bmm.out"] == 3  # the three dot products, one kernel each
    assert solver.ops_per_iteration() == solver.lines_p.ops_per_solve() + solver.lines_q.ops_per_solve() + 5 \
        + RECURRENCE_OPS


def test_torch_cg_reads_the_host_only_between_chunks():
    """A whole solve reads the residual back a handful of times, not once per iteration."""
    solver, cg, c = _cg_for(256)
    with _Ops() as rec:
        cg.solve(c)
    assert cg.iterations >= 5
    assert rec.host_reads <= 5 < cg.iterations + 1


def test_transfer_matrix_on_the_torch_path_equals_the_block_sweep():
    """The torch path builds the transfer matrix from batched CG solves (as on CUDA)."""
    g = rand_g(12, 9)
    kw = dict(r_row=2.0, r_col=1.0, r_source=1.0, r_sense=0.5)
    a_torch = Crossbar(g, backend="torch", method="cg", **kw).transfer_matrix()
    a_sweep = Crossbar(g, **kw).transfer_matrix()
    assert rel(a_torch, a_sweep) < 1e-11


@pytest.mark.parametrize("shape, kw", [((12, 9), dict(r_row=2.0, r_col=1.0, r_source=1.0, r_sense=0.5)),
                                       ((9, 12), dict(r_row=1.0, r_col=3.0, r_source=0.0, r_sense=0.0,
                                                      row_drive="both", col_sense="both")),
                                       ((40, 33), dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0))])
def test_transfer_matrix_by_block_cyclic_reduction_equals_the_sequential_sweep(shape, kw):
    """The torch backend computes the transfer matrix by batched block cyclic reduction (the CUDA
    path: about 12 log2 K batched BLAS-3 kernels instead of K sequential block steps)."""
    g = rand_g(*shape)
    a_cr = Crossbar(g, backend="torch", **kw).transfer_matrix()
    a_sweep = Crossbar(g, **kw).transfer_matrix()
    assert rel(a_cr, a_sweep) < 1e-12
    v = torch.rand(3, shape[0], dtype=F64)
    assert rel(v @ a_cr, Crossbar(g, method="direct", **kw).solve(v)) < 1e-11


def test_newton_on_the_torch_path_matches_the_cpu_path():
    g = rand_g(6, 7, lo=1e-5, hi=1e-4)
    kw = dict(topology="1S1R", selector_v_0=0.08, r_row=2.0, r_col=2.0, method="cg")
    v = torch.linspace(0.2, 1.0, 6, dtype=F64).unsqueeze(0)
    a = Crossbar(g, backend="torch", **kw).solve(v)
    b = Crossbar(g, backend="cpu", **kw).solve(v)
    assert rel(a, b) < 1e-10


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (the CPU suite checks the same torch path on CPU)")
@pytest.mark.parametrize("graphs", [True, False])
def test_cuda_solve_agrees_with_cpu_to_1e10(graphs):
    g, r = rand_g(256, 256), dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0)
    v = torch.rand(4, 256, dtype=F64, generator=torch.Generator().manual_seed(1))
    cpu = Crossbar(g, **r).solve(v)
    xb = Crossbar(g.cuda(), cuda_graphs=graphs, method="cg", **r)
    out = xb.solve(v.cuda())
    assert out.device.type == "cuda"
    assert rel(out.cpu(), cpu) < 1e-10
    assert xb._cache["linear"][1].mode == ("cuda-graph" if graphs else "eager")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_transfer_matrix_and_wire_method_agree_with_cpu():
    g = rand_g(64, 48)
    kw = dict(r_row=0.5, r_col=0.5, r_source=1.0, r_sense=1.0)
    a_cpu = Crossbar(g, **kw).transfer_matrix()
    assert rel(Crossbar(g.cuda(), **kw).transfer_matrix().cpu(), a_cpu) < 1e-10
    v = torch.rand(3, 64, dtype=F64)
    tiny = dict(r_row=1e-12, r_col=1e-12, r_source=1.0, r_sense=1.0)
    assert rel(Crossbar(g.cuda(), **tiny).solve(v.cuda()).cpu(), Crossbar(g, **tiny).solve(v)) < 1e-12
