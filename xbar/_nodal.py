"""Two-layer resistive grid: the nodal problem behind every crossbar solve.

The crossbar is mapped onto an abstract *two-layer grid* so that the solvers never care
which physical wire is which (the mapping may be transposed to put the shorter dimension
along the dense blocks of the block solver)::

    layer P  (K lines along l)      P(k,0) --gp-- P(k,1) --gp-- ... --gp-- P(k,L-1)
      ends: p_first at l=0,           |             |                        |
            p_last  at l=L-1         D(k,0)        D(k,1)                  D(k,L-1)   (cells)
                                      |             |                        |
    layer Q  (L lines along k)      Q(k,0)        Q(k,1)                  Q(k,L-1)
      ends: q_first at k=0,         Q(k,l) --gq-- Q(k+1,l)   (Q lines run across k)
            q_last  at k=K-1

Each P line k has one source voltage ``s_p[k]`` (V) applied through the end conductances
``p_first``/``p_last`` (S; ``0`` = end not connected, ``inf`` = ideal source, i.e. the end
node *is* the source node), and each Q line l one source ``s_q[l]`` likewise. A wire
conductance ``inf`` (zero wire resistance) merges the whole line into one node.

Kirchhoff's current law, with ``i_cell = f(x_p - x_q)`` the current from P to Q::

    F_p(k,l) = i_cell(k,l) + gp*(2x_p(k,l) - x_p(k,l-1) - x_p(k,l+1)) + g_end*(x_p - s_p) = r_p(k,l)
    F_q(k,l) = -i_cell(k,l) + gq*(2x_q(k,l) - x_q(k-1,l) - x_q(k+1,l)) + g_end*(x_q - s_q) = r_q(k,l)

(neighbours only where they exist, end terms only at the ends). Dirichlet nodes (ideal
sources) carry no equation; merged lines carry one equation, the sum over the line.
All tensors use the *full layout* ``(batch, K, L)``; merged lines hold equal values and
Dirichlet nodes hold their source voltage.

This module holds the geometry, the residual (torch, differentiable) and the reference
direct solver (scipy sparse LU of the assembled matrix, any resistance including 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class Grid:
    """Geometry and boundary conductances (S) of a two-layer grid (see module docstring)."""

    K: int
    L: int
    g_wire_p: float
    g_wire_q: float
    p_first: float
    p_last: float
    q_first: float
    q_last: float

    @property
    def merged_p(self) -> bool:
        return math.isinf(self.g_wire_p)

    @property
    def merged_q(self) -> bool:
        return math.isinf(self.g_wire_q)

    @property
    def structured(self) -> bool:
        """True when both wires have finite conductance (the structured solvers apply)."""
        return not (self.merged_p or self.merged_q)

    def dirichlet_p(self, device=None) -> Tensor:
        """(K, L) bool: P nodes tied to an ideal source."""
        return _dirichlet_mask(self.K, self.L, self.merged_p, self.p_first, self.p_last, device)

    def dirichlet_q(self, device=None) -> Tensor:
        """(K, L) bool: Q nodes tied to an ideal source (Q lines run along k)."""
        return _dirichlet_mask(self.L, self.K, self.merged_q, self.q_first, self.q_last, device).T


def _dirichlet_mask(n_lines: int, length: int, merged: bool, g_first: float, g_last: float, device) -> Tensor:
    mask = torch.zeros(n_lines, length, dtype=torch.bool, device=device)
    if merged:
        if math.isinf(g_first) or math.isinf(g_last):
            mask[:] = True
        return mask
    if math.isinf(g_first):
        mask[:, 0] = True
    if math.isinf(g_last):
        mask[:, -1] = True
    return mask


# ---------------------------------------------------------------------------------- residual
def pin(grid: Grid, x_p: Tensor, x_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
    """Overwrite Dirichlet nodes with their source voltage (differentiable w.r.t. ``s``)."""
    if not any(math.isinf(e) for e in (grid.p_first, grid.p_last, grid.q_first, grid.q_last)):
        return x_p, x_q  # no ideal source: no node is pinned
    dp = grid.dirichlet_p(x_p.device)
    dq = grid.dirichlet_q(x_q.device)
    x_p = torch.where(dp, s_p.unsqueeze(-1).expand_as(x_p), x_p)
    x_q = torch.where(dq, s_q.unsqueeze(-2).expand_as(x_q), x_q)
    return x_p, x_q


def _wire_current(x: Tensor, g_wire: float) -> Tensor:
    """Current leaving each node into its wire neighbours along the last dim (A)."""
    out = torch.zeros_like(x)
    if x.shape[-1] > 1:
        seg = g_wire * (x[..., 1:] - x[..., :-1])
        out = out + torch.nn.functional.pad(seg, (0, 1)) - torch.nn.functional.pad(seg, (1, 0))
    return -out


def _end_current(x: Tensor, s: Tensor, g_first: float, g_last: float) -> Tensor:
    """Current leaving each node into finite end conductances (A); ideal ends excluded."""
    out = torch.zeros_like(x)
    if 0.0 < g_first < math.inf:
        out[..., 0] = out[..., 0] + g_first * (x[..., 0] - s)
    if 0.0 < g_last < math.inf:
        out[..., -1] = out[..., -1] + g_last * (x[..., -1] - s)
    return out


def _layer_residual(x: Tensor, s: Tensor, i_out: Tensor, g_wire: float, g_first: float,
                    g_last: float, merged: bool, dirichlet: Tensor) -> Tensor:
    """KCL residual of one layer with lines along the last dim: current leaving each node."""
    f = i_out + _end_current(x, s, g_first, g_last)
    if merged:
        f = f.sum(-1, keepdim=True).expand_as(f) / f.shape[-1]
    else:
        f = f + _wire_current(x, g_wire)
    return torch.where(dirichlet, torch.zeros_like(f), f)


def residual(grid: Grid, x_p: Tensor, x_q: Tensor, i_cell: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
    """KCL residuals ``(F_p, F_q)`` (A), full layout, zero at Dirichlet nodes.

    For a merged line the line's single equation (the sum over the line) is spread evenly
    over its nodes, so that ``sum_l F`` is the merged node's residual.
    """
    f_p = _layer_residual(x_p, s_p, i_cell, grid.g_wire_p, grid.p_first, grid.p_last,
                          grid.merged_p, grid.dirichlet_p(x_p.device))
    f_q = _layer_residual(x_q.transpose(-1, -2), s_q, -i_cell.transpose(-1, -2), grid.g_wire_q,
                          grid.q_first, grid.q_last, grid.merged_q, grid.dirichlet_q(x_q.device).T)
    return f_p, f_q.transpose(-1, -2)


def _layer_magnitude(x: Tensor, s: Tensor, cell: Tensor, g_wire: float, g_first: float, g_last: float,
                     merged: bool, dirichlet: Tensor) -> Tensor:
    """Sum of the magnitudes of the terms of each node's KCL equation (A), lines along the last dim:
    ``cell + sum_nb g_wire (|x| + |x_nb|) + g_end (|x| + |s|)`` (the scale of its rounding error)."""
    ax, sa = x.abs(), s.abs()
    m = cell.clone()
    if 0.0 < g_first < math.inf:
        m[..., 0] += g_first * (ax[..., 0] + sa)
    if 0.0 < g_last < math.inf:
        m[..., -1] += g_last * (ax[..., -1] + sa)
    if merged:
        m = m.sum(-1, keepdim=True).expand_as(m) / m.shape[-1]
    elif x.shape[-1] > 1:
        seg = g_wire * (ax[..., 1:] + ax[..., :-1])
        m = m + torch.nn.functional.pad(seg, (0, 1)) + torch.nn.functional.pad(seg, (1, 0))
    return torch.where(dirichlet, torch.zeros_like(m), m)


def kcl_backward_error(grid: Grid, x_p: Tensor, x_q: Tensor, i_cell: Tensor, slope: Tensor, s_p: Tensor,
                       s_q: Tensor) -> Tensor:
    """Relative KCL residual per batch element ``(B,)``: the largest ``|F_i| / m_i`` over the free
    nodes, with ``m_i`` the sum of the magnitudes of node i's current terms (its cell term
    ``|i_cell| + slope (|x_p| + |x_q|)``, wire and end terms). This is the componentwise backward
    error of the nodal equations (Oettli & Prager): a few ``eps`` for a solution that is exact to
    rounding, whatever the conductances span, and of order 1 for a wrong one."""
    f_p, f_q = residual(grid, x_p, x_q, i_cell, s_p, s_q)
    cell = i_cell.abs() + slope * (x_p.abs() + x_q.abs())
    m_p = _layer_magnitude(x_p, s_p, cell, grid.g_wire_p, grid.p_first, grid.p_last, grid.merged_p,
                           grid.dirichlet_p(x_p.device))
    m_q = _layer_magnitude(x_q.transpose(-1, -2), s_q, cell.transpose(-1, -2), grid.g_wire_q, grid.q_first,
                           grid.q_last, grid.merged_q, grid.dirichlet_q(x_q.device).T).transpose(-1, -2)

    def ratio(f, m):
        r = torch.where(m > 0, f.abs() / m.clamp_min(1e-300), torch.where(f == 0, 0.0, math.inf))
        return r.flatten(1).amax(1)
    return torch.maximum(ratio(f_p, m_p), ratio(f_q, m_q))


# ---------------------------------------------------------------------------- direct solver
class DirectSolver:
    """Sparse LU (SuperLU) of the assembled nodal matrix; handles every resistance incl. 0.

    ``d_cell`` is the cell conductance (S), ``(1, K, L)`` shared or ``(batch, K, L)``; the
    factorisations are kept for reuse. Works on CPU; CUDA tensors are moved to the CPU and back.
    """

    def __init__(self, grid: Grid, d_cell: Tensor):
        self.grid = grid
        self.device = d_cell.device
        d = d_cell.detach().to("cpu", torch.float64).numpy()
        self._d = d
        self._build_index()
        self._factors = [self._factor(d[b]) for b in range(d.shape[0])]

    def _build_index(self) -> None:
        g = self.grid
        K, L = g.K, g.L
        dp = g.dirichlet_p().numpy()
        dq = g.dirichlet_q().numpy()
        pid = np.repeat(np.arange(K)[:, None], L, 1) if g.merged_p else np.arange(K * L).reshape(K, L)
        n_p = K if g.merged_p else K * L
        qid = n_p + (np.repeat(np.arange(L)[None, :], K, 0) if g.merged_q else np.arange(K * L).reshape(K, L))
        n_all = n_p + (L if g.merged_q else K * L)
        free = np.ones(n_all, dtype=bool)
        free[pid[dp]] = False
        free[qid[dq]] = False
        newid = -np.ones(n_all, dtype=np.int64)
        newid[free] = np.arange(int(free.sum()))
        self.pid, self.qid = newid[pid], newid[qid]
        self.n = int(free.sum())

    def _factor(self, d: np.ndarray):
        g = self.grid
        K, L = g.K, g.L
        n = self.n
        rows, cols, vals = [], [], []

        def stamp(ia, ib, cond):
            ia, ib, cond = ia.ravel(), ib.ravel(), np.broadcast_to(cond, ia.shape).ravel()
            fa, fb = ia >= 0, ib >= 0
            rows.extend([ia[fa], ib[fb]]); cols.extend([ia[fa], ib[fb]]); vals.extend([cond[fa], cond[fb]])
            both = fa & fb
            rows.extend([ia[both], ib[both]]); cols.extend([ib[both], ia[both]])
            vals.extend([-cond[both], -cond[both]])

        stamp(self.pid, self.qid, d)
        if not g.merged_p and L > 1:
            stamp(self.pid[:, :-1], self.pid[:, 1:], np.full((K, L - 1), g.g_wire_p))
        if not g.merged_q and K > 1:
            stamp(self.qid[:-1, :], self.qid[1:, :], np.full((K - 1, L), g.g_wire_q))
        for cond, ids in self._end_nodes():
            if 0.0 < cond < math.inf:
                ids = ids[ids >= 0]
                rows.append(ids); cols.append(ids); vals.append(np.full(ids.size, cond))
        if n == 0:
            return None
        mat = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        return spla.splu(mat, permc_spec="MMD_AT_PLUS_A")

    def _end_nodes(self):
        g = self.grid
        return [(g.p_first, self.pid[:, 0]), (g.p_last, self.pid[:, -1]),
                (g.q_first, self.qid[0, :]), (g.q_last, self.qid[-1, :])]

    def _rhs(self, d: np.ndarray, r_p, r_q, s_p, s_q) -> np.ndarray:
        """Right-hand side (n,) for one batch element: injections + fixed-node couplings."""
        g = self.grid
        K, L = g.K, g.L
        rhs = np.zeros(self.n)
        x_p = np.repeat(s_p[:, None], L, 1)  # voltages of fixed nodes (only read where fixed)
        x_q = np.repeat(s_q[None, :], K, 0)

        def couple(ia, ib, cond, vb):
            cond, vb = np.broadcast_to(cond, ia.shape).ravel(), np.broadcast_to(vb, ia.shape).ravel()
            ia, ib = ia.ravel(), ib.ravel()
            m = (ia >= 0) & (ib < 0)
            np.add.at(rhs, ia[m], cond[m] * vb[m])

        np.add.at(rhs, self.pid[self.pid >= 0], r_p[self.pid >= 0])
        np.add.at(rhs, self.qid[self.qid >= 0], r_q[self.qid >= 0])
        couple(self.pid, self.qid, d, x_q)
        couple(self.qid, self.pid, d, x_p)
        if not g.merged_p and L > 1:
            gw = np.full((K, L - 1), g.g_wire_p)
            couple(self.pid[:, :-1], self.pid[:, 1:], gw, x_p[:, 1:])
            couple(self.pid[:, 1:], self.pid[:, :-1], gw, x_p[:, :-1])
        if not g.merged_q and K > 1:
            gw = np.full((K - 1, L), g.g_wire_q)
            couple(self.qid[:-1, :], self.qid[1:, :], gw, x_q[1:, :])
            couple(self.qid[1:, :], self.qid[:-1, :], gw, x_q[:-1, :])
        for (cond, ids), s in zip(self._end_nodes(), (s_p, s_p, s_q, s_q)):
            if 0.0 < cond < math.inf:
                m = ids >= 0
                np.add.at(rhs, ids[m], cond * s[m])
        return rhs

    def solve(self, r_p: Tensor, r_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
        """Node voltages ``(x_p, x_q)`` (V) for injections ``r`` (A, full layout) and sources ``s`` (V)."""
        dev = r_p.device
        cpu = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        d, rp, rq, sp_, sq = self._d, cpu(r_p), cpu(r_q), cpu(s_p), cpu(s_q)
        B = rp.shape[0]
        out_p = np.empty_like(rp)
        out_q = np.empty_like(rq)
        for b in range(B):
            db = d[b if d.shape[0] > 1 else 0]
            lu = self._factors[b if len(self._factors) > 1 else 0]
            x = lu.solve(self._rhs(db, rp[b], rq[b], sp_[b], sq[b])) if self.n else np.zeros(0)
            xp = np.repeat(sp_[b][:, None], self.grid.L, 1)
            xq = np.repeat(sq[b][None, :], self.grid.K, 0)
            xp[self.pid >= 0] = x[self.pid[self.pid >= 0]]
            xq[self.qid >= 0] = x[self.qid[self.qid >= 0]]
            out_p[b], out_q[b] = xp, xq
        return torch.from_numpy(out_p).to(dev), torch.from_numpy(out_q).to(dev)
