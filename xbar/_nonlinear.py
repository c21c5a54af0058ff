"""Damped Newton-Raphson for two-layer grids with nonlinear (monotone) cells.

Unknowns are the node voltages ``x = (x_p, x_q)`` (V); the residual ``F(x)`` is the KCL
current (A) leaving every free node (:func:`xbar._nodal.residual`). Each step solves::

    J(x) dx = -F(x),    J = nodal matrix with the cells' differential conductances dI/dV

``J`` has the linear array's structure (SPD for monotone cells), so the same exact linear
solvers are reused. Globalisation: iterates are projected onto ``[min source, max source]``
(the maximum principle of a network of monotone two-terminals bounds every node voltage by
the source voltages), and a backtracking line search halves the step until the residual's
max-norm decreases. Converged when ``max|F| <= rtol * current scale`` for every batch element,
where the scale is the largest cell or line current, or when ``max|F|`` is at the rounding
floor of the node equations, ``8 eps (largest node conductance) max|v_source|`` (a wire of
1 S at 1 V cannot resolve currents below ~1e-16 A); otherwise :class:`ConvergenceError`.
"""
from __future__ import annotations

from typing import Callable

import torch

from ._linear import ConvergenceError
from ._nodal import Grid, residual

Tensor = torch.Tensor


def current_scale(i_cell: Tensor) -> Tensor:
    """Per-batch current scale (A): the largest cell, row-line or column-line current."""
    b = i_cell.shape[0]
    parts = [i_cell.abs().reshape(b, -1).amax(1), i_cell.sum(-1).abs().amax(-1), i_cell.sum(-2).abs().amax(-1)]
    return torch.stack(parts, 0).amax(0)


def _norm(f_p: Tensor, f_q: Tensor) -> Tensor:
    b = f_p.shape[0]
    return torch.maximum(f_p.abs().reshape(b, -1).amax(1), f_q.abs().reshape(b, -1).amax(1))


def newton(grid: Grid, cells: Callable[[Tensor], tuple[Tensor, Tensor]], solver_for: Callable,
           x_p: Tensor, x_q: Tensor, s_p: Tensor, s_q: Tensor, *, rtol: float, max_iter: int,
           max_halvings: int = 40) -> tuple[Tensor, Tensor, int, float]:
    """Solve ``F(x) = 0`` from ``(x_p, x_q)``; ``cells(x_p - x_q)`` returns (current, slope)
    in grid layout; ``solver_for(slope)`` returns a linear solver with ``.solve(r_p, r_q, s_p, s_q)``.

    Returns ``(x_p, x_q, iterations, worst relative residual)``.
    """
    B = x_p.shape[0]
    lo = torch.minimum(s_p.amin(-1), s_q.amin(-1)).view(B, 1, 1)
    hi = torch.maximum(s_p.amax(-1), s_q.amax(-1)).view(B, 1, 1)

    def evaluate(xp, xq):
        try:
            i, slope = cells(xp - xq)
        except ConvergenceError:
            return None
        f_p, f_q = residual(grid, xp, xq, i, s_p, s_q)
        return f_p, f_q, slope, _norm(f_p, f_q), current_scale(i)

    state = evaluate(x_p, x_q)
    if state is None:
        raise ConvergenceError("Newton crossbar solve (initial point)", float("inf"), 0, rtol)
    zeros = torch.zeros_like(s_p), torch.zeros_like(s_q)
    finite = lambda g: g if g < float("inf") else 0.0  # noqa: E731
    g_node = (2 * finite(grid.g_wire_p) + 2 * finite(grid.g_wire_q)
              + max(finite(grid.p_first), finite(grid.p_last), finite(grid.q_first), finite(grid.q_last)))
    v_max = torch.maximum(hi.abs(), lo.abs()).view(B)
    for it in range(max_iter + 1):
        f_p, f_q, slope, fn, scale = state
        rel = fn / scale.clamp_min(1e-300)
        floor = 8 * torch.finfo(x_p.dtype).eps * (g_node + slope.reshape(B, -1).amax(1)) * v_max
        ok = (fn <= torch.maximum(rtol * scale, floor)) | (fn == 0)
        if bool(ok.all()):
            return x_p, x_q, it, float(rel.max())
        if it == max_iter:
            break
        d_p, d_q = solver_for(slope.clamp_min(0.0)).solve(-f_p, -f_q, *zeros)
        alpha = torch.ones(B, 1, 1, dtype=x_p.dtype, device=x_p.device)
        pending = ~ok
        new_p, new_q, new_state = x_p, x_q, state
        for _ in range(max_halvings):
            cand_p = torch.maximum(torch.minimum(x_p + alpha * d_p, hi), lo)
            cand_q = torch.maximum(torch.minimum(x_q + alpha * d_q, hi), lo)
            trial = evaluate(cand_p, cand_q)
            if trial is not None:
                better = (trial[3] < fn) & pending
                sel = better.view(B, 1, 1)
                new_p = torch.where(sel, cand_p, new_p)
                new_q = torch.where(sel, cand_q, new_q)
                new_state = tuple(torch.where(better.view(-1, *[1] * (a.dim() - 1)), a, b)
                                  for a, b in zip(trial, new_state))
                pending = pending & ~better
            if not bool(pending.any()):
                break
            alpha = torch.where(pending.view(B, 1, 1), 0.5 * alpha, alpha)
        if bool(pending.any()):  # no decrease possible: stagnated at the rounding floor or stuck
            break
        x_p, x_q, state = new_p, new_q, new_state
    f_p, f_q, slope, fn, scale = state
    worst = float((fn / scale.clamp_min(1e-300)).max())
    raise ConvergenceError("Newton crossbar solve", worst, it, rtol)
