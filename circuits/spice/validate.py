"""Validate memxbar's crossbar solution against ngspice: one call, one report.

``validate(crossbar, v)`` exports the crossbar's operating point (:mod:`.crossbar_export`),
runs ngspice, solves the same circuit with memxbar, and compares

* output currents: ``max_j |I_spice,j − I_memxbar,j| / max_j |I_spice,j|``;
* node voltages (every row- and column-wire node): ``max |ΔV| / max |V_spice|``;

and both wall times (memxbar's includes building the solver; ngspice's is the simulation call,
netlist parsing included, netlist construction excluded). Linear arrays must agree to 1e-8
(the default tolerance); nonlinear ones to the tolerance requested (default 1e-6).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .crossbar_export import crossbar_netlist
from .ngspice import run_netlist


@dataclass
class ValidationReport:
    """Result of :func:`validate` (errors are relative, times in s)."""

    rows: int
    cols: int
    topology: str
    cells: str
    max_rel_err_current: float
    max_rel_err_voltage: float
    t_spice: float
    t_memxbar: float
    tolerance: float
    passed: bool
    backend: str

    @property
    def speedup(self) -> float:
        return self.t_spice / self.t_memxbar if self.t_memxbar > 0 else float("inf")

    def as_dict(self) -> dict:
        return asdict(self) | {"speedup": self.speedup}

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict} {self.rows}x{self.cols} {self.topology} ({self.cells}): "
                f"max rel. error currents {self.max_rel_err_current:.2e}, node voltages "
                f"{self.max_rel_err_voltage:.2e} (tolerance {self.tolerance:.0e}); "
                f"ngspice {self.t_spice * 1e3:.1f} ms ({self.backend}), memxbar {self.t_memxbar * 1e3:.2f} ms, "
                f"speed-up {self.speedup:.0f}x")


def spice_solution(crossbar, v_in, *, v_col_bias=None, backend: str = "auto", ngspice_binary: str = "ngspice"):
    """ngspice's ``(i_out (cols,), v_row (rows, cols), v_col (rows, cols), result)`` for one input."""
    net = crossbar_netlist(crossbar, v_in, v_col_bias=v_col_bias)
    res = run_netlist(net.render("ngspice"), backend=backend, ngspice_binary=ngspice_binary)
    rows, cols = crossbar.rows, crossbar.cols
    v_row = np.array([[res[f"row_{i}_{j}"][0] for j in range(cols)] for i in range(rows)])
    v_col = np.array([[res[f"col_{i}_{j}"][0] for j in range(cols)] for i in range(rows)])
    i_out = np.array([res[f"vsense_{j}#branch"][0] for j in range(cols)])
    if crossbar.config.col_sense == "both" and rows > 1:
        i_out = i_out + np.array([res[f"vsense_{j}_b#branch"][0] for j in range(cols)])
    return i_out, v_row, v_col, res


def validate(crossbar, v_in, *, v_col_bias=None, tolerance: float | None = None, backend: str = "auto",
             ngspice_binary: str = "ngspice") -> ValidationReport:
    """Compare memxbar and ngspice on ``crossbar`` driven by ``v_in`` (rows,) volts."""
    v = torch.as_tensor(v_in, dtype=torch.float64).reshape(-1)
    if tolerance is None:
        tolerance = 1e-8 if crossbar.is_linear else 1e-6
    i_sp, vr_sp, vc_sp, res = spice_solution(crossbar, v, v_col_bias=v_col_bias, backend=backend,
                                             ngspice_binary=ngspice_binary)
    bias = None if v_col_bias is None else torch.as_tensor(v_col_bias, dtype=torch.float64).reshape(1, -1)
    start = time.perf_counter()
    fresh = type(crossbar)(crossbar.device_cells if crossbar.device_cells is not None else crossbar.g,
                           config=crossbar.config, gate_enable=crossbar.gate_enable)
    sol = fresh.full_solution(v.reshape(1, -1), v_col_bias=bias)
    t_mx = time.perf_counter() - start
    i_mx = sol.i_out[0].detach().cpu().numpy()
    v_mx = np.concatenate([sol.v_row[0].detach().cpu().numpy().ravel(), sol.v_col[0].detach().cpu().numpy().ravel()])
    v_sp = np.concatenate([vr_sp.ravel(), vc_sp.ravel()])
    err_i = float(np.abs(i_mx - i_sp).max() / max(np.abs(i_sp).max(), 1e-300))
    err_v = float(np.abs(v_mx - v_sp).max() / max(np.abs(v_sp).max(), 1e-300))
    cells = type(crossbar.device_cells).__name__ if crossbar.device_cells is not None else "linear"
    return ValidationReport(crossbar.rows, crossbar.cols, crossbar.config.topology, cells, err_i, err_v,
                            res.wall_time, t_mx, tolerance, max(err_i, err_v) <= tolerance, res.backend)
