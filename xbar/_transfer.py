"""Exact transfer (port admittance) matrix of a linear two-layer grid by one forward block sweep.

Ports (notation of :mod:`xbar._nodal` and :mod:`xbar._linear`): every P line ``k`` is a port
(its source ``s_p[k]`` behind the end conductances ``p_first``/``p_last``), every Q line ``l``
likewise (``q_first``/``q_last``). The wanted matrix is ::

    M[k, l] = current (A) into Q port l, held at 0 V, when P port k is at 1 V and the others at 0 V.

By reciprocity of the SPD nodal matrix (``A = O J^-1 B``, ``A^T = B^T J^-1 O^T``, with the output
map ``O`` of a port equal to the transpose of its input map ``B``), ``M[k, l]`` is also the current
into P port ``k`` when Q port ``l`` is at 1 V. So a crossbar's transfer matrix is ``M`` when its
rows drive the P lines and ``M^T`` when they drive the Q lines.

Method. With unit P sources ``x0 = T_p^-1 b_p(1)`` (line k only feels source k), the Schur
right-hand side of input k is the single block ``u_k = Pi_q D_k x0_k``. The current into Q port
l is read at a Q end of line l::

    finite end (conductance g_e, block e):   i = g_e x_q(e, l)
    ideal end (Dirichlet block e, x_q = 0):   i = g_q x_q(e', l) + D(e, l) x_p(e, l)

with ``e'`` the neighbouring block and ``x_p(e) = x0_e`` for input e (direct term). Either way
only the first or last *free* block ``f`` of ``z = S^-1 c`` is needed: ``(S^-1)_{f,k} u_k`` for
every k. For ``f`` = last free block, forward block elimination gives it without any backward
sweep (``A_k`` = Schur diagonal blocks, off-diagonal blocks ``-g_q I``)::

    S~_k = A_k - g_q^2 W_{k-1},   W_k = S~_k^-1                       (block Cholesky, potrf + potri)
    Y_k  = g_q Y_{k-1} W_{k-1}  (rows = inputs i < k),   row k of Y = u_k^T
    (S^-1)_{f,k} u_k = (Y W_f)[k]                                     (W symmetric)

The first free block uses the same sweep in reversed block order (the reversed chain has the
same blocks). Work ``O(K L^3 + K^2 L^2)`` BLAS-3, memory ``O(L^2 + K L)``: no ``W_k`` is stored.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits

from ._linear import TridiagLines, _line_diag, _line_rhs
from ._nodal import Grid

Tensor = torch.Tensor


def _free_range(grid: Grid) -> range:
    """Blocks k whose Q nodes are free (not tied to an ideal Q-end source)."""
    k0 = 1 if math.isinf(grid.q_first) else 0
    k1 = grid.K - 1 if math.isinf(grid.q_last) else grid.K
    return range(k0, max(k0, k1))


class _SchurBlocks:
    """Diagonal blocks ``A_k = diag(T_q)_k - D_k Pi T_p,k^-1 Pi D_k`` (L x L) of the Schur system,
    each from one tridiagonal solve of line k with the L right-hand sides ``Pi D_k``."""

    def __init__(self, grid: Grid, d: Tensor, backend: str):
        keep_p = ~grid.dirichlet_p(d.device)
        self.dp = d * keep_p  # Pi_p D: zero rows/columns of A_k's correction at ideal P ends
        self.lines_p = TridiagLines(_line_diag(d, grid.g_wire_p, grid.p_first, grid.p_last).unsqueeze(0),
                                    grid.g_wire_p, ~keep_p, backend)
        self.diag_q = _line_diag(d.T, grid.g_wire_q, grid.q_first, grid.q_last).T  # (K, L)

    def torch_block(self, k: int) -> Tensor:
        """``A_k`` as a fresh tensor."""
        dp = self.dp[k]
        a = self.lines_p.solve_line(k, torch.diag_embed(dp)).mul_(-dp)  # -(T^-1)_{ic} d_c d_i
        a.diagonal().add_(self.diag_q[k])
        return a

    def numpy_block(self, k: int) -> np.ndarray:
        """``A_k`` as a fresh Fortran-ordered array; numpy elementwise work (single-threaded)."""
        dp = self.dp[k].numpy()
        # numpy only: torch's OpenMP pool and OpenBLAS's threads fight for cores when interleaved
        a = self.lines_p.solve_line_numpy(k, np.diag(dp))  # (c, i) = (T^-1)_{ic} d_c
        a *= -dp  # symmetric now, so the C-ordered (c, i) array read as Fortran is A_k itself
        a.flat[::a.shape[0] + 1] += self.diag_q[k].numpy()
        return a.T


def _sweep_torch(blocks: _SchurBlocks, g_q: float, u: Tensor, order: list[int]) -> Tensor:
    """Rows ``(S^-1)_{f,k} u_k`` for k in ``order``, f = ``order[-1]`` (module docstring); torch ops."""
    y = torch.zeros(len(order), u.shape[1], dtype=u.dtype, device=u.device)
    y_next = torch.empty_like(y)
    w = None  # W_{k-1}
    for p, k in enumerate(order):
        a = blocks.torch_block(k)
        if w is not None:
            a.add_(w, alpha=-g_q * g_q)
            torch.mm(y[:p], w, out=y_next[:p]).mul_(g_q)
            y, y_next = y_next, y
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            raise torch.linalg.LinAlgError("Schur block of the transfer sweep is not positive definite")
        w = torch.cholesky_inverse(chol)
        y[p] = u[k]
    return y @ w


def _sweep_lapack(blocks: _SchurBlocks, g_q: float, u: Tensor, order: list[int]) -> Tensor:
    """As :func:`_sweep_torch` with LAPACK ``dpotrf``/``dpotri`` and BLAS ``dsymm`` on CPU
    (lower triangles only). ``yt`` holds the inputs' vectors ``y`` as columns, Fortran order."""
    L = u.shape[1]
    yt, yt_next = np.zeros((L, len(order)), order="F"), np.empty((L, len(order)), order="F")
    gw = None  # g_q W_{k-1}, valid in the lower triangle
    for p, k in enumerate(order):
        a = blocks.numpy_block(k)
        if gw is not None:
            a -= g_q * gw  # A_k - g_q^2 W_{k-1} (lower triangles)
            blas.dsymm(1.0, gw, yt[:, :p], beta=0.0, c=yt_next[:, :p], side=0, lower=1, overwrite_c=1)
            yt, yt_next = yt_next, yt
        chol, info = lapack.dpotrf(a, lower=1, clean=0, overwrite_a=1)
        if info == 0:
            gw, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
        if info != 0:
            raise torch.linalg.LinAlgError("Schur block of the transfer sweep is not positive definite")
        gw *= g_q
        yt[:, p] = u[k].numpy()
    out = blas.dsymm(1.0 / g_q, gw, yt, side=0, lower=1)  # W_f y
    return torch.from_numpy(np.ascontiguousarray(out.T))


def port_transfer(grid: Grid, d_cell: Tensor, *, backend: str = "auto") -> Tensor:
    """Exact port transfer matrix ``M`` (S), ``(K, L)``, of a linear grid (module docstring).

    ``d_cell``: cell conductances (S) in grid layout, ``(K, L)`` or ``(1, K, L)``; both wires
    must be finite (``grid.structured``). ``backend``: tridiagonal line solves, as in
    :class:`xbar._linear.TridiagLines`.
    """
    if not grid.structured:
        raise ValueError("port_transfer needs finite wire conductances")
    d = d_cell.detach().reshape(grid.K, grid.L).to(torch.float64)
    blocks = _SchurBlocks(grid, d, backend)
    dir_p = grid.dirichlet_p(d.device)
    ones = torch.ones(1, grid.K, dtype=d.dtype, device=d.device)
    b_p = _line_rhs(torch.zeros_like(d).unsqueeze(0), ones, grid.g_wire_p, grid.p_first, grid.p_last, dir_p)
    x0 = blocks.lines_p.solve(b_p)[0]  # P voltages for unit P sources: line k feels source k only
    u = d * x0 * ~grid.dirichlet_q(d.device)  # Schur right-hand side of input k: block k only

    free = list(_free_range(grid))
    terms, direct = _end_terms(grid, free)
    m = torch.zeros_like(d)
    for e in direct:  # ideal Q end at block e: cell current of line e into the sense node
        m[e] += d[e] * x0[e]
    sweep = _sweep_lapack if d.device.type == "cpu" and backend != "torch" else _sweep_torch
    # one BLAS thread: the blocks are small, and idle OpenBLAS threads spin-waiting between the
    # many short calls slow the sweep down several-fold on a busy machine
    with threadpool_limits(1, user_api="blas"):
        for f, gamma in terms:  # f is the first or the last free block
            order = free if f == free[-1] else free[::-1]
            m[order] += gamma * sweep(blocks, grid.g_wire_q, u, order)
    return m


def _end_terms(grid: Grid, free: list[int]) -> tuple[list[tuple[int, float]], set[int]]:
    """Read-out of the Q-port current: ``[(free block f, gamma)]`` with ``i += gamma z_f`` and the
    Dirichlet blocks e whose direct cell current ``D_e x0_e`` adds to row e of ``M``."""
    terms, direct = [], set()
    for e, nb, g_end in ((0, 1, grid.q_first), (grid.K - 1, grid.K - 2, grid.q_last)):
        if g_end == 0.0:
            continue
        if math.isinf(g_end):
            direct.add(e)
            if nb in free:
                terms.append((nb, grid.g_wire_q))
        elif e in free:
            terms.append((e, g_end))
    return terms, direct
