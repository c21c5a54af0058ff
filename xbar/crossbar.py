"""Exact crossbar circuit solver with IR drop, sneak paths, three topologies and autograd.

Circuit convention (``row_drive="first"``, ``col_sense="last"``, the defaults)::

      v_in[0] --r_source--R(0,0)--r_row--R(0,1)--r_row-- ... --R(0,n-1)      row wire 0
                            |              |                     |
                          cell           cell                  cell          cell (i,j) between
                            |              |                     |           R(i,j) and C(i,j)
                          C(0,0)         C(0,1)                C(0,n-1)
                            |r_col         |r_col                |r_col      column wires run down
      v_in[1] --r_source--R(1,0)-- ...    ...                   ...
                          C(m-1,0)       C(m-1,1)              C(m-1,n-1)
                            |r_sense       |r_sense              |r_sense
                          v_col_bias[0]  v_col_bias[1]         v_col_bias[n-1]   (0 V = virtual ground)

``row_drive`` selects the row-wire end(s) that the row source drives: ``"first"`` (column 0),
``"last"`` (column n-1) or ``"both"`` (the same source voltage at both ends, each through its own
``r_source``). ``col_sense`` likewise selects the column end(s) tied to the sense node(s):
``"last"`` (row m-1), ``"first"`` (row 0) or ``"both"``. A resistance of exactly 0 is exact:
``r_source = 0`` / ``r_sense = 0`` make the end node the (ideal) source / virtual-ground node,
``r_row = 0`` / ``r_col = 0`` merge the wire into one node.

Governing equations (KCL, current leaving each node; ``i_cell = f(v_row - v_col)``)::

    row node:    i_cell(i,j) + (2 v_r(i,j) - v_r(i,j-1) - v_r(i,j+1)) / r_row [+ (v_r - v_in[i]) / r_source] = 0
    column node: -i_cell(i,j) + (2 v_c(i,j) - v_c(i-1,j) - v_c(i+1,j)) / r_col [+ (v_c - v_bias[j]) / r_sense] = 0

Output current ``i_out[j]`` (A) is the current flowing into the sense end(s) of column j,
which by KCL over the column wire equals ``sum_i i_cell(i,j)``; ``i_in[i] = sum_j i_cell(i,j)``
is drawn from row source i. Power delivered by the sources (W):
``sum_i v_in[i] i_in[i] - sum_j v_bias[j] i_out[j]`` (>= 0 for a passive array).

Methods (``CrossbarConfig.method``): ``"block"`` (exact block-tridiagonal Cholesky of the Schur
system, see :mod:`xbar._linear`), ``"cg"`` (line-preconditioned CG to ``cg_rtol``), ``"direct"``
(scipy sparse LU; the reference, and the path used when a wire resistance is 0), ``"auto"``.
Nonlinear cells (devices' own I-V, 1S1R, EKV 1T1R) use damped Newton (:mod:`xbar._nonlinear`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ._autograd import NodeSolve
from ._linear import ConvergenceError, StructuredSolver
from ._nodal import DirectSolver, Grid, pin, residual
from ._nonlinear import current_scale, newton
from ._solver_config import CrossbarConfig
from ._transfer import port_transfer
from .topology import CellModel, MemoryElement, ekv_iv, selector_iv, selector_v0

Tensor = torch.Tensor

__all__ = ["Crossbar", "CrossbarConfig", "CrossbarSolution", "ConvergenceError"]


@dataclass
class CrossbarSolution:
    """Full operating point; voltages in V, currents in A, power in W, batch dim first.

    Attributes:
        v_row, v_col: row- / column-wire node voltages ``(batch, rows, cols)``.
        v_cell: ``v_row - v_col``; i_cell: cell current row -> column ``(batch, rows, cols)``.
        i_out: current into the sense end(s) of each column ``(batch, cols)``.
        i_in: current drawn from each row source ``(batch, rows)``.
        power: total power delivered by all sources ``(batch,)``.
        kcl_residual: max |KCL residual| / current scale per batch element ``(batch,)``.
        method: linear method used; iterations: Newton iterations (0 for linear arrays).
    """

    v_row: Tensor
    v_col: Tensor
    v_cell: Tensor
    i_cell: Tensor
    i_out: Tensor
    i_in: Tensor
    power: Tensor
    kcl_residual: Tensor
    method: str
    iterations: int


def _is_device(obj) -> bool:
    return all(hasattr(obj, a) for a in ("shape", "conductance", "current")) and not torch.is_tensor(obj)


def _conductance(g) -> Tensor:
    g = torch.as_tensor(g) if not torch.is_tensor(g) else g
    if g.dim() != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        raise ValueError(f"conductances must be a non-empty 2-D (rows, cols) array in S, got shape {tuple(g.shape)}")
    if not g.dtype.is_floating_point:
        g = g.to(torch.float64)
    if not bool(torch.isfinite(g).all()):
        raise ValueError("conductances must be finite (no NaN/inf), in S")
    if bool((g < 0).any()):
        raise ValueError("conductances must be >= 0 S (got negative values)")
    return g if g.dtype == torch.float64 else g.to(torch.float64)


class Crossbar:
    """A ``rows x cols`` crossbar: ``Crossbar(conductances, r_row=..., ...)`` or ``config=``.

    ``conductances``: ``(rows, cols)`` tensor/array (S; linear cells, may require grad) or a
    ``devices`` object (``.shape``, ``.conductance()``, ``.current(v)``). ``gate_enable``:
    ``(rows,)`` bool, word-line gates of 1T1R arrays (default all on).
    """

    def __init__(self, conductances, *, config: CrossbarConfig | None = None, gate_enable=None, **options):
        if config is None:
            config = CrossbarConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        if not isinstance(config, CrossbarConfig):
            raise TypeError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        if _is_device(conductances):
            self.device_cells = conductances
            self.g = None
            shape = tuple(conductances.shape)
            if len(shape) != 2:
                raise ValueError(f"conductances (device object) must have a 2-D shape (rows, cols), got {shape}")
            ref = conductances.conductance()
            self.torch_device = ref.device
        else:
            self.device_cells = None
            self.g = _conductance(conductances)
            shape = tuple(self.g.shape)
            self.torch_device = self.g.device
        self.rows, self.cols = shape
        self.gate_enable = gate_enable
        self._cache: dict = {}

    # ------------------------------------------------------------------ properties
    @property
    def gate_enable(self) -> Tensor:
        return self._gate

    @gate_enable.setter
    def gate_enable(self, value) -> None:
        if value is None:
            value = torch.ones(self.rows, dtype=torch.bool)
        value = torch.as_tensor(value, device=self.torch_device)
        if value.shape != (self.rows,) or value.dtype != torch.bool:
            raise ValueError(f"gate_enable must be a bool tensor of shape ({self.rows},), got "
                             f"{value.dtype} {tuple(value.shape)}")
        self._gate = value

    @property
    def is_linear(self) -> bool:
        """True when the array is an exact linear network (no Newton needed)."""
        c = self.config
        return self.device_cells is None and (c.topology == "0T1R" or (c.topology == "1T1R" and c.transistor == "linear"))

    # ------------------------------------------------------------------ cells
    def _g_param(self) -> Tensor:
        return self.g if self.g is not None else torch.zeros(0, dtype=torch.float64, device=self.torch_device)

    def _g_access(self) -> Tensor:
        """Access-transistor conductance (S) per row ``(rows, 1)`` for the linear 1T1R model."""
        c = self.config
        on = 1.0 / c.r_access_on
        off = 0.0 if math.isinf(c.r_access_off) else 1.0 / c.r_access_off
        on_t = torch.full((self.rows,), on, dtype=torch.float64, device=self.torch_device)
        return torch.where(self._gate, on_t, torch.full_like(on_t, off)).unsqueeze(-1)

    def g_effective(self, g: Tensor | None = None) -> Tensor:
        """Ideal-equivalent conductance (S) per cell: G, or the series G with a linear access
        transistor, or the device's conductance at v_read (selectors ignored)."""
        g = self._g_param() if g is None else g
        if self.device_cells is not None:
            g = self.device_cells.conductance().to(torch.float64)
        if self.config.topology == "1T1R" and self.config.transistor == "linear":
            ga = self._g_access()
            g = g * ga / (g + ga).clamp_min(1e-300)
        return g

    def _cell_model(self) -> CellModel:
        c = self.config
        mem = MemoryElement(self.device_cells)
        if c.topology == "0T1R" or (c.topology == "1T1R" and c.transistor == "linear" and self.device_cells is None):
            return CellModel(mem)
        if c.topology == "1T1R" and c.transistor == "linear":
            ga = self._g_access()
            return CellModel(mem, lambda v: (ga * v, ga.expand_as(v)))
        if c.topology == "1T1R":
            on_t = torch.full((self.rows,), c.v_gate_on, dtype=torch.float64, device=self.torch_device)
            v_gate = torch.where(self._gate, on_t, torch.full_like(on_t, c.v_gate_off)).unsqueeze(-1)
            return CellModel(mem, lambda v: ekv_iv(v, v_gate, c.mos_v_th, c.mos_n, c.mos_beta, c.mos_u_t))
        v0 = selector_v0(c.selector, c.selector_v_0, c.selector_nl, c.selector_v_w)
        return CellModel(mem, lambda v: selector_iv(c.selector, c.selector_i_s, v0, v))

    def _cell_current(self, v_cell: Tensor, g: Tensor) -> Tensor:
        if self.is_linear:
            return self.g_effective(g) * v_cell
        return self._cell_model().current(v_cell, g if g.numel() else None)

    def _cell_slope(self, v_cell: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        if self.is_linear:
            ge = self.g_effective(g)
            return ge * v_cell, ge.expand_as(v_cell)
        return self._cell_model().current_and_slope(v_cell, g if g.numel() else None)

    # ------------------------------------------------------------------ grid mapping
    def _transposed(self) -> bool:
        """Put the shorter dimension along the dense blocks (L = min(rows, cols))."""
        return self.rows < self.cols

    def _grid(self) -> Grid:
        c = self.config
        inv = lambda r: math.inf if r == 0 else 1.0 / r  # noqa: E731
        g_src, g_sen = inv(c.r_source), inv(c.r_sense)
        rows_ends = (g_src if c.row_drive in ("first", "both") else 0.0, g_src if c.row_drive in ("last", "both") else 0.0)
        col_ends = (g_sen if c.col_sense in ("first", "both") else 0.0, g_sen if c.col_sense in ("last", "both") else 0.0)
        if self._transposed():
            return Grid(self.cols, self.rows, inv(c.r_col), inv(c.r_row), *col_ends, *rows_ends)
        return Grid(self.rows, self.cols, inv(c.r_row), inv(c.r_col), *rows_ends, *col_ends)

    def _t(self, x: Tensor) -> Tensor:
        return x.transpose(-1, -2) if self._transposed() else x

    def _sources(self, v_in: Tensor, v_bias: Tensor) -> tuple[Tensor, Tensor]:
        return (v_bias, v_in) if self._transposed() else (v_in, v_bias)

    def _to_xbar(self, x_p: Tensor, x_q: Tensor) -> tuple[Tensor, Tensor]:
        """Grid node voltages -> (v_row, v_col) in (batch, rows, cols) layout."""
        if self._transposed():
            return x_q.transpose(-1, -2), x_p.transpose(-1, -2)
        return x_p, x_q

    def _grid_cells(self, g: Tensor, slope: bool):
        """Cell current P -> Q (and slope) as a function of ``x_p - x_q`` in grid layout."""
        sign = -1.0 if self._transposed() else 1.0

        def f(dv):
            v_cell = self._t(sign * dv)
            if slope:
                i, s = self._cell_slope(v_cell, g)
                return sign * self._t(i), self._t(s)
            return sign * self._t(self._cell_current(v_cell, g))
        return f

    # ------------------------------------------------------------------ linear solvers
    def _linear_solver(self, d_grid: Tensor, n_rhs: int):
        """A linear solver for grid-layout cell conductances ``d_grid`` ``(Bd, K, L)``."""
        c, grid = self.config, self._grid()
        method = c.method
        if method == "direct" or not grid.structured:
            return DirectSolver(grid, d_grid), "direct"
        if method == "auto":
            bd, K, L = d_grid.shape
            dense_bytes = 2 * 8 * bd * K * L * L
            small = dense_bytes <= c.block_max_bytes and L <= 512
            method = "block" if small and (n_rhs >= 8 or L <= 64) else "cg"
        solver = StructuredSolver(grid, d_grid, method=method, cg_rtol=c.cg_rtol, cg_max_iter=c.cg_max_iter)
        return solver, method

    def _cached_linear(self, g: Tensor, n_rhs: int):
        """Factorisation of the linear array, cached until the effective conductances change."""
        ge = self.g_effective(g).detach()
        hit = self._cache.get("linear")
        if hit is not None and hit[0].shape == ge.shape and torch.equal(hit[0], ge) and hit[3] >= min(n_rhs, 8):
            return hit[1], hit[2]
        solver, method = self._linear_solver(self._t(ge).unsqueeze(0), n_rhs)
        self._cache["linear"] = (ge.clone(), solver, method, n_rhs)
        return solver, method

    # ------------------------------------------------------------------ engine (NodeSolve)
    def nodes(self, v_in: Tensor, v_bias: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Forward solve: grid-layout node voltages (V), no autograd graph."""
        s_p, s_q = self._sources(v_in, v_bias)
        z_p, z_q = torch.zeros(s_p.shape[0], *self._grid_shape(), dtype=torch.float64, device=v_in.device), None
        z_q = torch.zeros_like(z_p)
        if self.is_linear:
            solver, method = self._cached_linear(g, v_in.shape[0])
            self._last = (method, 0)
            return solver.solve(z_p, z_q, s_p, s_q)
        return self._newton(s_p, s_q, g, z_p)

    def _grid_shape(self) -> tuple[int, int]:
        return (self.cols, self.rows) if self._transposed() else (self.rows, self.cols)

    def _newton(self, s_p: Tensor, s_q: Tensor, g: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        c, grid = self.config, self._grid()
        cells = self._grid_cells(g, slope=True)
        v_ref = float(torch.maximum(s_p.abs().max(), s_q.abs().max()))
        if v_ref == 0.0:
            self._last = ("newton", 0)
            return z, z.clone()
        i_ref, _ = cells(torch.full_like(z[:1], v_ref))
        secant = (i_ref / v_ref).clamp_min(1e-300)
        x_p, x_q = self._linear_solver(secant, s_p.shape[0])[0].solve(z, z, s_p, s_q)
        methods = []

        def solver_for(slope):
            solver, method = self._linear_solver(slope.clamp_min(1e-300), 1)
            methods.append(method)
            return solver

        x_p, x_q, it, _ = newton(grid, cells, solver_for, x_p, x_q, s_p, s_q,
                                 rtol=c.newton_rtol, max_iter=c.newton_max_iter)
        self._last = (methods[-1] if methods else "newton", it)
        return x_p, x_q

    def adjoint(self, x_p, x_q, g, r_p, r_q):
        """``J^-1 r`` at the solution, sources zeroed (J symmetric: the adjoint solve)."""
        zero_p, zero_q = torch.zeros_like(x_p[:, :, 0]), torch.zeros_like(x_q[:, 0, :])
        if self.is_linear:
            solver = self._cached_linear(g, r_p.shape[0])[0]
        else:
            _, slope = self._grid_cells(g, slope=True)(x_p - x_q)
            solver = self._linear_solver(slope.clamp_min(1e-300), 1)[0]
        return solver.solve(r_p, r_q, zero_p, zero_q)

    def residual(self, x_p, x_q, v_in, v_bias, g):
        """Differentiable KCL residual (A) at grid-layout node voltages."""
        s_p, s_q = self._sources(v_in, v_bias)
        x_p, x_q = pin(self._grid(), x_p, x_q, s_p, s_q)
        i = self._grid_cells(g, slope=False)(x_p - x_q)
        return residual(self._grid(), x_p, x_q, i, s_p, s_q)

    # ------------------------------------------------------------------ public API
    def _inputs(self, v_in, v_col_bias) -> tuple[Tensor, Tensor, bool]:
        v = torch.as_tensor(v_in, dtype=torch.float64, device=self.torch_device) if not torch.is_tensor(v_in) else v_in
        if v.dim() not in (1, 2) or v.shape[-1] != self.rows or v.shape[0] == 0:
            raise ValueError(f"v_in must have shape ({self.rows},) or (batch>=1, {self.rows}) in V, got {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError("v_in must be finite (no NaN/inf), in V")
        one_d = v.dim() == 1
        v = (v.unsqueeze(0) if one_d else v).to(torch.float64)
        if v_col_bias is None:
            b = torch.zeros(v.shape[0], self.cols, dtype=torch.float64, device=v.device)
        else:
            b = torch.as_tensor(v_col_bias, dtype=torch.float64, device=v.device) if not torch.is_tensor(v_col_bias) \
                else v_col_bias.to(torch.float64)
            if not bool(torch.isfinite(b).all()):
                raise ValueError("v_col_bias must be finite (no NaN/inf), in V")
            try:
                b = torch.broadcast_to(b, (v.shape[0], self.cols))
            except RuntimeError as exc:
                raise ValueError(f"v_col_bias must broadcast to (batch, {self.cols}), got {tuple(b.shape)}") from exc
        return v, b, one_d

    def _exact_nodes(self, v: Tensor, b: Tensor, g: Tensor):
        needs = torch.is_grad_enabled() and (v.requires_grad or b.requires_grad or g.requires_grad)
        if needs and self.config.grad_mode == "exact":
            x_p, x_q = NodeSolve.apply(self, v, b, g)
        else:
            with torch.no_grad():
                x_p, x_q = self.nodes(v.detach(), b.detach(), g.detach())
        s_p, s_q = self._sources(v, b)
        return pin(self._grid(), x_p, x_q, s_p, s_q)

    def _straight_through(self, exact: Tensor, v: Tensor, b: Tensor, g: Tensor) -> Tensor:
        if self.config.grad_mode != "ideal" or not torch.is_grad_enabled():
            return exact
        ge = self.g_effective(g)
        ideal = v @ ge - b * ge.sum(0)
        return exact.detach() + ideal - ideal.detach()

    def full_solution(self, v_in, *, v_col_bias=None) -> CrossbarSolution:
        """Every node voltage and branch current for inputs ``v_in`` (V), always 2-D (batch first)."""
        v, b, _ = self._inputs(v_in, v_col_bias)
        g = self._g_param()
        x_p, x_q = self._exact_nodes(v, b, g)
        v_row, v_col = self._to_xbar(x_p, x_q)
        v_cell = v_row - v_col
        i_cell = self._cell_current(v_cell, g)
        i_out = self._straight_through(i_cell.sum(-2), v, b, g)
        i_in = i_cell.sum(-1)
        power = (v * i_in).sum(-1) - (b * i_out).sum(-1)
        s_p, s_q = self._sources(v, b)
        with torch.no_grad():
            i_grid = self._grid_cells(g, slope=False)(x_p - x_q)
            f_p, f_q = residual(self._grid(), x_p, x_q, i_grid, s_p, s_q)
            fmax = torch.maximum(f_p.abs().flatten(1).amax(1), f_q.abs().flatten(1).amax(1))
            kcl = fmax / current_scale(i_grid).clamp_min(1e-300)
        method, it = getattr(self, "_last", ("none", 0))
        return CrossbarSolution(v_row, v_col, v_cell, i_cell, i_out, i_in, power, kcl, method, it)

    def solve(self, v_in, *, v_col_bias=None) -> Tensor:
        """Column output currents (A): ``(cols,)`` for ``v_in`` of shape ``(rows,)``, ``(batch, cols)``
        for ``(batch, rows)``. Linear arrays with many inputs use the cached transfer matrix."""
        v, b, one_d = self._inputs(v_in, v_col_bias)
        g = self._g_param()
        g_grad = torch.is_grad_enabled() and g.requires_grad and self.config.grad_mode == "exact"
        use_transfer = (self.is_linear and v_col_bias is None and not g_grad
                        and (self._transfer_cached(g) or v.shape[0] >= self.config.transfer_batch_ratio * self.rows))
        if use_transfer:
            out = self._straight_through(v @ self._transfer(g), v, b, g)
        else:
            out = self.full_solution(v, v_col_bias=b if v_col_bias is not None else None).i_out
        return out[0] if one_d else out

    def _transfer_cached(self, g: Tensor) -> bool:
        hit = self._cache.get("transfer")
        ge = self.g_effective(g).detach()
        return hit is not None and torch.equal(hit[0], ge)

    def _transfer(self, g: Tensor) -> Tensor:
        if self._transfer_cached(g):
            return self._cache["transfer"][1]
        with torch.no_grad():
            ge = self.g_effective(g)
            grid = self._grid()
            if grid.structured and self.config.method in ("auto", "block"):
                m = port_transfer(grid, self._t(ge))
                a = (m.T if self._transposed() else m).contiguous()
            else:
                a = self._transfer_by_solves(g, ge)
        self._cache["transfer"] = (ge.detach().clone(), a)
        return a

    def _transfer_by_solves(self, g: Tensor, ge: Tensor) -> Tensor:
        """``A`` row by row from solves with unit inputs (CG or sparse LU), in chunks of inputs."""
        eye = torch.eye(self.rows, dtype=torch.float64, device=self.torch_device)
        zero = torch.zeros(self.rows, self.cols, dtype=torch.float64, device=self.torch_device)
        chunk = max(1, int(self.config.transfer_chunk_bytes // (16 * self.rows * self.cols)))
        parts = []
        self._cached_linear(g, self.rows)  # factorise once for all chunks
        for start in range(0, self.rows, chunk):  # chunks keep temporaries cache-sized
            x_p, x_q = self.nodes(eye[start:start + chunk], zero[start:start + chunk], g)
            v_row, v_col = self._to_xbar(x_p, x_q)
            parts.append((ge * (v_row - v_col)).sum(-2))
        return torch.cat(parts, 0)

    def transfer_matrix(self) -> Tensor:
        """Exact effective matrix ``A`` (S), ``(rows, cols)``: ``solve(v) == v @ A`` for linear
        arrays with the column ends at 0 V. Differentiable w.r.t. conductances in exact mode."""
        if not self.is_linear:
            raise ValueError("transfer_matrix() needs a linear array (topology 0T1R or 1T1R with "
                             "transistor='linear', and conductances given as a tensor)")
        g = self._g_param()
        if torch.is_grad_enabled() and g.requires_grad:
            return self.full_solution(torch.eye(self.rows, dtype=torch.float64, device=self.torch_device)).i_out
        return self._transfer(g)

    def __repr__(self) -> str:
        return f"Crossbar({self.rows}x{self.cols}, {self.config})"
