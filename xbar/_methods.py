"""Choice of the linear solver for a crossbar's (linearised) nodal problem.

Methods (:class:`xbar.CrossbarConfig` ``method``):

* ``"block"`` / ``"cg"`` -- the structured nodal solvers of :mod:`xbar._linear` (finite wires);
* ``"wire"`` -- the cell-voltage formulation of :mod:`xbar._wire` (any resistance, including 0);
* ``"direct"`` -- sparse LU of the assembled nodal matrix (:class:`xbar._nodal.DirectSolver`, CPU);
* ``"auto"`` -- the fastest one that is exact for the case at hand (rules below).

Rounding of the nodal formulation: its diagonals add the wire conductance ``g_wire`` to the end
(driver / sense) conductance ``g_end``, so a relative error of about ``eps g_wire / g_end`` is
unavoidable (measured: r_row = r_col = 1e-12 Ohm behind 1 Ohm drivers gives 3e-4; 1e-9 Ohm gives
2e-7; 1e-6 Ohm gives 2e-10). :func:`nodal_rounding` is that estimate. ``"auto"`` switches to the
cell-voltage formulation, which never forms ``g_wire``, above :data:`AUTO_WIRE_ROUNDING`; an
explicitly chosen nodal method (block, cg, direct) raises ``ValueError`` above
:data:`MAX_NODAL_ROUNDING` instead of returning a silently inexact result.

``"auto"`` rules (measured on one CPU core, see ``bench/solver.py``):

1. a 0-Ohm wire, or nodal rounding above :data:`AUTO_WIRE_ROUNDING`: ``"wire"`` (exact), unless
   the IR-drop strength bound of the cell-voltage system exceeds :data:`WIRE_RHO_MAX` on CPU (many
   CG iterations), then ``"direct"``;
2. otherwise ``"block"`` when the dense blocks fit (``block_max_bytes``, ``L <= 512``) and there
   are at least :func:`block_min_rhs` right-hand sides (the block factorisation costs
   ``O(K L^3)`` and pays off only over many right-hand sides on small arrays), else ``"cg"``.
   Batches of at least ``transfer_batch_ratio * rows`` inputs use the transfer matrix instead
   (:meth:`xbar.Crossbar.solve`).
"""
from __future__ import annotations

import math

import torch

from ._linear import StructuredSolver
from ._nodal import DirectSolver, Grid
from ._wire import WireSolver

Tensor = torch.Tensor

#: nodal rounding estimate above which "auto" uses the cell-voltage formulation
AUTO_WIRE_ROUNDING = 1e-10
#: nodal rounding estimate above which an explicit nodal method raises
MAX_NODAL_ROUNDING = 1e-8
#: largest IR-drop strength bound for which "auto" uses the cell-voltage formulation on CPU
#: when a wire is ideal (0 Ohm); CG needs about sqrt(1 + rho) ln(2 / rtol) / 2 iterations
WIRE_RHO_MAX = 4.0

_EPS = float(torch.finfo(torch.float64).eps)


def nodal_rounding(grid: Grid) -> float:
    """Estimated relative rounding error of the nodal formulation: ``eps max(g_wire) / min(g_end)``."""
    wires = [g for g in (grid.g_wire_p, grid.g_wire_q) if math.isfinite(g)]
    ends = [g for g in (grid.p_first, grid.p_last, grid.q_first, grid.q_last) if 0.0 < g < math.inf]
    if not wires or not ends:
        return 0.0
    return _EPS * max(wires) / min(ends)


def block_min_rhs(L: int) -> float:
    """Right-hand sides from which a fresh block factorisation beats the compiled CG (measured on
    one core, set-up included: at 8..128 cells a side CG was 2-60x faster for 1..32 right-hand
    sides; the block method won only at 32 x 32 with 128 right-hand sides)."""
    return 4 * L if L <= 32 else math.inf


#: largest cell conductance or slope (S) accepted (as xbar.crossbar.G_MAX)
D_MAX = 1e100


def check_cells(d_grid: Tensor) -> None:
    """Cell conductances / Newton slopes must be finite, >= 0 and <= :data:`D_MAX` (one host read)."""
    lo, hi = (float(x) for x in torch.stack(torch.aminmax(d_grid)).tolist()) if d_grid.numel() else (0.0, 0.0)
    if not (lo >= 0.0 and hi <= D_MAX):
        raise ValueError(f"cell conductances (Newton slopes dI/dV for nonlinear cells) must be finite, >= 0 and "
                         f"<= {D_MAX:g} S, got values in [{lo:g}, {hi:g}] S: the cell model's current is not "
                         f"finite or overflows at these cell voltages")


def linear_solver(config, grid: Grid, d_grid: Tensor, n_rhs: int, *, checked: bool = False):
    """``(solver, method)`` for cell conductances (or Newton slopes) ``d_grid`` ``(Bd, K, L)`` (S);
    ``checked``: the values were already validated (:func:`check_cells` is skipped, no host read)."""
    if not checked:
        check_cells(d_grid)
    method = config.method
    rounding = nodal_rounding(grid)
    kw = dict(cg_rtol=config.cg_rtol, cg_max_iter=config.cg_max_iter, use_graph=config.cuda_graphs)
    if method == "auto":
        if not grid.structured or rounding > AUTO_WIRE_ROUNDING:
            wire = WireSolver(grid, d_grid, **kw)
            if rounding > AUTO_WIRE_ROUNDING or d_grid.device.type != "cpu" or wire.rho_bound() <= WIRE_RHO_MAX:
                return wire, "wire"
            return DirectSolver(grid, d_grid), "direct"
        Bd, K, L = d_grid.shape
        fits = 2 * 8 * Bd * K * L * L <= config.block_max_bytes and L <= 512
        method = "block" if fits and n_rhs >= block_min_rhs(L) else "cg"
    elif method != "wire" and rounding > MAX_NODAL_ROUNDING:
        raise ValueError(
            f"method={method!r} would lose precision: the wire conductance is {rounding / _EPS:.3g} times the "
            f"smallest driver/sense conductance, so the nodal equations carry a relative rounding error of "
            f"about {rounding:.1e}; use method='auto' or 'wire' (exact for any wire resistance), or larger "
            f"r_row/r_col relative to r_source/r_sense")
    if method == "wire":
        return WireSolver(grid, d_grid, **kw), "wire"
    if method == "direct" or not grid.structured:
        return DirectSolver(grid, d_grid), "direct"
    return StructuredSolver(grid, d_grid, method=method, backend=config.backend, n_rhs=n_rhs, **kw), method
