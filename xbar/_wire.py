"""Cell-voltage ("wire") formulation of a linear two-layer grid: exact for any wire resistance, including 0.

The nodal solvers (:mod:`xbar._linear`, :mod:`xbar._nodal`) add wire conductances ``1/r`` to cell
and end conductances on one diagonal. When the wires conduct far better than the ends or the
cells hold (``r_row = 1e-12 Ohm`` behind a 1 Ohm driver), those conductances vanish in the
rounding of the diagonal: the relative error is about ``eps * g_wire / g_end`` (3e-4 for that
example). This formulation never forms a wire conductance. With the notation of
:mod:`xbar._nodal`, each line is a resistive ladder whose node voltages are its source voltage
plus its *resistance matrix* ``Z`` (Ohm, symmetric, non-negative) times the currents injected
into its nodes; with one connected end at node 0 (resistance ``R0``, wire ``r`` per segment)::

    (Z i)_j = R0 sum_m i_m + r sum_{k=1..j} c_k,     c_k = sum_{m>=k} i_m  (current in segment k)

(two cumulative sums), the end at node n-1 alike, and both ends by superposition: the current
``j1`` leaving the second end (``R1``) is ``(Z0 i)_{n-1} / (R0 + R1 + r (n-1))`` and
``Z i = Z0 i - j1 (R0 + r j)``. An ideal end (``R = 0``) pins its node to the source and a
0-Ohm wire gives ``Z = R_end 1 1^T``: both are exact cases of the same formulas.

Unknowns: the cell voltages ``u = x_p - x_q``. With injections ``r`` (A) and sources ``s`` (V)::

    x_p = s_p + Z_p (r_p - D u),   x_q = s_q + Z_q (r_q + D u)
    (I + (Z_p + Z_q) D) u = s_p - s_q + Z_p r_p - Z_q r_q

and with ``y = D^(1/2) u`` the system ``(I + D^(1/2) (Z_p + Z_q) D^(1/2)) y = D^(1/2) (...)`` is
symmetric positive definite with eigenvalues in ``[1, 1 + rho]``, ``rho`` the IR-drop strength
(largest eigenvalue of ``D^(1/2) Z D^(1/2)``). Plain CG (:mod:`xbar._cg_torch`; a Jacobi
preconditioner did not reduce the iterations in measurements) therefore converges in a few
iterations when the IR drop is mild or the wires nearly ideal (the driver/sense terms
``R_end 1 1^T`` add one cluster of eigenvalues per line, which CG resolves quickly), and every
operation is a batched cumulative sum or elementwise product (any device). The cell currents are
taken from the unknowns ``y`` directly, never from differences of node voltages.
:func:`rho_bound` bounds ``rho`` by the largest row sum of the non-negative matrix (Perron).
"""
from __future__ import annotations

import math

import torch

from ._cg_torch import DeviceCG
from ._nodal import Grid

Tensor = torch.Tensor


def _resistance(g: float) -> float:
    """Resistance (Ohm) of a conductance (S): 0 -> inf (not connected), inf -> 0 (ideal)."""
    if g == 0.0:
        return math.inf
    return 0.0 if math.isinf(g) else 1.0 / g


class LadderLines:
    """Resistance matrices ``Z`` of all lines of one layer (lines along ``axis`` of ``(B, K, L)``)."""

    def __init__(self, n: int, g_wire: float, g_first: float, g_last: float, axis: int, like: Tensor):
        self.n, self.axis = n, axis
        self.r = _resistance(g_wire) if g_wire != 0.0 else math.inf
        self.r0, self.r1 = _resistance(g_first), _resistance(g_last)
        if math.isinf(self.r0) and math.isinf(self.r1):
            raise ValueError("every line needs at least one connected end (a finite end resistance)")
        if math.isinf(self.r):
            raise ValueError("wire resistance must be finite")
        shape = [1, 1, 1]
        shape[axis] = n
        self._j = torch.arange(n, dtype=like.dtype, device=like.device).view(shape)
        self._den = self.r0 + self.r1 + self.r * (n - 1) if not (math.isinf(self.r0) or math.isinf(self.r1)) else None

    def apply(self, i: Tensor) -> Tensor:
        """``Z i`` (V) for injected currents ``i`` (A), ``(B, K, L)``."""
        ax, n, r = self.axis, self.n, self.r
        cs = torch.cumsum(i, ax)
        tot = cs.narrow(ax, n - 1, 1)
        if math.isinf(self.r0):  # only the end at node n-1: segment k carries sum_{m<k} i_m
            e = torch.cumsum(cs, ax)
            total = e.narrow(ax, n - 2, 1) if n > 1 else torch.zeros_like(tot)
            return (total - e + cs) * r + self.r1 * tot
        # end at node 0: segment k carries c_k = tot - cs_{k-1} = tot - cs_k + i_k
        c = (tot - cs).add_(i)
        v = torch.cumsum(c, ax).sub_(tot).mul_(r).add_(tot, alpha=self.r0)
        if self._den is not None:  # second end: superpose the current it draws
            j1 = v.narrow(ax, n - 1, 1) / self._den if self._den > 0 else torch.zeros_like(tot)
            v = v - j1 * (self.r0 + r * self._j)
        return v


class WireSolver:
    """Exact solver for linear two-layer grids in the cell-voltage formulation (module docstring).

    ``d_cell``: cell conductances (S) in grid layout ``(Bd, K, L)``, Bd 1 or the batch size.
    Any wire and end resistance >= 0 (every line needs one connected end).
    """

    def __init__(self, grid: Grid, d_cell: Tensor, *, cg_rtol: float = 1e-14, cg_max_iter: int = 5000,
                 use_graph: bool = True):
        self.grid = grid
        d = d_cell.detach()
        self.d = d
        self.sqrt_d = d.sqrt()
        self.lines_p = LadderLines(grid.L, grid.g_wire_p, grid.p_first, grid.p_last, -1, d)
        self.lines_q = LadderLines(grid.K, grid.g_wire_q, grid.q_first, grid.q_last, -2, d)
        self.cg_rtol, self.cg_max_iter, self.use_graph = cg_rtol, cg_max_iter, use_graph
        self.iterations = 0
        self.mode = "eager"

    def _z(self, i: Tensor) -> Tensor:
        return self.lines_p.apply(i) + self.lines_q.apply(i)

    def _matvec(self, y: Tensor, out: Tensor) -> None:
        torch.addcmul(y, self.sqrt_d, self._z(self.sqrt_d * y), out=out)

    @staticmethod
    def _precond(r: Tensor, out: Tensor) -> None:
        out.copy_(r)

    def rho_bound(self) -> float:
        """Upper bound on the IR-drop strength ``rho`` (largest row sum of ``D^(1/2) Z D^(1/2)``)."""
        s = self.sqrt_d
        return float((s * self._z(s)).amax()) if s.numel() else 0.0

    def solve(self, r_p: Tensor, r_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor]:
        """Node voltages ``(x_p, x_q)`` (V, full layout ``(B, K, L)``) for injections ``r`` (A) and
        sources ``s_p`` ``(B, K)``, ``s_q`` ``(B, L)`` (V)."""
        x_p, x_q, _ = self.solve_cells(r_p, r_q, s_p, s_q)
        return x_p, x_q

    def solve_cells(self, r_p: Tensor, r_q: Tensor, s_p: Tensor, s_q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """As :meth:`solve`, plus the cell voltages ``u = x_p - x_q`` (V) straight from the unknowns:
        exact even where the node voltages nearly cancel (a driver resistance that takes almost
        all of the source voltage), which ``x_p - x_q`` is not."""
        zp_r, zq_r = self.lines_p.apply(r_p), self.lines_q.apply(r_q)
        ds = s_p.unsqueeze(-1) - s_q.unsqueeze(-2)
        rhs = (self.sqrt_d * (ds + zp_r - zq_r)).contiguous()
        cg = DeviceCG(self._matvec, self._precond, tuple(rhs.shape), rhs, rtol=self.cg_rtol,
                      max_iter=self.cg_max_iter, what="conjugate-gradient crossbar solve (wire formulation)",
                      use_graph=self.use_graph)
        y = cg.solve(rhs)
        self.iterations, self.mode = cg.iterations, cg.mode
        i_cell = self.sqrt_d * y
        x_p = s_p.unsqueeze(-1) + self.lines_p.apply(r_p - i_cell)
        x_q = s_q.unsqueeze(-2) + self.lines_q.apply(r_q + i_cell)
        u = torch.where(self.d > 0, y / self.sqrt_d.clamp_min(1e-300), x_p - x_q)
        return x_p, x_q, u
