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
  ``O(K L^2)`` per right-hand side. Direct, so every digit is exact; chosen when L is small.
* ``"cg"`` -- conjugate gradients on ``S`` preconditioned by ``T_q^-1`` (exact line solves
  of the Q wires). ``S`` and the preconditioner cost two batched tridiagonal solves per
  iteration, ``O(K L)`` each; iteration counts grow slowly with IR drop. Stops at a tight
  relative residual and raises :class:`ConvergenceError` otherwise.

Tridiagonal solves use LAPACK ``dpttrf``/``dpttrs`` (SPD, no pivoting) on CPU and a
vectorised torch LDL^T sweep elsewhere (CUDA), so GPU tensors never leave the GPU.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import lapack

from ._nodal import Grid

Tensor = torch.Tensor


class ConvergenceError(RuntimeError):
    """An iterative solve (CG or Newton) did not reach its tolerance within its budget."""

    def __init__(self, what: str, residual: float, iterations: int, tolerance: float):
        self.residual = residual
        self.iterations = iterations
        self.tolerance = tolerance
        super().__init__(f"{what} did not converge: residual {residual:.3e} after {iterations} "
                         f"iterations (tolerance {tolerance:.3e})")


# ------------------------------------------------------------------------ tridiagonal lines
class TridiagLines:
    """Independent SPD tridiagonal systems along the last dim of ``diag`` ``(Bd, N, L)``.

    Off-diagonal entries are ``-g_wire`` except next to a Dirichlet node (identity row).
    """

    def __init__(self, diag: Tensor, g_wire: float, dirichlet: Tensor, backend: str = "auto"):
        Bd, N, L = diag.shape
        self.shape = (Bd, N, L)
        self.g_wire = g_wire
        keep = ~dirichlet
        self.diag = torch.where(dirichlet, torch.ones_like(diag), diag)
        off = torch.full((N, max(L - 1, 0)), -g_wire, dtype=diag.dtype, device=diag.device)
        off = off * (keep[:, 1:] & keep[:, :-1])
        self.off = off.expand(Bd, N, max(L - 1, 0))
        if backend == "auto":
            cpu64 = diag.device.type == "cpu" and diag.dtype == torch.float64
            backend = "lapack" if cpu64 and Bd * N * L > 1 else "torch"
        self.backend = backend
        if backend == "lapack":
            d = self.diag.reshape(-1).numpy().copy()
            e = torch.nn.functional.pad(self.off, (0, 1)).reshape(-1)[:-1].numpy().copy()
            d, e, info = lapack.dpttrf(d, e)
            if info != 0:
                raise np.linalg.LinAlgError(f"tridiagonal line matrix not positive definite (info={info})")
            self._lapack = (d, e)
        else:
            self._ldl = _ldl_factor(self.diag, self.off)

    def matvec(self, x: Tensor) -> Tensor:
        """``T x`` for x ``(B, N, L)``."""
        y = self.diag * x
        if x.shape[-1] > 1:
            y[..., :-1] += self.off * x[..., 1:]
            y[..., 1:] += self.off * x[..., :-1]
        return y

    def solve(self, rhs: Tensor) -> Tensor:
        """``T^-1 rhs`` for rhs ``(C, Bd, N, L)`` (C right-hand sides per system) or ``(B, N, L)``
        with B a multiple handled as: Bd == 1 -> B columns, Bd == B -> one column each."""
        squeeze = rhs.dim() == 3
        if squeeze:
            rhs = rhs.unsqueeze(1) if self.shape[0] == 1 else rhs.unsqueeze(0)
        if self.backend == "lapack":
            C = rhs.shape[0]
            b = rhs.detach().reshape(C, -1).numpy().T  # (n, C), Fortran order, no copy
            x, info = lapack.dpttrs(*self._lapack, b)
            out = torch.from_numpy(np.ascontiguousarray(x.T)).reshape(rhs.shape)
        else:
            out = _ldl_solve(self._ldl, rhs)
        return out.squeeze(1 if self.shape[0] == 1 else 0) if squeeze else out

    def solve_line(self, j: int, rhs: Tensor) -> Tensor:
        """``T_j^-1 rhs`` for the single line j of a shared set (Bd == 1); rhs ``(C, L)`` holds
        C right-hand sides and is overwritten on the LAPACK backend."""
        L = self.shape[2]
        if self.backend == "lapack":
            d, e = self._lapack
            if L == 1:  # f2py rejects the empty off-diagonal
                return rhs.div_(float(d[j]))
            x, info = lapack.dpttrs(d[j * L:(j + 1) * L], e[j * L:j * L + L - 1], rhs.numpy().T, overwrite_b=1)
            return torch.from_numpy(x.T)
        piv, mult = self._ldl
        return _ldl_solve((piv[:, j], mult[:, j]), rhs.unsqueeze(1))[:, 0]

    def solve_line_numpy(self, j: int, rhs: np.ndarray) -> np.ndarray:
        """As :meth:`solve_line` for a C-ordered numpy ``rhs`` on the LAPACK backend (overwritten)."""
        if self.backend != "lapack":
            return self.solve_line(j, torch.from_numpy(rhs)).numpy()
        L = self.shape[2]
        d, e = self._lapack
        if L == 1:
            return rhs / float(d[j])
        x, info = lapack.dpttrs(d[j * L:(j + 1) * L], e[j * L:j * L + L - 1], rhs.T, overwrite_b=1)
        return x.T


def _ldl_factor(d: Tensor, e: Tensor):
    """LDL^T of SPD tridiagonals along the last dim (torch, any device)."""
    L = d.shape[-1]
    piv = [d[..., 0]]
    mult = []
    for i in range(L - 1):
        m = e[..., i] / piv[i]
        mult.append(m)
        piv.append(d[..., i + 1] - m * e[..., i])
    return torch.stack(piv, -1), (torch.stack(mult, -1) if mult else e)


def _ldl_solve(factors, rhs: Tensor) -> Tensor:
    piv, mult = factors
    L = rhs.shape[-1]
    y = [rhs[..., 0]]
    for i in range(1, L):
        y.append(rhs[..., i] - mult[..., i - 1] * y[i - 1])
    x = [None] * L
    x[L - 1] = y[L - 1] / piv[..., L - 1]
    for i in range(L - 2, -1, -1):
        x[i] = y[i] / piv[..., i] - mult[..., i] * x[i + 1]
    return torch.stack(x, -1)


# ----------------------------------------------------------------------- the Schur system
def _neighbours(n: int, like: Tensor) -> Tensor:
    """Number of wire neighbours of each node of a chain of length n."""
    c = torch.full((n,), 2.0, dtype=like.dtype, device=like.device)
    c[0] -= 1
    c[-1] -= 1
    return c.clamp(min=0)


def _line_diag(d_cell: Tensor, g_wire: float, g_first: float, g_last: float) -> Tensor:
    """Diagonal of the line matrices for lines along the last dim of ``d_cell``."""
    diag = d_cell + g_wire * _neighbours(d_cell.shape[-1], d_cell)
    diag = diag.clone()
    if 0.0 < g_first < math.inf:
        diag[..., 0] += g_first
    if 0.0 < g_last < math.inf:
        diag[..., -1] += g_last
    return diag


def _line_rhs(r: Tensor, s: Tensor, g_wire: float, g_first: float, g_last: float, dirichlet: Tensor) -> Tensor:
    """Right-hand side of the line systems: injections + source terms; Dirichlet rows = source."""
    b = r.clone()
    L = r.shape[-1]
    if 0.0 < g_first < math.inf:
        b[..., 0] += g_first * s
    if 0.0 < g_last < math.inf:
        b[..., -1] += g_last * s
    if math.isinf(g_first) and L > 1:
        b[..., 1] += g_wire * s
    if math.isinf(g_last) and L > 1:
        b[..., -2] += g_wire * s
    sv = s.unsqueeze(-1).expand_as(b)
    return torch.where(dirichlet, sv, b)


class StructuredSolver:
    """Exact solver for a linear two-layer grid with finite wires (module docstring).

    ``d_cell`` (S) is ``(Bd, K, L)`` with Bd 1 (shared) or the batch size.
    """

    def __init__(self, grid: Grid, d_cell: Tensor, *, method: str = "block", cg_rtol: float = 1e-14,
                 cg_max_iter: int = 5000, backend: str = "auto"):
        if not grid.structured:
            raise ValueError("StructuredSolver needs finite wire conductances")
        self.grid, self.method = grid, method
        self.cg_rtol, self.cg_max_iter = cg_rtol, cg_max_iter
        dev = d_cell.device
        self.d = d_cell.detach()
        self.keep_p = ~grid.dirichlet_p(dev)
        self.keep_q = ~grid.dirichlet_q(dev)
        self.dp = self.d * self.keep_p  # Pi_p D
        self.lines_p = TridiagLines(_line_diag(self.d, grid.g_wire_p, grid.p_first, grid.p_last),
                                    grid.g_wire_p, ~self.keep_p, backend)
        diag_q = _line_diag(self.d.transpose(-1, -2), grid.g_wire_q, grid.q_first, grid.q_last)
        self.lines_q = TridiagLines(diag_q, grid.g_wire_q, ~self.keep_q.T, backend)
        self.diag_q = diag_q.transpose(-1, -2)  # (Bd, K, L)
        self.iterations = 0
        if method == "block":
            self._block_factor()

    # -------------------------------------------------------------- operators
    def _schur(self, z: Tensor) -> Tensor:
        """``S z`` for z ``(B, K, L)`` zero at Dirichlet Q nodes."""
        tq = self.lines_q.matvec(z.transpose(-1, -2)).transpose(-1, -2)
        return (tq - self.d * self.lines_p.solve(self.dp * z)) * self.keep_q

    def _precond(self, r: Tensor) -> Tensor:
        return self.lines_q.solve((r * self.keep_q).transpose(-1, -2)).transpose(-1, -2) * self.keep_q

    def solve(self, r_p: Tensor, r_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
        """Node voltages (V) for injections ``r`` (A, ``(B, K, L)``) and sources ``s`` (V)."""
        g = self.grid
        b_p = _line_rhs(r_p, s_p, g.g_wire_p, g.p_first, g.p_last, ~self.keep_p)
        b_q = _line_rhs(r_q.transpose(-1, -2), s_q, g.g_wire_q, g.q_first, g.q_last,
                        ~self.keep_q.T).transpose(-1, -2)
        q_dir = b_q * ~self.keep_q
        c = (b_q + self.d * self.lines_p.solve(b_p + self.dp * q_dir)) * self.keep_q
        z = self._block_solve(c) if self.method == "block" else self._cg(c)
        x_q = z + q_dir
        x_p = self.lines_p.solve(self.dp * x_q + b_p)
        return x_p, x_q

    # -------------------------------------------------------------- CG
    def _cg(self, c: Tensor) -> Tensor:
        B = c.shape[0]
        norm_c = c.reshape(B, -1).norm(dim=1)
        tol = self.cg_rtol * norm_c
        z = torch.zeros_like(c)
        r = c.clone()
        y = self._precond(r)
        p = y.clone()
        ry = (r * y).reshape(B, -1).sum(1)
        bcast = (B, 1, 1)
        for it in range(self.cg_max_iter + 1):
            res = r.reshape(B, -1).norm(dim=1)
            if bool((res <= tol).all()):
                self.iterations = it
                return z
            if it == self.cg_max_iter:
                break
            sp = self._schur(p)
            alpha = ry / (p * sp).reshape(B, -1).sum(1)
            alpha = torch.where(res <= tol, torch.zeros_like(alpha), alpha)
            z = z + alpha.view(bcast) * p
            r = r - alpha.view(bcast) * sp
            y = self._precond(r)
            ry_new = (r * y).reshape(B, -1).sum(1)
            beta = ry_new / torch.where(ry == 0, torch.ones_like(ry), ry)
            p = y + beta.view(bcast) * p
            ry = ry_new
        worst = float((res / torch.where(norm_c == 0, torch.ones_like(norm_c), norm_c)).max())
        raise ConvergenceError("conjugate-gradient crossbar solve", worst, self.cg_max_iter, self.cg_rtol)

    # -------------------------------------------------------------- block Cholesky
    def _free_blocks(self) -> range:
        g = self.grid
        k0 = 1 if math.isinf(g.q_first) else 0
        k1 = g.K - 1 if math.isinf(g.q_last) else g.K
        return range(k0, max(k0, k1))

    def _block_factor(self) -> None:
        Bd, K, L = self.d.shape
        eye = torch.eye(L, dtype=self.d.dtype, device=self.d.device)
        rhs = (eye.view(L, 1, 1, L) * self.keep_p).expand(L, Bd, K, L).contiguous()
        cols = self.lines_p.solve(rhs)  # (Lc, Bd, K, L): column c of T_p^-1 Pi_p, line by line
        g2 = self.grid.g_wire_q ** 2
        self._w = {}
        prev = None
        for k in self._free_blocks():
            d_k = self.dp[:, k]  # (Bd, L) = Pi_p D on block k
            m_k = cols[:, :, k].permute(1, 2, 0)  # (Bd, L, Lc)
            s = torch.diag_embed(self.diag_q[:, k]) - d_k.unsqueeze(-1) * m_k * d_k.unsqueeze(-2)
            if prev is not None:
                s = s - g2 * prev
            chol, info = torch.linalg.cholesky_ex(s)
            if bool((info != 0).any()):
                raise np.linalg.LinAlgError("Schur block not positive definite")
            prev = torch.cholesky_inverse(chol)
            self._w[k] = prev

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
