"""Lines of a two-layer grid as tridiagonal systems, and their batched solve by parallel cyclic reduction.

Every wire of the grid (:mod:`xbar._nodal`) is a chain of nodes; with the other layer's voltages
known, the nodes of one line obey a symmetric positive definite tridiagonal system::

    diag[i] x[i] + off[i-1] x[i-1] + off[i] x[i+1] = b[i]

``diag`` = cell conductance + wire conductance to each neighbour + finite end conductance (S),
``off = -g_wire`` (S), except at an ideal-source (Dirichlet) node, whose row is the identity and
whose couplings are zero. ``off`` is the same for every line of a layer, so it is one 1-D tensor.

:class:`PCRLines` solves all lines of a layer at once, on any device, with *parallel cyclic
reduction* (Hockney & Jesshope; Zhang, Cohen & Owens, PPoPP 2010): level ``s = 1, 2, 4, ...``
eliminates from equation ``i`` its couplings to ``i - s`` and ``i + s`` (multipliers
``k1 = a_i / b_{i-s}``, ``k2 = c_i / b_{i+s}``), so that after ``ceil(log2 n)`` levels every
equation stands alone and ``x = d / b``. The multipliers depend on the matrix only, so they are
computed once (set-up: six elementwise ops per level); a solve is then two fused multiply-adds per
level on zero-padded buffers plus one final product, i.e. ``2 ceil(log2 n) + 2`` kernels for
all lines and all right-hand sides together, independent of the batch. For diagonally dominant
matrices (ours: the cells and ends add to the diagonal) cyclic reduction is backward stable like
Gaussian elimination without pivoting.
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def neighbours(n: int, like: Tensor) -> Tensor:
    """Number of wire neighbours of each node of a chain of length n."""
    c = torch.full((n,), 2.0, dtype=like.dtype, device=like.device)
    c[0] -= 1
    c[-1] -= 1
    return c.clamp(min=0)


def _end(x: Tensor, axis: int, index: int) -> Tensor:
    """The nodes at position ``index`` of every line (lines along ``axis``), as a view."""
    return x.select(axis, index)


def line_diag(d_cell: Tensor, g_wire: float, g_first: float, g_last: float, axis: int = -1) -> Tensor:
    """Diagonal (S) of the line matrices for lines along ``axis`` of ``d_cell`` (no Dirichlet rows)."""
    n = d_cell.shape[axis]
    shape = [1] * d_cell.dim()
    shape[axis] = n
    diag = d_cell + g_wire * neighbours(n, d_cell).view(shape)
    if 0.0 < g_first < math.inf:
        _end(diag, axis, 0).add_(g_first)
    if 0.0 < g_last < math.inf:
        _end(diag, axis, n - 1).add_(g_last)
    return diag


def line_off(n: int, g_wire: float, first_dirichlet: bool, last_dirichlet: bool, like: Tensor) -> Tensor:
    """Off-diagonal ``(n - 1,)`` (S) shared by the lines of a layer: ``-g_wire``, 0 next to a Dirichlet node."""
    off = torch.full((max(n - 1, 0),), -g_wire, dtype=like.dtype, device=like.device)
    if n > 1 and first_dirichlet:
        off[0] = 0.0
    if n > 1 and last_dirichlet:
        off[-1] = 0.0
    return off


def line_rhs(r: Tensor, s: Tensor, g_wire: float, g_first: float, g_last: float, dirichlet: Tensor | None,
             axis: int = -1) -> Tensor:
    """Right-hand side of the line systems (lines along ``axis`` of ``r`` ``(B, K, L)``): injections
    ``r`` (A) plus source terms of the sources ``s`` (V, one per line, ``(B, lines)``); Dirichlet
    rows (``dirichlet``, None when there are none) hold the source voltage."""
    b = r.clone()
    n = r.shape[axis]
    if 0.0 < g_first < math.inf:
        _end(b, axis, 0).add_(s, alpha=g_first)
    if 0.0 < g_last < math.inf:
        _end(b, axis, n - 1).add_(s, alpha=g_last)
    if math.isinf(g_first) and n > 1:
        _end(b, axis, 1).add_(s, alpha=g_wire)
    if math.isinf(g_last) and n > 1:
        _end(b, axis, n - 2).add_(s, alpha=g_wire)
    if dirichlet is None:
        return b
    return torch.where(dirichlet, s.unsqueeze(axis).expand_as(b), b)


def levels(n: int) -> int:
    """Number of cyclic-reduction levels for chains of n nodes: ``ceil(log2 n)``."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


class PCRLines:
    """All lines of one layer, solved together by parallel cyclic reduction (module docstring).

    ``diag``: ``(Bd, K, L)`` line diagonals (S, identity rows at Dirichlet nodes); the lines run
    along ``axis`` (-1: along L, -2: along K). ``off``: shared off-diagonal ``(n - 1,)`` (S).
    Right-hand sides ``(B, K, L)`` broadcast against ``Bd`` (1 or B). Works on any device and
    dtype; every operation is a batched elementwise kernel (no Python loop over nodes).
    """

    def __init__(self, diag: Tensor, off: Tensor, axis: int):
        if axis not in (-1, -2):
            raise ValueError(f"axis must be -1 or -2, got {axis!r}")
        self.axis = axis
        self.n = n = diag.shape[axis]
        self.levels = levels(n)
        self.pad = 1 << (self.levels - 1) if self.levels else 0
        self.shape = tuple(diag.shape)
        with torch.no_grad():
            self._k1, self._k2, self.inv_b = self._setup(diag, off)

    # ------------------------------------------------------------------ views
    def _padded(self, like: Tensor, fill: float, batch: int | None = None) -> Tensor:
        shape = list(like.shape)
        if batch is not None:
            shape[0] = batch
        shape[self.axis] = self.n + 2 * self.pad
        return torch.full(shape, fill, dtype=like.dtype, device=like.device)

    def _at(self, buf: Tensor, shift: int) -> Tensor:
        """The n-long window of a padded buffer, shifted by ``shift`` nodes."""
        return buf.narrow(self.axis, self.pad + shift, self.n)

    def _coupling(self, off: Tensor, diag: Tensor, side: int) -> Tensor:
        """Coupling of node i to node i - 1 (side -1) or i + 1 (side +1) as a full tensor."""
        n = self.n
        c = torch.zeros(n, dtype=diag.dtype, device=diag.device)
        if n > 1:
            if side < 0:
                c[1:] = off
            else:
                c[:-1] = off
        shape = [1, 1, 1]
        shape[self.axis] = n
        return c.view(shape).expand_as(diag)

    # ------------------------------------------------------------------ set-up
    def _setup(self, diag: Tensor, off: Tensor):
        k1s, k2s = [], []
        if self.levels == 0:
            return k1s, k2s, 1.0 / diag
        b, a, c = self._padded(diag, 1.0), self._padded(diag, 0.0), self._padded(diag, 0.0)
        nb, na, nc = self._padded(diag, 1.0), self._padded(diag, 0.0), self._padded(diag, 0.0)
        self._at(b, 0).copy_(diag)
        self._at(a, 0).copy_(self._coupling(off, diag, -1))
        self._at(c, 0).copy_(self._coupling(off, diag, +1))
        for lev in range(self.levels):
            s = 1 << lev
            k1 = self._at(a, 0) / self._at(b, -s)  # zero where i - s is outside (a = 0 there)
            k2 = self._at(c, 0) / self._at(b, s)
            out_b = self._at(nb, 0)
            torch.addcmul(self._at(b, 0), k1, self._at(c, -s), value=-1.0, out=out_b)
            out_b.addcmul_(k2, self._at(a, s), value=-1.0)
            torch.mul(k1, self._at(a, -s), out=self._at(na, 0)).neg_()
            torch.mul(k2, self._at(c, s), out=self._at(nc, 0)).neg_()
            k1s.append(k1)
            k2s.append(k2)
            b, nb, a, na, c, nc = nb, b, na, a, nc, c
        return k1s, k2s, 1.0 / self._at(b, 0)

    # ------------------------------------------------------------------ solve
    def buffers(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Two zero-padded work buffers for ``solve(..., work=)`` with ``batch`` right-hand sides."""
        shape = list(self.shape)
        shape[0] = batch
        ref = torch.empty(shape, dtype=like.dtype, device=like.device)
        return self._padded(ref, 0.0), self._padded(ref, 0.0)

    def solve(self, rhs: Tensor, out: Tensor | None = None, work: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``T^-1 rhs`` for ``rhs`` ``(B, K, L)``; ``out`` and the padded ``work`` buffers (from
        :meth:`buffers`) may be given so that a solve allocates nothing (CUDA graphs). ``out`` may
        alias ``rhs``."""
        if out is None:
            out = torch.empty_like(rhs)
        if self.levels == 0:
            return torch.mul(rhs, self.inv_b, out=out)
        cur, nxt = work if work is not None else self.buffers(rhs.shape[0], rhs)
        self._at(cur, 0).copy_(rhs)
        for lev in range(self.levels):
            s = 1 << lev
            dst = self._at(nxt, 0)
            torch.addcmul(self._at(cur, 0), self._k1[lev], self._at(cur, -s), value=-1.0, out=dst)
            dst.addcmul_(self._k2[lev], self._at(cur, s), value=-1.0)
            cur, nxt = nxt, cur
        return torch.mul(self._at(cur, 0), self.inv_b, out=out)

    def line(self, j: int) -> "PCRLines":
        """The single line ``j`` (index along dim 1; lines along -1) as a ``(Bd, 1, L)`` system."""
        if self.axis != -1:
            raise ValueError("line() needs lines along the last axis")
        sub = object.__new__(PCRLines)
        sub.__dict__.update(self.__dict__)
        sub.shape = (self.shape[0], 1, self.shape[2])
        sub._k1 = [k[:, j:j + 1] for k in self._k1]
        sub._k2 = [k[:, j:j + 1] for k in self._k2]
        sub.inv_b = self.inv_b[:, j:j + 1]
        return sub

    def ops_per_solve(self) -> int:
        """Kernels launched by one :meth:`solve` with preallocated buffers."""
        return 2 * self.levels + 2 if self.levels else 1


class DenseLines:
    """All lines of one layer as explicit inverses, for many right-hand sides on a GPU.

    ``T^-1`` of every line is formed once by parallel cyclic reduction of the identity (one batched
    solve with n right-hand sides), stored as ``(lines, n, n)``; a solve is then one batched
    matrix product (tensor cores) plus the two layout copies around it, instead of
    ``2 ceil(log2 n)`` passes over the whole batch. Worth it when many right-hand sides share the
    lines (a transfer matrix: one right-hand side per input) and ``n`` is small (memory
    ``lines * n^2``). Same interface as :class:`PCRLines` (shared lines only, ``Bd = 1``).
    """

    def __init__(self, diag: Tensor, off: Tensor, axis: int):
        if diag.shape[0] != 1:
            raise ValueError("DenseLines needs lines shared by the batch (Bd = 1)")
        self.axis = axis
        self.shape = tuple(diag.shape)
        n = diag.shape[axis]
        with torch.no_grad():
            pcr = PCRLines(diag, off, axis)
            eye = torch.eye(n, dtype=diag.dtype, device=diag.device)
            shape = [n, 1, 1]
            shape[axis] = n
            rhs = eye.view(shape).expand(n, *diag.shape[1:]).contiguous()  # rhs[c] = e_c on every line
            x = pcr.solve(rhs)  # x[c, k, l] = (T_line^-1)[i, c] with i the position along the line
            # (lines, i, c): lines along -1 are indexed by k, lines along -2 by l
            self.inv = (x.permute(1, 2, 0) if axis == -1 else x.permute(2, 1, 0)).contiguous()

    def buffers(self, batch: int, like: Tensor):
        return None

    def solve(self, rhs: Tensor, out: Tensor | None = None, work=None) -> Tensor:
        """``T^-1 rhs`` for ``rhs`` ``(B, K, L)``."""
        if self.axis == -1:  # (B, K, L) -> (K, L, B): line k, position l
            x = torch.matmul(self.inv, rhs.permute(1, 2, 0)).permute(2, 0, 1)
        else:  # (B, K, L) -> (L, K, B): line l, position k
            x = torch.matmul(self.inv, rhs.permute(2, 1, 0)).permute(2, 1, 0)
        if out is None:
            return x.contiguous()
        return out.copy_(x)

    def ops_per_solve(self) -> int:
        """Kernels of one solve: the input layout copy, the batched product, the output copy."""
        return 3
