"""Transient simulation of a crossbar of switching RRAM cells (write pulses, disturb).

The wires and terminations are resistive, so at every instant the array is a DC network of
nonlinear cells ``I = I0·s·exp(-g/g0)·sinh(V/V0)`` whose gaps move by the Stanford–PKU ODE
(:mod:`devices.rram_physics`). Between output times ``t_k → t_{k+1}`` (split into
``substeps`` equal steps of length h) a Heun-type predictor–corrector couples the two:

1. solve the array at the step's start with the present gaps → cell voltages ``v_a``;
2. predictor: integrate the gaps over h with ``v_a`` held → ``g*``;
3. solve the array at the step's end with ``g*`` and the end source voltages → ``v_b``;
4. corrector: integrate the gaps from their start values over h with the cell voltage
   ramping linearly from ``v_a`` to ``v_b``.

The gap integration itself is adaptive (:func:`devices.rram_physics.integrate_gap`), so the
only coupling error is the linear-ramp approximation of the cell voltage within one step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from devices.rram_physics import integrate_gap

from .crossbar import Crossbar

Tensor = torch.Tensor


@dataclass
class TransientResult:
    """Waveforms at the output times: ``times`` (n,) s; ``gap`` (n, rows, cols) m;
    ``v_cell`` (n, rows, cols) V; ``i_cell`` (n, rows, cols) A; ``i_out`` (n, cols) A."""

    times: Tensor
    gap: Tensor
    v_cell: Tensor
    i_cell: Tensor
    i_out: Tensor


def rram_crossbar_transient(crossbar: Crossbar, times, v_rows, v_cols, *, substeps: int = 4,
                            max_gap_step: float = 2e-12) -> TransientResult:
    """Simulate ``crossbar`` (cells: a :class:`devices.RRAM`) under piecewise-linear sources.

    Args:
        times: (n,) increasing output times (s); the sources are linear in between.
        v_rows: (n, rows) row source voltages (V); v_cols: (n, cols) column-end voltages (V).
        substeps: predictor–corrector steps per output interval.
    The device's gaps are advanced in place (its state after the call is the final state).
    """
    dev = crossbar.device_cells
    if dev is None or getattr(dev, "family", None) != "rram":
        raise ValueError("rram_crossbar_transient needs a Crossbar whose cells are a devices.RRAM")
    if int(substeps) < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must hold at least two strictly increasing values (s)")
    n = times.numel()
    v_rows = torch.as_tensor(v_rows, dtype=torch.float64).reshape(n, crossbar.rows)
    v_cols = torch.as_tensor(v_cols, dtype=torch.float64).reshape(n, crossbar.cols)
    p = dev.params.gap_params()
    healthy = dev.stuck == 0

    def solve(k: int, frac: float):
        vr = v_rows[k] + frac * (v_rows[k + 1] - v_rows[k]) if frac else v_rows[k]
        vc = v_cols[k] + frac * (v_cols[k + 1] - v_cols[k]) if frac else v_cols[k]
        return crossbar.full_solution(vr.reshape(1, -1), v_col_bias=vc.reshape(1, -1))

    def advance(gap, v_start, duration, v_end=None):
        new = integrate_gap(p, gap, v_start, duration, v_end, max_gap_step=max_gap_step,
                            i0_scale=dev.i0_scale, rate_scale=dev.rate_scale)
        return torch.where(healthy, new, gap)

    sol = solve(0, 0.0)
    gaps, v_cell, i_cell, i_out = [dev.gap.clone()], [sol.v_cell[0]], [sol.i_cell[0]], [sol.i_out[0]]
    for k in range(n - 1):
        h = float(times[k + 1] - times[k]) / substeps
        for s in range(substeps):
            start_gap = dev.gap.clone()
            v_a = sol.v_cell[0].detach()
            dev.gap = advance(start_gap, v_a, h)
            v_b = solve(k, (s + 1) / substeps).v_cell[0].detach()
            dev.gap = advance(start_gap, v_a, h, v_b)
            sol = solve(k, (s + 1) / substeps)
        gaps.append(dev.gap.clone())
        v_cell.append(sol.v_cell[0])
        i_cell.append(sol.i_cell[0])
        i_out.append(sol.i_out[0])
    return TransientResult(times, torch.stack(gaps), torch.stack(v_cell).detach(), torch.stack(i_cell).detach(),
                           torch.stack(i_out).detach())
