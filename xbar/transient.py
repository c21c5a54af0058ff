"""Transient simulation of a crossbar of switching RRAM cells (write pulses, disturb).

The wires and terminations are resistive, so at every instant the array is a DC network of
nonlinear cells whose gaps move by the Stanford–PKU ODE (:mod:`devices.rram_physics`)::

    i_cell = I0·s·exp(-g/g0)·sinh(v_cell/V0)          (healthy cell; stuck cells: G·v_cell)
    KCL:     F(x; g, t) = 0                            (node voltages x, sources linear in t)
    dg/dt  = f(g, v_cell(x))                           (equation (2) of rram_physics)

a differential-algebraic system. It is integrated with a Heun-type predictor–corrector on an
adaptive step ``h`` (step ``t → t + h``; ``v_a`` = cell voltages at ``t``, known):

1. predictor: integrate the gaps over h with ``v_a`` held → ``g*``;
2. solve KCL at ``t + h`` with ``g*`` → ``v_b``;
3. corrector: integrate the gaps from their start values over h with the cell voltage ramping
   linearly from ``v_a`` to ``v_b`` → ``g(t + h)``;
4. solve KCL at ``t + h`` with ``g(t + h)`` → the cell voltages that start the next step.

The gap integration itself is adaptive per cell (:func:`devices.rram_physics.integrate_gap`,
gap change per internal step ≤ ``max_gap_step``), so the only coupling error is the
linear-ramp approximation of ``v_cell`` within one step; it scales with how far the gaps move
in the step (their feedback on ``v_cell`` through the wires and the other cells).

Error control: a step is accepted when no healthy cell's gap moved by more than
``max_gap_step`` (m): ``Δ = max|g(t + h) - g(t)| ≤ max_gap_step``. A rejected step is retried
with ``h ← h·max(0.2, 0.8·max_gap_step/Δ)``; after an accepted step the next step is
``h·min(4, 0.8·max_gap_step/Δ)``. Steps never cross an output time (the sources are linear
between output times, so every step sees a linear source ramp), and each output interval gets
at least ``substeps`` steps. Where nothing moves (below the switching threshold) a step spans
a whole output interval; while only half-selected cells creep the steps stay large.

KCL is solved by damped Newton on the free node voltages, warm-started from the previous
solution. The Jacobian (the nodal matrix with the cells' slopes ``dI/dV``, dominated by the
wires) is refactored only when a chord step with the last LU factors, possibly from an earlier
solve, failed to cut ``max|F|`` tenfold. Iterates are projected onto
``[min source, max source]`` and a backtracking line search halves the step until
``max|F|`` decreases; converged at ``max|F| ≤ newton_rtol × current scale`` (as
:mod:`xbar._nonlinear`). Topologies other than 0T1R fall back to the general (slower)
:meth:`xbar.Crossbar.full_solution` at every solve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from devices.rram_physics import gap_velocity, integrate_gap
from devices.validation import as_tensor

from ._errors import ConvergenceError
from ._nodal import DirectSolver
from .crossbar import Crossbar

Tensor = torch.Tensor

_DENSE_MAX_NODES = 600  # free nodes up to which the Jacobian is factorised densely


@dataclass
class TransientResult:
    """Waveforms at the output times: ``times`` (n,) s; ``gap`` (n, rows, cols) m;
    ``v_cell`` (n, rows, cols) V; ``i_cell`` (n, rows, cols) A; ``i_out`` (n, cols) A (current
    into the sense end of each column, ``sum_i i_cell``); ``steps`` accepted and ``rejected``
    integrator steps."""

    times: Tensor
    gap: Tensor
    v_cell: Tensor
    i_cell: Tensor
    i_out: Tensor
    steps: int = 0
    rejected: int = 0


# ------------------------------------------------------------------------------ KCL engines
class _NodalRRAM:
    """Warm-started Newton on the free node voltages of a 0T1R RRAM crossbar (numpy, float64).

    Every node of the two-layer grid (:mod:`xbar._nodal`) gets an index into the extended
    vector ``z = (x_free, s_p, s_q)``: free nodes their unknown, ideal-source nodes their
    source. Wires and terminations are two-terminal conductances between entries of ``z``;
    cells carry ``i = a·sinh(dv/V0) + b·dv`` from P to Q (``a`` healthy, ``b`` stuck).
    """

    def __init__(self, crossbar: Crossbar):
        self.xb, cfg = crossbar, crossbar.config
        self.grid = grid = crossbar._grid()
        self.K, self.L = grid.K, grid.L
        ids = DirectSolver.__new__(DirectSolver)  # only its node numbering is needed, no factors:
        ids.grid = grid
        ids._build_index()  # free-node ids, merged lines share one, ideal-source nodes get -1
        self.n = n = ids.n
        K, L = self.K, self.L
        self.ip = np.where(ids.pid >= 0, ids.pid, n + np.arange(K)[:, None]).astype(np.int64)
        self.iq = np.where(ids.qid >= 0, ids.qid, n + K + np.arange(L)[None, :]).astype(np.int64)
        a, b, g = [], [], []

        def link(ia, ib, cond):
            a.append(ia.ravel()), b.append(ib.ravel()), g.append(np.broadcast_to(cond, ia.shape).ravel())

        if not grid.merged_p and L > 1:
            link(self.ip[:, :-1], self.ip[:, 1:], grid.g_wire_p)
        if not grid.merged_q and K > 1:
            link(self.iq[:-1, :], self.iq[1:, :], grid.g_wire_q)
        src_p, src_q = n + np.arange(K), n + K + np.arange(L)
        for cond, ia, ib in ((grid.p_first, self.ip[:, 0], src_p), (grid.p_last, self.ip[:, -1], src_p),
                             (grid.q_first, self.iq[0, :], src_q), (grid.q_last, self.iq[-1, :], src_q)):
            if 0.0 < cond < math.inf:
                link(ia, ib, cond)
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)  # noqa: E731
        self.wa, self.wb, self.wg = cat(a, np.int64), cat(b, np.int64), cat(g, np.float64)
        self.ca, self.cb = self.ip.ravel(), self.iq.ravel()
        self.j0 = self._stamp(self.wa, self.wb, self.wg)
        finite = lambda c: c if c < math.inf else 0.0  # noqa: E731
        self.g_node = (2 * finite(grid.g_wire_p) + 2 * finite(grid.g_wire_q)
                       + max(finite(grid.p_first), finite(grid.p_last), finite(grid.q_first), finite(grid.q_last)))
        self.rtol, self.max_iter = cfg.newton_rtol, cfg.newton_max_iter
        self.x = np.zeros(n)
        self._lu = None
        self.v0 = crossbar.device_cells.params.v0

    # ---------------------------------------------------------------- assembly
    def _stamp(self, ia: np.ndarray, ib: np.ndarray, cond: np.ndarray):
        """Nodal matrix (S) of conductances ``cond`` between z-entries ``ia``, ``ib`` (free part)."""
        n = self.n
        fa, fb = ia < n, ib < n
        both = fa & fb
        r = np.concatenate([ia[fa], ib[fb], ia[both], ib[both]])
        c = np.concatenate([ia[fa], ib[fb], ib[both], ia[both]])
        v = np.concatenate([cond[fa], cond[fb], -cond[both], -cond[both]])
        m = sp.coo_matrix((v, (r, c)), shape=(n, n))
        return m.toarray() if n <= _DENSE_MAX_NODES else m.tocsc()

    def _factor(self, slope: np.ndarray) -> None:
        j = self.j0 + self._stamp(self.ca, self.cb, slope)
        if self.n <= _DENSE_MAX_NODES:
            lu = sla.lu_factor(j, check_finite=False)
            self._lu = lambda r: sla.lu_solve(lu, r, check_finite=False)
        else:
            self._lu = spla.splu(sp.csc_matrix(j), permc_spec="MMD_AT_PLUS_A").solve

    # ---------------------------------------------------------------- residual
    def _evaluate(self, x: np.ndarray, z_src: np.ndarray, a: np.ndarray, b: np.ndarray):
        """KCL residual (A) at the free nodes, cell currents P→Q (A) and slopes (S)."""
        z = np.concatenate([x, z_src])
        dv = z[self.ca] - z[self.cb]
        u = dv / self.v0
        i_cell = a * np.sinh(u) + b * dv
        slope = a * np.cosh(u) / self.v0 + b
        i_w = self.wg * (z[self.wa] - z[self.wb])
        m = z.size
        f = (np.bincount(self.ca, i_cell, m) - np.bincount(self.cb, i_cell, m)
             + np.bincount(self.wa, i_w, m) - np.bincount(self.wb, i_w, m))[:self.n]
        grid_i = i_cell.reshape(self.K, self.L)
        scale = max(np.abs(i_cell).max(), np.abs(grid_i.sum(0)).max(), np.abs(grid_i.sum(1)).max())
        return f, i_cell, slope, (np.abs(f).max() if f.size else 0.0), scale

    def solve(self, s_p: np.ndarray, s_q: np.ndarray, a: np.ndarray, b: np.ndarray):
        """Cell voltage differences ``x_p - x_q`` (V, grid layout, flat) for sources ``s_p``, ``s_q``
        (V) and cell coefficients ``a`` (A), ``b`` (S); warm-started from the last solution."""
        z_src = np.concatenate([s_p, s_q])
        lo, hi = float(z_src.min()), float(z_src.max())
        x = np.clip(self.x, lo, hi)
        f, i_cell, slope, fn, scale = self._evaluate(x, z_src, a, b)
        floor_v = 8 * np.finfo(np.float64).eps * max(abs(lo), abs(hi))
        fast, fresh = True, False
        for it in range(self.max_iter + 1):
            if fn <= max(self.rtol * scale, floor_v * (self.g_node + slope.max())) or fn == 0.0:
                self.x = x
                z = np.concatenate([x, z_src])
                return z[self.ca] - z[self.cb], i_cell
            if it == self.max_iter:
                break
            if self._lu is None or not fast:  # chord steps while they contract the residual 10x
                self._factor(slope)
                fresh = True
            d = self._lu(-f)
            alpha, accepted, fn_old = 1.0, False, fn
            for _ in range(40):
                cand = np.clip(x + alpha * d, lo, hi)
                trial = self._evaluate(cand, z_src, a, b)
                if trial[3] < fn:
                    x, (f, i_cell, slope, fn, scale), accepted = cand, trial, True
                    break
                alpha *= 0.5
            if not accepted and fresh:
                break
            fast, fresh = accepted and fn <= 0.1 * fn_old, False
        raise ConvergenceError("Newton solve of the RRAM crossbar transient", fn / max(scale, 1e-300), it, self.rtol)


class _FastSolve:
    """KCL at one instant for a 0T1R RRAM crossbar: ``(v_rows, v_cols, gap) -> (v_cell, i_cell)``."""

    def __init__(self, crossbar: Crossbar):
        self.xb = crossbar
        self.nodal = _NodalRRAM(crossbar)
        dev = crossbar.device_cells
        p = dev.params
        stuck = dev.stuck.cpu().numpy()
        self.healthy = stuck == 0
        self.b = np.where(stuck == 1, dev.g_max, np.where(stuck == -1, dev.g_min, 0.0))
        self.i0 = p.i0 * dev.i0_scale.detach().cpu().numpy()
        self.g0 = p.g0
        self.sign = -1.0 if crossbar._transposed() else 1.0

    def _grid(self, m: np.ndarray) -> np.ndarray:
        return (m.T if self.xb._transposed() else m).ravel()

    def __call__(self, v_rows: np.ndarray, v_cols: np.ndarray, gap: Tensor) -> tuple[np.ndarray, np.ndarray]:
        a = np.where(self.healthy, self.i0 * np.exp(-gap.detach().cpu().numpy() / self.g0), 0.0)
        s_p, s_q = (v_cols, v_rows) if self.xb._transposed() else (v_rows, v_cols)
        dv, i_grid = self.nodal.solve(s_p, s_q, self._grid(a), self._grid(self.b))
        shape = (self.nodal.K, self.nodal.L)
        dv, i_grid = self.sign * dv.reshape(shape), self.sign * i_grid.reshape(shape)
        return (dv.T, i_grid.T) if self.xb._transposed() else (dv, i_grid)


class _GenericSolve:
    """KCL at one instant through :meth:`Crossbar.full_solution` (1T1R / 1S1R RRAM arrays)."""

    def __init__(self, crossbar: Crossbar):
        self.xb = crossbar

    def __call__(self, v_rows: np.ndarray, v_cols: np.ndarray, gap: Tensor) -> tuple[np.ndarray, np.ndarray]:
        dev = self.xb.device_cells
        kept, dev.gap = dev.gap, gap
        try:
            sol = self.xb.full_solution(torch.from_numpy(v_rows).reshape(1, -1),
                                        v_col_bias=torch.from_numpy(v_cols).reshape(1, -1))
        finally:
            dev.gap = kept
        return sol.v_cell[0].detach().cpu().numpy(), sol.i_cell[0].detach().cpu().numpy()


# ------------------------------------------------------------------------------ inputs
def _check_inputs(crossbar, times, v_rows, v_cols, substeps, max_gap_step):
    """Validated float64 ``(times (n,), v_rows (n, rows), v_cols (n, cols))`` (devices.validation)."""
    if not isinstance(crossbar, Crossbar):
        raise ValueError(f"crossbar must be an xbar.Crossbar, got {type(crossbar).__name__}")
    dev = crossbar.device_cells
    if dev is None or getattr(dev, "family", None) != "rram":
        raise ValueError("rram_crossbar_transient needs a Crossbar whose cells are a devices.RRAM")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be an int >= 1 (minimum steps per output interval), got {substeps!r}")
    if isinstance(max_gap_step, bool) or not isinstance(max_gap_step, (int, float)) \
            or not math.isfinite(max_gap_step) or not 0.0 < max_gap_step <= 1e-9:
        raise ValueError(f"max_gap_step must be in (0, 1e-9] m, got {max_gap_step!r}")
    times = as_tensor("times", times, dtype=torch.float64, device="cpu").detach()
    if times.dim() != 1 or times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be a 1-D array of at least two finite, strictly increasing values (s), "
                         f"got shape {tuple(times.shape)}")
    n = times.numel()
    out = []
    for name, v, width, what in (("v_rows", v_rows, crossbar.rows, "rows"), ("v_cols", v_cols, crossbar.cols, "cols")):
        v = as_tensor(name, v, dtype=torch.float64, device="cpu").detach()
        if tuple(v.shape) != (n, width):
            raise ValueError(f"{name} must have shape (len(times), {what}) = ({n}, {width}) in V, got {tuple(v.shape)}")
        out.append(v)
    return times, out[0], out[1]


# ------------------------------------------------------------------------------ integrator
def _at_bound(p, gap: Tensor, vel: Tensor) -> Tensor:
    """Cells held by a gap bound: at ``gap_min`` shrinking or at ``gap_max`` growing."""
    return ((gap <= p.gap_min) & (vel < 0)) | ((gap >= p.gap_max) & (vel > 0))


def _snap(p, new: Tensor, old: Tensor, max_gap_step: float) -> Tensor:
    """Put a gap that moved towards a bound and ended within ``max_gap_step / 2`` of it onto the
    bound. The error is below the integrator's resolution, and it keeps
    :func:`devices.rram_physics.integrate_gap` from stalling next to a bound (there its
    midpoint evaluation lands on the bound, is blocked, and the step advances time without
    moving the gap)."""
    near_min = (new < old) & (new - p.gap_min < 0.5 * max_gap_step)
    near_max = (new > old) & (p.gap_max - new < 0.5 * max_gap_step)
    return torch.where(near_min, torch.full_like(new, p.gap_min), torch.where(near_max, torch.full_like(new, p.gap_max), new))


def rram_crossbar_transient(crossbar: Crossbar, times, v_rows, v_cols, *, substeps: int = 1,
                            max_gap_step: float = 2e-12) -> TransientResult:
    """Simulate ``crossbar`` (cells: a :class:`devices.RRAM`) under piecewise-linear sources.

    Args:
        crossbar: the array; its ``config`` gives wires, terminations and topology.
        times: (n,) strictly increasing output times (s), n >= 2; the sources are linear in
            between (as SPICE PWL sources with these breakpoints).
        v_rows: (n, rows) row source voltages (V); v_cols: (n, cols) column-end voltages (V).
        substeps: minimum integrator steps per output interval (the adaptive control adds more).
        max_gap_step: largest gap change (m) of any cell in one step (error control, see the
            module docstring); also the internal step bound of the gap integration.
    Returns:
        :class:`TransientResult` at the output times. The device's gaps are advanced in place
        (its state after the call is the final state).
    Raises:
        ValueError: bad arguments (message names the argument and its allowed range).
        ConvergenceError: a KCL solve did not converge.
    """
    times, v_rows, v_cols = _check_inputs(crossbar, times, v_rows, v_cols, substeps, max_gap_step)
    dev = crossbar.device_cells
    solve = _FastSolve(crossbar) if crossbar.config.topology == "0T1R" else _GenericSolve(crossbar)
    p = dev.params.gap_params()
    healthy = dev.stuck == 0
    vr, vc, tt = v_rows.numpy(), v_cols.numpy(), times.numpy()

    def advance(gap, v_start, duration, v_end=None):
        new = integrate_gap(p, gap, v_start, duration, v_end, max_gap_step=max_gap_step,
                            i0_scale=dev.i0_scale, rate_scale=dev.rate_scale)
        return _snap(p, torch.where(healthy, new, gap), gap, max_gap_step)

    def rate_limit(gap, v_cell):
        """Step (s) in which the fastest healthy cell moves ``max_gap_step`` at the rate (2) at ``v_cell``."""
        vel = gap_velocity(p, gap, torch.from_numpy(v_cell), dev.i0_scale, dev.rate_scale)
        vel = torch.where(healthy & ~_at_bound(p, gap, vel), vel, torch.zeros_like(vel)).abs().max()
        return max_gap_step / float(vel) if float(vel) > 0.0 else math.inf

    gap = dev.gap.detach().clone()
    v_a, i_a = solve(vr[0], vc[0], gap)
    out = {"gap": [gap.clone()], "v": [v_a], "i": [i_a]}
    h_nat, steps, rejected = rate_limit(gap, v_a), 0, 0
    for k in range(tt.size - 1):
        span = float(tt[k + 1] - tt[k])
        h_max, h_min, t_loc = span / substeps, span * 1e-7, 0.0
        while t_loc < span:
            h = min(h_nat, h_max, span - t_loc)
            if span - t_loc - h < 1e-9 * span:
                h = span - t_loc  # land exactly on the output time
            frac = (t_loc + h) / span
            src_r, src_c = vr[k] + frac * (vr[k + 1] - vr[k]), vc[k] + frac * (vc[k + 1] - vc[k])
            va_t = torch.from_numpy(v_a)
            g_pred = advance(gap, va_t, h)
            v_b, _ = solve(src_r, src_c, g_pred)
            h_b = rate_limit(g_pred, v_b)
            if h > 10.0 * h_b and h > h_min:  # the end of the step moves far faster: shorten first
                rejected += 1
                h_nat = max(4.0 * h_b, 0.05 * h)
                continue
            g_new = advance(gap, va_t, h, torch.from_numpy(v_b))
            delta = float((g_new - gap).abs().max())
            if delta > max_gap_step and h > h_min:
                rejected += 1
                h_nat = h * max(0.2, 0.8 * max_gap_step / delta)
                continue
            gap, t_loc, steps = g_new, (span if frac == 1.0 else t_loc + h), steps + 1
            v_a, i_a = solve(src_r, src_c, gap)
            grow = 4.0 if delta == 0.0 else min(4.0, 0.8 * max_gap_step / delta)
            h_nat = min(h * grow, rate_limit(gap, v_a))
            if steps + rejected > 10_000_000:
                raise RuntimeError("rram_crossbar_transient exceeded 10^7 steps; raise max_gap_step")
        out["gap"].append(gap.clone())
        out["v"].append(v_a)
        out["i"].append(i_a)
    dev.gap = gap
    i_cell = torch.from_numpy(np.stack(out["i"]))
    return TransientResult(times, torch.stack(out["gap"]), torch.from_numpy(np.stack(out["v"])), i_cell,
                           i_cell.sum(-2), steps, rejected)
