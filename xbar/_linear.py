"""Structured exact solvers for a linear two-layer grid with finite wire resistance.

Notation (see :mod:`xbar._nodal`): ``T_p`` is the block-diagonal matrix of the P lines
(each a tridiagonal chain: cells ``D`` + wire ``gp`` + finite end conductances, identity rows
at ideal-source nodes), ``T_q`` likewise for the Q lines, and ``Pi_p``/``Pi_q`` zero the
ideal-source (Dirichlet) nodes. Eliminating the P layer (each P line is independent once
the Q voltages are known) leaves the SPD Schur system on the free Q nodes::

    x_p = T_p^-1 (Pi_p D x_q + b_p)
    S z = c,   S = Pi_q (T_q - D Pi_p T_p^-1 Pi_p D) Pi_q,   c = Pi_q (b_q + D T_p^-1 (b_p + Pi_p D q_dir))
    x_q = z + q_dir

Two ways to solve it, both exact up to floating point:

* ``"block"`` -- ``S`` is block tridiagonal over k (dense L x L diagonal blocks
  ``diag(T_q) - D_k M_k D_k`` with ``M_k = Pi T_p,k^-1 Pi``, off-diagonal blocks ``-gq I``):
  block Cholesky / block Thomas, ``O(K L^3)`` work and ``O(K L^2)`` memory, then
  ``O(K L^2)`` per right-hand side. Direct, so every digit is exact; chosen when L is small
  and there are many right-hand sides.
* ``"cg"`` -- conjugate gradients on ``S`` preconditioned by ``T_q^-1`` (exact line solves
  of the Q wires). ``S`` and the preconditioner cost two batched tridiagonal solves per
  iteration, ``O(K L)`` each; iteration counts grow slowly with IR drop. Stops at a tight
  relative residual and raises :class:`ConvergenceError` otherwise.

Backends (``backend``): ``"cpu"`` -- compiled kernels (:mod:`xbar._cg_numba`: LDL^T sweeps across
lines on contiguous layouts, the whole CG loop in one call); ``"torch"`` -- batched torch
kernels on any device (:mod:`xbar._lines` parallel cyclic reduction, :mod:`xbar._cg_torch`
device-resident CG, CUDA graphs); ``"auto"`` -- ``"cpu"`` for float64 CPU tensors when numba
is installed, else ``"torch"``. ``"lapack"`` is accepted as the former name of ``"cpu"``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import _cg_numba
from ._cg_torch import DeviceCG
from ._errors import ConvergenceError
from ._lines import DenseLines, PCRLines, line_diag, line_off, line_rhs
from ._nodal import Grid

Tensor = torch.Tensor

__all__ = ["ConvergenceError", "StructuredSolver", "resolve_backend"]

BACKENDS = ("auto", "cpu", "torch", "lapack")


def resolve_backend(backend: str, like: Tensor) -> str:
    """``"cpu"`` or ``"torch"`` for tensors like ``like`` (see module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "lapack":
        backend = "cpu"
    cpu_ok = like.device.type == "cpu" and like.dtype == torch.float64 and _cg_numba.available()
    if backend == "auto":
        return "cpu" if cpu_ok else "torch"
    if backend == "cpu" and not cpu_ok:
        raise ValueError("backend 'cpu' needs float64 CPU tensors and numba installed; use backend 'torch'")
    return backend


def dense_lines_pay(d: Tensor, n_rhs: int) -> bool:
    """Explicit line inverses (:class:`xbar._lines.DenseLines`) instead of cyclic reduction: on CUDA,
    for shared lines with at least 16 right-hand sides and lines of at most 512 nodes (a batched
    product over the whole batch then replaces ``2 ceil(log2 n)`` passes over it)."""
    Bd, K, L = d.shape
    return d.device.type == "cuda" and Bd == 1 and n_rhs >= 16 and max(K, L) <= 512


class StructuredSolver:
    """Exact solver for a linear two-layer grid with finite wires (module docstring).

    ``d_cell`` (S) is ``(Bd, K, L)`` with Bd 1 (shared) or the batch size; finite and >= 0.
    """

    def __init__(self, grid: Grid, d_cell: Tensor, *, method: str = "block", cg_rtol: float = 1e-14,
                 cg_max_iter: int = 5000, backend: str = "auto", use_graph: bool = True, n_rhs: int = 1,
                 lines: str = "auto"):
        if not grid.structured:
            raise ValueError("StructuredSolver needs finite wire conductances")
        self.grid, self.method = grid, method
        self.cg_rtol, self.cg_max_iter, self.use_graph = cg_rtol, cg_max_iter, use_graph
        d = d_cell.detach()
        dev = d.device
        self.d = d
        self.backend = resolve_backend(backend, d)
        dir_p, dir_q = grid.dirichlet_p(dev), grid.dirichlet_q(dev)
        # masks only where ideal sources exist (None: every node is free)
        self.dir_p = dir_p if math.isinf(grid.p_first) or math.isinf(grid.p_last) else None
        self.dir_q = dir_q if math.isinf(grid.q_first) or math.isinf(grid.q_last) else None
        self.keep_p, self.keep_q = ~dir_p, ~dir_q
        self.dp = d if self.dir_p is None else d * self.keep_p  # Pi_p D
        self.dq = d if self.dir_q is None else d * self.keep_q  # Pi_q D
        Bd, K, L = d.shape
        self.diag_p = line_diag(d, grid.g_wire_p, grid.p_first, grid.p_last, axis=-1)
        self.diag_q = line_diag(d, grid.g_wire_q, grid.q_first, grid.q_last, axis=-2)
        if self.dir_p is not None:
            self.diag_p.masked_fill_(self.dir_p, 1.0)
        if self.dir_q is not None:
            self.diag_q.masked_fill_(self.dir_q, 1.0)
        self.off_p = line_off(L, grid.g_wire_p, math.isinf(grid.p_first), math.isinf(grid.p_last), d)
        self.off_q = line_off(K, grid.g_wire_q, math.isinf(grid.q_first), math.isinf(grid.q_last), d)
        self.iterations = 0
        self.mode = "eager"
        if self.backend == "cpu":
            self._factor_cpu()  # counts non-finite pivots itself
        else:  # (values checked by the caller, xbar._methods.check_cells: finite, <= 1e100 S)
            if lines == "auto":
                lines = "dense" if dense_lines_pay(d, n_rhs) else "pcr"
            cls = DenseLines if lines == "dense" else PCRLines
            self.lines_p = cls(self.diag_p, self.off_p, axis=-1)
            self.lines_q = cls(self.diag_q, self.off_q, axis=-2)
            self._work: dict[int, tuple] = {}
        if method == "block":
            self._block_factor()

    # -------------------------------------------------------------- line solves
    def _factor_cpu(self) -> None:
        """LDL^T factors of the P lines (along l) and the Q lines (along k), both in (Bd, K, L)."""
        def factor(kernel, diag: Tensor, off: Tensor):
            d = np.ascontiguousarray(diag.numpy())
            inv, mult = np.empty_like(d), np.empty_like(d)
            if kernel(d, off.numpy(), inv, mult):
                raise ValueError("line matrix not positive definite: cell conductances must be finite and >= 0 S")
            return inv, mult

        self._p = factor(_cg_numba.factor_rows, self.diag_p, self.off_p)
        self._q = factor(_cg_numba.factor_cols, self.diag_q, self.off_q)
        self._dp = np.ascontiguousarray(self.dp.numpy())
        self._dq = np.ascontiguousarray(self.dq.numpy())
        self._diag_q = np.ascontiguousarray(self.diag_q.numpy())

    def solve_p(self, rhs: Tensor) -> Tensor:
        """``T_p^-1 rhs`` for ``rhs`` ``(B, K, L)`` (a new tensor)."""
        if self.backend == "cpu":
            x = rhs.detach().numpy().copy()
            _cg_numba.solve_rows(*self._p, x)
            return torch.from_numpy(x)
        return self.lines_p.solve(rhs)

    def solve_q(self, rhs: Tensor) -> Tensor:
        """``T_q^-1 rhs`` for ``rhs`` ``(B, K, L)`` (a new tensor)."""
        if self.backend == "cpu":
            x = rhs.detach().numpy().copy()
            _cg_numba.solve_cols(*self._q, x)
            return torch.from_numpy(x)
        return self.lines_q.solve(rhs)

    # -------------------------------------------------------------- solve
    def solve(self, r_p: Tensor, r_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
        """Node voltages (V) for injections ``r`` (A, ``(B, K, L)``) and sources ``s`` (V)."""
        g = self.grid
        b_p = line_rhs(r_p, s_p, g.g_wire_p, g.p_first, g.p_last, self.dir_p, axis=-1)
        b_q = line_rhs(r_q, s_q, g.g_wire_q, g.q_first, g.q_last, self.dir_q, axis=-2)
        if self.dir_q is None:
            u = self.solve_p(b_p)
            c = torch.addcmul(b_q, self.d, u)
        else:
            q_dir = b_q * self.dir_q
            u = self.solve_p(torch.addcmul(b_p, self.dp, q_dir))
            c = torch.addcmul(b_q, self.d, u).mul_(self.keep_q)
        z = self._block_solve(c) if self.method == "block" else self._cg(c)
        x_q = z if self.dir_q is None else z.add_(q_dir)
        x_p = self.solve_p(torch.addcmul(b_p, self.dp, x_q))
        return x_p, x_q

    # -------------------------------------------------------------- CG
    def _cg(self, c: Tensor) -> Tensor:
        if self.backend == "cpu":
            c_np = np.ascontiguousarray(c.detach().numpy())
            z = np.empty_like(c_np)
            its, worst = _cg_numba.schur_cg(c_np, *self._p, *self._q, self._diag_q, self.off_q.numpy(),
                                            self._dq, self._dp, float(self.cg_rtol), int(self.cg_max_iter), z)
            self.iterations = int(its)
            if not worst <= self.cg_rtol:
                raise ConvergenceError("conjugate-gradient crossbar solve", float(worst), int(its), self.cg_rtol)
            return torch.from_numpy(z)
        self._buffers(c.shape[0], c)
        cg = DeviceCG(self._schur_torch, self._precond_torch, tuple(c.shape), c, rtol=self.cg_rtol,
                      max_iter=self.cg_max_iter, what="conjugate-gradient crossbar solve", use_graph=self.use_graph)
        z = cg.solve(c.contiguous())
        self.iterations, self.mode = cg.iterations, cg.mode
        return z

    def _buffers(self, batch: int, like: Tensor):
        if batch not in self._work:
            shape = (batch,) + tuple(self.d.shape[1:])
            self._work[batch] = (torch.empty(shape, dtype=like.dtype, device=like.device),
                                 torch.empty(shape, dtype=like.dtype, device=like.device),
                                 self.lines_p.buffers(batch, like), self.lines_q.buffers(batch, like))
        return self._work[batch]

    def _schur_torch(self, p: Tensor, out: Tensor) -> None:
        """``out = S p`` on the device: ``2 ceil(log2 L) + 7`` kernels, no allocation."""
        t, w, work_p, _ = self._work[p.shape[0]]
        torch.mul(self.dp, p, out=t)
        self.lines_p.solve(t, out=w, work=work_p)
        torch.mul(self.diag_q, p, out=out)
        K = p.shape[1]
        if K > 1:
            off = self.off_q.view(1, -1, 1)
            out.narrow(1, 1, K - 1).addcmul_(off, p.narrow(1, 0, K - 1))
            out.narrow(1, 0, K - 1).addcmul_(off, p.narrow(1, 1, K - 1))
        out.addcmul_(self.dq, w, value=-1.0)

    def _precond_torch(self, r: Tensor, out: Tensor) -> None:
        self.lines_q.solve(r, out=out, work=self._work[r.shape[0]][3])

    def ops_per_iteration(self) -> int:
        """Kernels of one eager torch CG iteration (operator + preconditioner + recurrences)."""
        from ._cg_torch import RECURRENCE_OPS
        return self.lines_p.ops_per_solve() + 5 + self.lines_q.ops_per_solve() + RECURRENCE_OPS

    # -------------------------------------------------------------- block Cholesky
    def _free_blocks(self) -> range:
        g = self.grid
        k0 = 1 if math.isinf(g.q_first) else 0
        k1 = g.K - 1 if math.isinf(g.q_last) else g.K
        return range(k0, max(k0, k1))

    def _block_factor(self) -> None:
        Bd, K, L = self.d.shape
        eye = torch.eye(L, dtype=self.d.dtype, device=self.d.device)
        cols = []
        for b in range(Bd):  # column c of T_p^-1 Pi_p on every line k: (Lc, K, L)
            rhs = (eye.view(L, 1, L) * self.keep_p).contiguous()
            cols.append(self._solve_p_one(b, rhs))
        cols = torch.stack(cols, 0)  # (Bd, Lc, K, L)
        g2 = self.grid.g_wire_q ** 2
        self._w = {}
        prev = None
        for k in self._free_blocks():
            d_k = self.dp[:, k]  # (Bd, L) = Pi_p D on block k
            m_k = cols[:, :, k].transpose(1, 2)  # (Bd, L, Lc)
            s = torch.diag_embed(self.diag_q[:, k]) - d_k.unsqueeze(-1) * m_k * d_k.unsqueeze(-2)
            if prev is not None:
                s = s - g2 * prev
            chol, info = torch.linalg.cholesky_ex(s)
            if bool((info != 0).any()):
                raise ValueError("Schur block not positive definite: the cell conductances span too many orders "
                                 "of magnitude for the block method; use method='cg' or 'auto'")
            prev = torch.cholesky_inverse(chol)
            self._w[k] = prev

    def _solve_p_one(self, b: int, rhs: Tensor) -> Tensor:
        """``T_p^-1 rhs`` with the factors of batch element ``b`` for ``rhs`` ``(C, K, L)``."""
        if self.backend == "cpu":
            x = rhs.detach().numpy().copy()
            inv, mult = self._p
            _cg_numba.solve_rows(inv[b:b + 1], mult[b:b + 1], x)
            return torch.from_numpy(x)
        if self.d.shape[0] == 1:
            return self.lines_p.solve(rhs)
        return PCRLines(self.diag_p[b:b + 1], self.off_p, axis=-1).solve(rhs)

    def _block_solve(self, c: Tensor) -> Tensor:
        """Block Thomas sweep on S z = c; c ``(B, K, L)``."""
        gq = self.grid.g_wire_q
        blocks = list(self._free_blocks())
        z = torch.zeros_like(c)
        if not blocks:
            return z

        def wmul(k, v):  # W_k v for v (B, L)
            w = self._w[k]
            return v @ w[0] if w.shape[0] == 1 else torch.einsum("bij,bj->bi", w, v)

        y = {}
        prev = None
        for k in blocks:
            y[k] = c[:, k] if prev is None else c[:, k] + gq * wmul(k - 1, prev)
            prev = y[k]
        nxt = None
        for k in reversed(blocks):
            v = y[k] if nxt is None else y[k] + gq * nxt
            nxt = wmul(k, v)
            z[:, k] = nxt
        return z
