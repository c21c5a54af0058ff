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

Methods (``CrossbarConfig.method``, details in :mod:`xbar._methods`): ``"block"`` (exact
block-tridiagonal Cholesky of the Schur system, :mod:`xbar._linear`), ``"cg"`` (line-preconditioned
CG to ``cg_rtol``), ``"wire"`` (CG on the cell voltages with the wires' resistance matrices,
:mod:`xbar._wire`: exact for any wire resistance including 0 and tiny ones), ``"direct"`` (scipy
sparse LU; the reference), ``"auto"`` (the fastest exact one). ``CrossbarConfig.backend`` runs the
structured solvers as compiled CPU kernels or as batched torch kernels on any device (CUDA).
Nonlinear cells (devices' own I-V, 1S1R, EKV 1T1R) use damped Newton (:mod:`xbar._nonlinear`).

Conductances given as a tensor are read at every solve (in-place edits are seen) and re-validated
whenever they changed; non-finite cell currents or node voltages raise ``ValueError``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ._autograd import NodeSolve
from ._errors import ConvergenceError
from ._inputs import check_conductance_values, check_inputs, conductance_tensor
from ._methods import linear_solver
from ._nodal import Grid, kcl_backward_error, pin, residual
from ._nonlinear import newton
from ._solver_config import CrossbarConfig
from ._transfer import transfer_matrix
from .topology import CellModel, MemoryElement, ekv_iv, selector_iv, selector_iv_inverse, selector_v0

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
        kcl_residual: relative KCL residual per batch element ``(batch,)``: the largest node
            residual divided by the sum of the magnitudes of that node's current terms (the
            componentwise backward error; a few 1e-16 for an exact solution).
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


def _nonfinite(what: str, cause: str) -> ValueError:
    return ValueError(f"{what} is not finite (NaN/inf): {cause}")


class Crossbar:
    """A ``rows x cols`` crossbar: ``Crossbar(conductances, r_row=..., ...)`` or ``config=``.

    ``conductances``: ``(rows, cols)`` tensor/array (S; linear cells, may require grad; read at
    every solve and re-validated when changed) or a ``devices`` object (``.shape``,
    ``.conductance()``, ``.current(v)``). ``gate_enable``: ``(rows,)`` bool, word-line gates of 1T1R
    arrays (default all on).
    """

    def __init__(self, conductances, *, config: CrossbarConfig | None = None, gate_enable=None, **options):
        if config is None:
            config = CrossbarConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        if not isinstance(config, CrossbarConfig):
            raise ValueError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        if _is_device(conductances):
            self.device_cells = conductances
            self._g_source = None
            shape = tuple(conductances.shape)
            if len(shape) != 2:
                raise ValueError(f"conductances (device object) must have a 2-D shape (rows, cols), got {shape}")
            ref = conductances.conductance()
            self.torch_device = ref.device
        else:
            self.device_cells = None
            self._g_source = conductance_tensor(conductances)
            g = self.g
            check_conductance_values(g)
            self._g_checked = g.detach().clone()
            shape = tuple(g.shape)
            self.torch_device = g.device
        self.rows, self.cols = shape
        self.gate_enable = gate_enable
        self._cache: dict = {}

    # ------------------------------------------------------------------ properties
    @property
    def g(self) -> Tensor | None:
        """Cell conductances (S) as float64: the tensor given (or its float64 image), None for devices."""
        src = self._g_source
        if src is None:
            return None
        return src if src.dtype == torch.float64 else src.to(torch.float64)

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
        """The current conductances, re-validated when they changed since the last check."""
        g = self.g
        if g is None:
            return torch.zeros(0, dtype=torch.float64, device=self.torch_device)
        if g.shape != self._g_checked.shape or not torch.equal(g.detach(), self._g_checked):
            check_conductance_values(g)
            self._g_checked = g.detach().clone()
        return g

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
        return CellModel(mem, lambda v: selector_iv(c.selector, c.selector_i_s, v0, v),
                         series_inverse=lambda i: selector_iv_inverse(c.selector, c.selector_i_s, v0, i))

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
    def _linear_solver(self, d_grid: Tensor, n_rhs: int, checked: bool = False):
        """A linear solver for grid-layout cell conductances ``d_grid`` ``(Bd, K, L)`` (S)."""
        return linear_solver(self.config, self._grid(), d_grid, n_rhs, checked=checked)

    def _ge_key(self, ge: Tensor) -> Tensor:
        """Cache key of effective conductances ``ge``: the validated snapshot itself when ``ge`` is
        the conductance tensor (0T1R: no copy, identity compare), else a copy of ``ge``."""
        src = self._g_source
        if (src is not None and self.config.topology == "0T1R" and src.dtype == torch.float64
                and ge.data_ptr() == src.data_ptr() and ge.shape == src.shape and ge.stride() == src.stride()):
            return self._g_checked
        return ge.detach().clone()

    def _hit(self, name: str, ge: Tensor):
        """The cache entry ``name`` if it was made for effective conductances equal to ``ge``."""
        hit = self._cache.get(name)
        if hit is None:
            return None
        key = hit[0]
        if key is getattr(self, "_g_checked", None) or (key.shape == ge.shape and torch.equal(key, ge)):
            return hit
        return None

    def _cached_linear(self, g: Tensor, n_rhs: int):
        """Factorisation of the linear array, cached until the effective conductances change."""
        ge = self.g_effective(g).detach()
        hit = self._hit("linear", ge)
        if hit is not None and hit[3] >= min(n_rhs, 8):
            return hit[1], hit[2]
        # conductances validated by _g_param (the 1T1R series combination stays in range)
        solver, method = self._linear_solver(self._t(ge).unsqueeze(0), n_rhs, checked=True)
        self._cache["linear"] = (self._ge_key(ge), solver, method, n_rhs)
        return solver, method

    # ------------------------------------------------------------------ engine (NodeSolve)
    def nodes(self, v_in: Tensor, v_bias: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Forward solve: grid-layout node voltages ``(x_p, x_q)`` and cell voltages ``x_p - x_q``
        (V; from the solver's own unknowns where it has them), no autograd graph."""
        s_p, s_q = self._sources(v_in, v_bias)
        z = torch.zeros(s_p.shape[0], *self._grid_shape(), dtype=torch.float64, device=v_in.device)
        if self.is_linear:
            solver, method = self._cached_linear(g, v_in.shape[0])
            self._last = (method, 0)
            if hasattr(solver, "solve_cells"):
                return solver.solve_cells(z, z, s_p, s_q)
            x_p, x_q = solver.solve(z, z, s_p, s_q)
        else:
            x_p, x_q = self._newton(s_p, s_q, g, z)
        return x_p, x_q, x_p - x_q

    def _grid_shape(self) -> tuple[int, int]:
        return (self.cols, self.rows) if self._transposed() else (self.rows, self.cols)

    def _newton(self, s_p: Tensor, s_q: Tensor, g: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        c, grid = self.config, self._grid()
        cells = self._grid_cells(g, slope=True)
        v_ref = float(torch.maximum(s_p.abs().max(), s_q.abs().max()))
        if v_ref == 0.0:
            self._last = ("newton", 0)
            return z, z.clone()
        i_ref, s_ref = cells(torch.full_like(z[:1], v_ref))
        if not (bool(torch.isfinite(i_ref).all()) and bool(torch.isfinite(s_ref).all())):
            raise _nonfinite("the cell current", f"the cell model returns NaN/inf at {v_ref:g} V across a cell "
                             "(the largest source voltage); the device I-V law does not hold there")
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
        return check_inputs(v_in, v_col_bias, self.rows, self.cols, self.torch_device)

    def _exact_nodes(self, v: Tensor, b: Tensor, g: Tensor):
        """Grid-layout ``(x_p, x_q)`` (Dirichlet nodes pinned, differentiable) and the cell
        voltages in crossbar layout ``v_row - v_col`` (V): the solver's value, with the derivative
        of the node-voltage difference."""
        needs = torch.is_grad_enabled() and (v.requires_grad or b.requires_grad or g.requires_grad)
        if needs and self.config.grad_mode == "exact":
            x_p, x_q, u = NodeSolve.apply(self, v, b, g)
        else:
            with torch.no_grad():
                x_p, x_q, u = self.nodes(v.detach(), b.detach(), g.detach())
        s_p, s_q = self._sources(v, b)
        x_p, x_q = pin(self._grid(), x_p, x_q, s_p, s_q)
        diff = x_p - x_q
        if diff.requires_grad:
            diff = diff + (u - diff).detach()
        else:
            diff = u
        sign = -1.0 if self._transposed() else 1.0
        return x_p, x_q, sign * self._t(diff)

    def _straight_through(self, exact: Tensor, v: Tensor, b: Tensor, g: Tensor) -> Tensor:
        if self.config.grad_mode != "ideal" or not torch.is_grad_enabled():
            return exact
        ge = self.g_effective(g)
        ideal = v @ ge - b * ge.sum(0)
        return exact.detach() + ideal - ideal.detach()

    def _cells_at(self, v: Tensor, b: Tensor, g: Tensor):
        """Node voltages (grid layout and crossbar layout), cell voltages and currents at the solution."""
        x_p, x_q, v_cell = self._exact_nodes(v, b, g)
        v_row, v_col = self._to_xbar(x_p, x_q)
        return x_p, x_q, v_row, v_col, v_cell, self._cell_current(v_cell, g)

    def full_solution(self, v_in, *, v_col_bias=None) -> CrossbarSolution:
        """Every node voltage and branch current for inputs ``v_in`` (V), always 2-D (batch first)."""
        v, b, _ = self._inputs(v_in, v_col_bias)
        return self._full_solution(v, b)

    def _full_solution(self, v: Tensor, b: Tensor) -> CrossbarSolution:
        g = self._g_param()
        x_p, x_q, v_row, v_col, v_cell, i_cell = self._cells_at(v, b, g)
        i_out = self._straight_through(i_cell.sum(-2), v, b, g)
        i_in = i_cell.sum(-1)
        power = (v * i_in).sum(-1) - (b * i_out).sum(-1)
        s_p, s_q = self._sources(v, b)
        with torch.no_grad():
            sign = -1.0 if self._transposed() else 1.0
            i_grid, slope = self._grid_cells(g, slope=True)(sign * self._t(v_cell.detach()))
            kcl = kcl_backward_error(self._grid(), x_p.detach(), x_q.detach(), i_grid, slope, s_p.detach(),
                                     s_q.detach())
        if not bool(torch.isfinite(kcl).all()):
            raise _nonfinite("the crossbar solution", "a node voltage or cell current came out NaN/inf; the cell "
                             "model's current is not finite at these cell voltages, or the conductances overflow")
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
            *_, i_cell = self._cells_at(v, b, g)
            out = self._straight_through(i_cell.sum(-2), v, b, g)
            # linear arrays: validated conductances and inputs give finite currents (no host read)
            if not self.is_linear and not bool(torch.isfinite(out).all()):
                raise _nonfinite("the output current", "a cell current came out NaN/inf; the cell model's current "
                                 "is not finite at these cell voltages, or the conductances overflow")
        return out[0] if one_d else out

    def _transfer_cached(self, g: Tensor) -> bool:
        return self._hit("transfer", self.g_effective(g).detach()) is not None

    def _transfer(self, g: Tensor) -> Tensor:
        if self._transfer_cached(g):
            return self._cache["transfer"][1]
        with torch.no_grad():
            ge = self.g_effective(g)
            a = transfer_matrix(self, g, ge)
        self._cache["transfer"] = (self._ge_key(ge), a)
        return a

    def transfer_matrix(self) -> Tensor:
        """Exact effective matrix ``A`` (S), ``(rows, cols)``: ``solve(v) == v @ A`` for linear
        arrays with the column ends at 0 V. Differentiable w.r.t. conductances in exact mode."""
        if not self.is_linear:
            raise ValueError("transfer_matrix() needs a linear array (topology 0T1R or 1T1R with "
                             "transistor='linear', and conductances given as a tensor)")
        g = self._g_param()
        if torch.is_grad_enabled() and g.requires_grad:
            eye = torch.eye(self.rows, dtype=torch.float64, device=self.torch_device)
            return self._full_solution(eye, torch.zeros(self.rows, self.cols, dtype=torch.float64,
                                                        device=self.torch_device)).i_out
        return self._transfer(g)

    def __repr__(self) -> str:
        return f"Crossbar({self.rows}x{self.cols}, {self.config})"
