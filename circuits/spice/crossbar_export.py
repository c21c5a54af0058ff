"""Export an :class:`xbar.Crossbar` operating point to a SPICE netlist.

Node names are deterministic: row-wire node ``row_i_j`` and column-wire node ``col_i_j`` of
cell (i, j), the internal node ``mid_i_j`` between a memory element and its access transistor
or selector, the row source node ``src_i`` and the sense node ``sense_j``. Sketch of one
row/column pair (``row_drive="first"``, ``col_sense="last"``)::

    Vin_i -- src_i --Rsrc_i-- row_i_0 --Rrow-- row_i_1 -- ...
                                 |               |
                             [cell i,0]      [cell i,1]          cell = memory (+ mid node
                                 |               |                      + transistor/selector)
                              col_i_0         col_i_1
                                 |Rcol           |Rcol
                              col_last_0 --Rsns_0-- sense_0 --Vsense_0 (0 V or bias)-- 0

Every current is measured by a voltage source: ``vsense_j#branch`` is the current *into*
``sense_j`` from the column (positive when the column delivers current to the virtual ground).
A zero resistance (ideal wire, source or sense) becomes a 0 V source, which is exact.

Cells:

* linear conductance ``G`` → resistor ``1/G`` (``G = 0`` leaves the cell open);
* a ``devices`` object → behavioural current source with the family's static I-V of the
  present state (:mod:`circuits.spice.device_models`);
* 1T1R linear access transistor → ``r_access_on``/``r_access_off`` resistor per row gate;
  EKV access transistor → behavioural source with the same EKV expression as memxbar;
* 1S1R selector → behavioural source ``I_s·sinh(V/V_0)`` or ``sgn(V)·I_s·(exp(|V|/V_0) − 1)``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from devices._io import atomic_write_bytes
from devices.validation import as_tensor

from .device_models import device_iv, rram_cell
from .netlist import DIALECTS, Expr, Netlist, const, func, volt

#: ngspice options for exact agreement of linear arrays: tight tolerances and a gmin far below
#: any cell conductance (the default gmin = 1e-12 S would perturb 1 µS cells at 1e-6).
TIGHT_OPTIONS = {"reltol": 1e-12, "abstol": 1e-18, "vntol": 1e-15, "gmin": 1e-30}


def _two_terminal(net: Netlist, name: str, n1: str, n2: str, r: float) -> None:
    """A resistor, or an exact short (0 V source) for r = 0."""
    if r == 0.0:
        net.vsource(f"short_{name}", n1, n2, dc=0.0)
    else:
        net.resistor(name, n1, n2, r)


def _selector_expr(cfg, v: Expr) -> Expr:
    from xbar.topology import selector_v0

    v0 = selector_v0(cfg.selector, cfg.selector_v_0, cfg.selector_nl, cfg.selector_v_w)
    if cfg.selector == "sinh":
        return const(cfg.selector_i_s) * func("sinh", v / const(v0))
    return const(cfg.selector_i_s) * func("sgn", v) * (func("exp", func("abs", v) / const(v0)) - const(1.0))


def _ekv_expr(cfg, v: Expr, v_gate: float) -> Expr:
    """EKV drain current ``I_spec [F(v_p/U_T) − F((v_p − V)/U_T)]``, ``F(u) = ln²(1 + e^(u/2))``."""
    i_spec = 2.0 * cfg.mos_n * cfg.mos_beta * cfg.mos_u_t ** 2
    vp = (v_gate - cfg.mos_v_th) / cfg.mos_n
    a = math.log1p(math.exp(vp / (2 * cfg.mos_u_t)))
    b = func("ln", const(1.0) + func("exp", (const(vp) - v) / const(2 * cfg.mos_u_t)))
    return const(i_spec) * (const(a * a) - b * b)


def _check_vector(name: str, values, n: int, what: str) -> torch.Tensor:
    if values is None:
        raise ValueError(f"{name} must hold {n} voltages (V, one per {what}), got None")
    t = as_tensor(name, values.detach() if torch.is_tensor(values) else values, dtype=torch.float64,
                  device="cpu").reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name} must have {n} entries (one per {what}), got {t.numel()}")
    return t


def crossbar_netlist(crossbar, v_in, *, v_col_bias=None, title: str = "memxbar crossbar",
                     options: dict | None = None) -> Netlist:
    """Netlist of ``crossbar``'s DC operating point for one input vector.

    Args:
        crossbar: an :class:`xbar.Crossbar` (any topology; linear cells or a ``devices`` object).
        v_in: ``(rows,)`` row source voltages (V).
        v_col_bias: ``(cols,)`` column-end voltages (V); default 0 (virtual ground).
        options: ngspice options (default :data:`TIGHT_OPTIONS`).
    """
    v_in = _check_vector("v_in", v_in, crossbar.rows, "row")
    bias = torch.zeros(crossbar.cols, dtype=torch.float64) if v_col_bias is None else \
        _check_vector("v_col_bias", v_col_bias, crossbar.cols, "column")
    net = _array(crossbar, title, [{"dc": float(x)} for x in v_in], [{"dc": float(x)} for x in bias])
    net.section("cells")
    _cells(net, crossbar)
    net.op()
    net.set_options(**(TIGHT_OPTIONS if options is None else options))
    return net


def print_sense_currents(net: Netlist, crossbar) -> None:
    """Make ``net`` print every column's output current ``i_out_<j>`` (A, into the sense end;
    with ``col_sense="both"`` the sum of both ends) when run on its own (``ngspice -b``)."""
    both = crossbar.config.col_sense == "both" and crossbar.rows > 1
    for j in range(crossbar.cols):
        net.print_current(f"i_out_{j}", [f"sense_{j}", f"sense_{j}_b"] if both else [f"sense_{j}"])


def export_crossbar(crossbar, v_in, *, v_col_bias=None, path: str | os.PathLike | None = None,
                    dialect: str = "ngspice", print_currents: bool = True) -> str:
    """Netlist text of ``crossbar``'s DC operating point (see :func:`crossbar_netlist`).

    Args:
        crossbar: an :class:`xbar.Crossbar`; v_in: ``(rows,)`` row source voltages (V);
        v_col_bias: ``(cols,)`` column-end voltages (V), default 0.
        path: if given, the text is also written there atomically (:func:`write_atomic`).
        dialect: ``"ngspice"`` or ``"xyce"`` (option groups and ``u()`` → ``stp()``).
        print_currents: make the file print the column currents when run on its own
            (:func:`print_sense_currents`): ``ngspice -b FILE`` prints one line
            ``i_out_<j> = <A>`` per column (16 significant digits) from a ``.control`` block that
            ends with ``quit``; Xyce writes them with ``.print dc`` to ``FILE.prn``.
    Returns:
        The netlist text (identical to the file's content when ``path`` is given).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {list(DIALECTS)}, got {dialect!r}")
    net = crossbar_netlist(crossbar, v_in, v_col_bias=v_col_bias)
    if print_currents:
        print_sense_currents(net, crossbar)
    text = net.render(dialect)
    if path is not None:
        write_atomic(path, text)
    return text


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`devices._io.atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def crossbar_transient_netlist(crossbar, times, v_rows, v_cols, *, max_step: float,
                               title: str = "memxbar crossbar transient") -> Netlist:
    """Transient netlist of a 0T1R crossbar of ``RRAM`` cells with their switching dynamics.

    Every cell is the stateful RRAM subcircuit of :func:`circuits.spice.device_models.rram_cell`
    (gap on a capacitor node ``gap_cell_i_j``, in nm), carrying the device's own D2D factors;
    rows and columns are driven by piecewise-linear sources.

    Args:
        crossbar: :class:`xbar.Crossbar` whose cells are a :class:`devices.RRAM` (topology 0T1R).
        times: (n,) time points (s); v_rows: (n, rows) and v_cols: (n, cols) voltages (V).
        max_step: largest ngspice time step (s).
    """
    dev = crossbar.device_cells
    if dev is None or getattr(dev, "family", None) != "rram" or crossbar.config.topology != "0T1R":
        raise ValueError("crossbar_transient_netlist needs a 0T1R Crossbar whose cells are a devices.RRAM")
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if times.numel() < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must hold at least two strictly increasing values (s)")
    if not (math.isfinite(float(max_step)) and float(max_step) > 0):
        raise ValueError(f"max_step must be a finite time > 0 s, got {max_step!r}")
    v_rows = torch.as_tensor(v_rows, dtype=torch.float64).reshape(times.numel(), crossbar.rows)
    v_cols = torch.as_tensor(v_cols, dtype=torch.float64).reshape(times.numel(), crossbar.cols)
    rows_src = [{"pwl": list(zip(times.tolist(), v_rows[:, i].tolist()))} for i in range(crossbar.rows)]
    cols_src = [{"pwl": list(zip(times.tolist(), v_cols[:, j].tolist()))} for j in range(crossbar.cols)]
    net = _array(crossbar, title, rows_src, cols_src)
    net.section("cells: stateful RRAM (Stanford-PKU gap model), gap in nm on node gap_cell_i_j")
    for i in range(crossbar.rows):
        for j in range(crossbar.cols):
            if int(dev.stuck[i, j]) != 0:
                g = dev.g_max if int(dev.stuck[i, j]) == 1 else dev.g_min
                net.resistor(f"cell_{i}_{j}", f"row_{i}_{j}", f"col_{i}_{j}", 1.0 / g)
                continue
            rram_cell(net, f"cell_{i}_{j}", f"row_{i}_{j}", f"col_{i}_{j}", dev.params, float(dev.gap[i, j]),
                      float(dev.i0_scale[i, j]), float(dev.rate_scale[i, j]))
    net.tran(float(max_step), float(times[-1]), max_step=float(max_step), uic=True)
    net.set_options(reltol=1e-6, abstol=1e-15, vntol=1e-9)
    return net


def _array(crossbar, title: str, row_sources: list[dict], col_sources: list[dict]) -> Netlist:
    """Header, drivers, wires and sense ends of a crossbar (cells are added by the caller)."""
    cfg = crossbar.config
    rows, cols = crossbar.rows, crossbar.cols
    net = Netlist(title)
    net.comment("produced by memxbar (circuits.spice.crossbar_export)", header=True)
    net.comment(f"array {rows} x {cols}, topology {cfg.topology}, r_row={cfg.r_row:g} ohm, r_col={cfg.r_col:g} ohm, "
                f"r_source={cfg.r_source:g} ohm, r_sense={cfg.r_sense:g} ohm, row_drive={cfg.row_drive}, "
                f"col_sense={cfg.col_sense}", header=True)
    cells = "device " + type(crossbar.device_cells).__name__ if crossbar.device_cells is not None else "linear"
    net.comment(f"cells: {cells}; selector={cfg.selector if cfg.topology == '1S1R' else '-'}; "
                f"transistor={cfg.transistor if cfg.topology == '1T1R' else '-'}", header=True)

    net.section("row sources and drivers")
    drive_cols = {"first": [0], "last": [cols - 1], "both": [0, cols - 1] if cols > 1 else [0]}[cfg.row_drive]
    for i in range(rows):
        for k, j in enumerate(drive_cols):
            src = f"src_{i}" if k == 0 else f"src_{i}_b"
            net.vsource(f"in_{i}" if k == 0 else f"in_{i}_b", src, "0", **row_sources[i])
            _two_terminal(net, f"src_{i}_{j}", src, f"row_{i}_{j}", cfg.r_source)

    net.section("row wires")
    for i in range(rows):
        for j in range(cols - 1):
            _two_terminal(net, f"row_{i}_{j}", f"row_{i}_{j}", f"row_{i}_{j + 1}", cfg.r_row)

    net.section("column wires")
    for j in range(cols):
        for i in range(rows - 1):
            _two_terminal(net, f"col_{i}_{j}", f"col_{i}_{j}", f"col_{i + 1}_{j}", cfg.r_col)

    net.section("sense ends (voltage sources measure the column currents)")
    sense_rows = {"last": [rows - 1], "first": [0], "both": [0, rows - 1] if rows > 1 else [0]}[cfg.col_sense]
    for j in range(cols):
        for k, i in enumerate(sense_rows):
            sense = f"sense_{j}" if k == 0 else f"sense_{j}_b"
            _two_terminal(net, f"sns_{i}_{j}", f"col_{i}_{j}", sense, cfg.r_sense)
            net.vsource(sense, sense, "0", **col_sources[j])
    return net


def _cells(net: Netlist, crossbar) -> None:
    cfg = crossbar.config
    rows, cols = crossbar.rows, crossbar.cols
    series = cfg.topology == "1S1R" or cfg.topology == "1T1R"
    g = None if crossbar.device_cells is not None else crossbar.g.detach().cpu()
    gate = crossbar.gate_enable.detach().cpu()
    for i in range(rows):
        for j in range(cols):
            top, bottom = f"row_{i}_{j}", f"col_{i}_{j}"
            mem_end = f"mid_{i}_{j}" if series else bottom
            if g is not None:
                if float(g[i, j]) > 0.0:
                    net.resistor(f"cell_{i}_{j}", top, mem_end, 1.0 / float(g[i, j]))
                elif series:  # an open memory element isolates the mid node: tie it down
                    net.resistor(f"open_{i}_{j}", mem_end, "0", 1e30)
            else:
                net.bsource_current(f"cell_{i}_{j}", top, mem_end,
                                    device_iv(crossbar.device_cells, (i, j), volt(top, mem_end)))
            if cfg.topology == "1S1R":
                net.bsource_current(f"sel_{i}_{j}", mem_end, bottom, _selector_expr(cfg, volt(mem_end, bottom)))
            elif cfg.topology == "1T1R":
                on = bool(gate[i])
                if cfg.transistor == "linear":
                    r = cfg.r_access_on if on else cfg.r_access_off
                    if math.isinf(r):
                        net.resistor(f"acc_{i}_{j}", mem_end, "0", 1e30)  # open transistor
                    else:
                        net.resistor(f"acc_{i}_{j}", mem_end, bottom, r)
                else:
                    v_gate = cfg.v_gate_on if on else cfg.v_gate_off
                    net.bsource_current(f"acc_{i}_{j}", mem_end, bottom, _ekv_expr(cfg, volt(mem_end, bottom), v_gate))
