"""Validate memxbar's crossbar solution against ngspice: one call, one report.

``validate(crossbar, v)`` exports the crossbar's operating point (:mod:`.crossbar_export`),
runs ngspice, solves the same circuit with memxbar, and compares

* output currents: ``max_j |I_spice,j − I_memxbar,j| / max_j |I_spice,j|``;
* node voltages (every row- and column-wire node): ``max |ΔV| / max |V_spice|``;

and both wall times (memxbar's includes building the solver; ngspice's is the simulation call,
netlist parsing included, netlist construction excluded). Linear arrays must agree to 1e-8
(the default tolerance); nonlinear ones to the tolerance requested (default 1e-6). The report
passes when both errors are finite and ``<= tolerance``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .crossbar_export import crossbar_netlist
from .ngspice import run_netlist

#: default tolerances (relative): exact linear solve vs nonlinear Newton solves
TOL_LINEAR, TOL_NONLINEAR = 1e-8, 1e-6


@dataclass
class ValidationReport:
    """Result of :func:`validate` (errors are relative, times in s).

    ``cells`` is ``"linear G"`` or the device class name; ``access`` the series element
    (``"-"`` for 0T1R, ``"linear transistor"``, ``"EKV transistor"``, ``"sinh selector"`` or
    ``"exp selector"``); ``linear`` whether the whole array is linear.
    """

    rows: int
    cols: int
    topology: str
    cells: str
    access: str
    linear: bool
    max_rel_err_current: float
    max_rel_err_voltage: float
    t_spice: float
    t_memxbar: float
    tolerance: float
    passed: bool
    backend: str

    @property
    def speedup(self) -> float:
        """``t_spice / t_memxbar`` (> 1: memxbar is faster)."""
        return self.t_spice / self.t_memxbar if self.t_memxbar > 0 else float("inf")

    def as_dict(self) -> dict:
        return asdict(self) | {"speedup": self.speedup}

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        access = "" if self.access == "-" else f", {self.access}"
        return (f"{verdict} {self.rows}x{self.cols} {self.topology} ({self.cells} cells{access}): "
                f"max rel. error currents {self.max_rel_err_current:.2e}, node voltages "
                f"{self.max_rel_err_voltage:.2e} (tolerance {self.tolerance:.0e}); "
                f"ngspice {self.t_spice * 1e3:.1f} ms ({self.backend}), memxbar {self.t_memxbar * 1e3:.2f} ms, "
                f"speed ratio ngspice/memxbar {self.speedup:.3g}")


def spice_solution(crossbar, v_in, *, v_col_bias=None, backend: str = "auto", ngspice_binary: str = "ngspice"):
    """ngspice's ``(i_out (cols,) A, v_row (rows, cols) V, v_col (rows, cols) V, result)`` for one
    input vector ``v_in`` (rows,) V; ``i_out`` is the current into the column's sense end(s)."""
    net = crossbar_netlist(crossbar, v_in, v_col_bias=v_col_bias)
    res = run_netlist(net.render("ngspice"), backend=backend, ngspice_binary=ngspice_binary)
    rows, cols = crossbar.rows, crossbar.cols
    v_row = np.array([[res[f"row_{i}_{j}"][0] for j in range(cols)] for i in range(rows)])
    v_col = np.array([[res[f"col_{i}_{j}"][0] for j in range(cols)] for i in range(rows)])
    i_out = np.array([res[f"vsense_{j}#branch"][0] for j in range(cols)])
    if crossbar.config.col_sense == "both" and rows > 1:
        i_out = i_out + np.array([res[f"vsense_{j}_b#branch"][0] for j in range(cols)])
    return i_out, v_row, v_col, res


def _access(cfg) -> str:
    if cfg.topology == "1T1R":
        return "linear transistor" if cfg.transistor == "linear" else "EKV transistor"
    if cfg.topology == "1S1R":
        return f"{cfg.selector} selector"
    return "-"


def _rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """``max |a − ref| / max |ref|`` (inf for non-finite values)."""
    if not (np.isfinite(a).all() and np.isfinite(ref).all()):
        return float("inf")
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-300))


def _memxbar_solution(crossbar, v: torch.Tensor, v_col_bias):
    """memxbar's ``(i_out, node voltages, wall time)`` from a freshly built solver."""
    bias = None if v_col_bias is None else torch.as_tensor(v_col_bias, dtype=torch.float64).reshape(1, -1)
    start = time.perf_counter()
    fresh = type(crossbar)(crossbar.device_cells if crossbar.device_cells is not None else crossbar.g,
                           config=crossbar.config, gate_enable=crossbar.gate_enable)
    sol = fresh.full_solution(v.reshape(1, -1), v_col_bias=bias)
    elapsed = time.perf_counter() - start
    i_mx = sol.i_out[0].detach().cpu().numpy()
    v_mx = np.concatenate([sol.v_row[0].detach().cpu().numpy().ravel(), sol.v_col[0].detach().cpu().numpy().ravel()])
    return i_mx, v_mx, elapsed


def validate(crossbar, v_in, *, v_col_bias=None, tolerance: float | None = None, backend: str = "auto",
             ngspice_binary: str = "ngspice") -> ValidationReport:
    """Compare memxbar and ngspice on ``crossbar`` driven by ``v_in`` (rows,) V.

    Args:
        v_col_bias: (cols,) column-end voltages (V), default 0.
        tolerance: largest relative error that passes, in (0, 1); default :data:`TOL_LINEAR`
            for linear arrays, :data:`TOL_NONLINEAR` otherwise.
        backend, ngspice_binary: see :func:`circuits.spice.ngspice.run_netlist`.
    Raises:
        ValueError: bad tolerance or inputs; NgspiceNotFoundError: ngspice is missing.
    """
    if tolerance is None:
        tolerance = TOL_LINEAR if crossbar.is_linear else TOL_NONLINEAR
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and 0.0 < tolerance < 1.0):
        raise ValueError(f"tolerance must be a relative error in (0, 1), got {tolerance!r}")
    v = torch.as_tensor(v_in, dtype=torch.float64).reshape(-1)
    i_sp, vr_sp, vc_sp, res = spice_solution(crossbar, v, v_col_bias=v_col_bias, backend=backend,
                                             ngspice_binary=ngspice_binary)
    i_mx, v_mx, t_mx = _memxbar_solution(crossbar, v, v_col_bias)
    err_i = _rel_err(i_mx, i_sp)
    err_v = _rel_err(v_mx, np.concatenate([vr_sp.ravel(), vc_sp.ravel()]))
    cells = type(crossbar.device_cells).__name__ if crossbar.device_cells is not None else "linear G"
    return ValidationReport(crossbar.rows, crossbar.cols, crossbar.config.topology, cells, _access(crossbar.config),
                            bool(crossbar.is_linear), err_i, err_v, res.wall_time, t_mx, float(tolerance),
                            bool(err_i <= tolerance and err_v <= tolerance), res.backend)
