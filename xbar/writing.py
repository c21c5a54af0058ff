"""Writing a crossbar cell with the V/2 and V/3 schemes; half-select disturb; read margin.

Bias schemes (selected row ``r``, selected column ``c``, write voltage ``V``, signed: ``V > 0``
drives the row above the column, the SET polarity of the device models)::

              rows (driven through r_source)        columns (driven through r_sense)
    "v/2":    row r: V,  others: V/2                col c: 0,  others: V/2
    "v/3":    row r: V,  others: V/3                col c: 0,  others: 2V/3
    "ground": row r: V,  others: 0                  all columns: 0          (read only)

Ideal cell voltages (no wire resistance), ``v_cell = v_row - v_col``:

    =====================  ========  ========  ==========
    cell                   V/2       V/3       ground
    =====================  ========  ========  ==========
    selected (r, c)        V         V         V
    half-selected, row r   V/2       V/3       V
    half-selected, col c   V/2       V/3       0
    unselected             0         -V/3      0
    =====================  ========  ========  ==========

so the worst unselected-cell stress is ``V/2`` under V/2 and ``V/3`` under V/3 (at the price
of every cell in the array carrying ``|V|/3`` and a larger power). The circuit, including row
and column wire resistance, driver/sense resistances and 1S1R selectors, is solved exactly by
:meth:`xbar.Crossbar.full_solution` with the column ends driven (``v_col_bias``); for a
``devices`` object the cells' own nonlinear I-V is used. The bias is solved for the state at
the start of the pulse; ``segments > 1`` splits the pulse and re-solves between parts, so the
IR drop follows the cells as they switch.

Disturb: every cell's *device* voltage (the cell voltage minus the selector drop in 1S1R,
from the inverse selector I-V at the solved cell current) is applied for the pulse width to
the device family's own pulse model, and ``delta_g = G_after - G_before`` (S) is reported
for every cell (the selected one is the intended write, all others are disturb):

* ``rram``: the gap ODE of :mod:`devices.rram_physics` with a per-device signed voltage
  (:meth:`devices.RRAM.apply_pulses` with an amplitude tensor). Presets with the single-sinh
  rate law and an F_min gate (``stanford_pku_memtorch``) have a hard switching threshold
  ``F_min·t_ox/γ(g)`` below which the disturb is exactly zero; the generation–recombination
  law of the Wan/Guan preset has none: the gap rate is exponential in V at every voltage, so
  half-selected cells are disturbed by an amount that falls steeply with V.
* ``floating_gate`` (pFET synapse): ``v > 0`` is a hot-electron injection pulse of amplitude
  ``v`` (G up), ``v < 0`` a Fowler–Nordheim tunnelling pulse of amplitude ``|v|`` (G down),
  per device; amplitudes above the device's ``v_inj_max``/``v_tun_max`` raise.
* ``stt_mram``: the cell current (A) divided by the MTJs per cell (an average: P and AP MTJs
  of one cell carry somewhat different currents) drives each MTJ's switching probability,
  toward P for ``v > 0``; sub-critical currents switch only by thermal activation.
* ``pcm``: the PCM pulse model is amplitude-free (its SET/RESET pulse shape is fixed by the
  parameters), so it cannot say how a half-selected cell responds to a lower voltage. The
  half-selected and unselected cells are taken to be below the threshold-switching voltage
  (disturb = 0) and the selected cell receives one full SET (``V > 0``) or RESET pulse.

Read margin (sneak paths): one cell of an ``n x n`` array is read with ``v_read`` in one of
the schemes above while every other cell is in the LRS (the classic worst case; ``unselected=
"hrs"`` gives the best case). The sensed current is the current into the selected column's
sense end. Definition (``definition="current"``, the default; a virtual-ground TIA reads the
column as in :class:`xbar.Crossbar`)::

    RM = (I_LRS - I_HRS) / I_LRS

with ``I_LRS`` / ``I_HRS`` the sensed currents when the selected cell is in the LRS / HRS; an
isolated cell gives ``1 - G_HRS/G_LRS`` and ``RM <= 0`` means the states cannot be told apart.
``definition="pull_up"`` is the voltage margin of Flocke & Noll (ESSDERC 2007) and An Chen
(IEEE TED 60, 1318 (2013)): the column is terminated by a pull-up/load resistor ``R_pu`` =
``r_sense`` and ``RM = (V_out,LRS - V_out,HRS) / v_read`` with ``V_out = I·R_pu``. The solver
drives every line through a source, so the worst case of the literature with *floating*
unselected lines is not modelled; the grounded scheme ("ground") and the V/2 and V/3 read
schemes are, and they show the two mechanisms: V/2 and V/3 add the current of the
half-selected cells of the selected column to the sensed current (a sneak term growing with
n that a selector suppresses by its nonlinearity), "ground" removes it and leaves only the IR
drop of the loaded selected row.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from devices.validation import check_bool, check_choice, check_int, check_optional_real, check_real

from .crossbar import Crossbar, CrossbarConfig
from .topology import selector_v0

Tensor = torch.Tensor

__all__ = ["WriteResult", "ReadMargin", "bias_voltages", "cell_categories", "write_cell", "read_margin",
           "read_margin_vs_size", "SELECTED", "HALF_SELECTED_ROW", "HALF_SELECTED_COL", "UNSELECTED"]

WRITE_SCHEMES = ("v/2", "v/3")
READ_SCHEMES = ("ground", "v/2", "v/3")
#: cell categories of :func:`cell_categories`
SELECTED, HALF_SELECTED_ROW, HALF_SELECTED_COL, UNSELECTED = 0, 1, 2, 3
_CATEGORY_NAMES = ("selected", "half_selected_row", "half_selected_col", "unselected")


def _check_index(name: str, value, size: int) -> int:
    return check_int(name, value, low=0, high=size - 1)


def _check_selected(selected, rows: int, cols: int) -> tuple[int, int]:
    """``selected`` as a (row, col) pair of in-range ints."""
    if isinstance(selected, (str, bytes)) or not hasattr(selected, "__len__") or len(selected) != 2:
        raise ValueError(f"selected must be a (row, col) pair of integers, got {selected!r}")
    return _check_index("selected[0]", selected[0], rows), _check_index("selected[1]", selected[1], cols)


def bias_voltages(rows: int, cols: int, selected: tuple[int, int], v: float, scheme: str = "v/2",
                  dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
    """Row drive and column drive voltages (V) ``(rows,)``, ``(cols,)`` of a bias scheme."""
    rows, cols = check_int("rows", rows, low=1), check_int("cols", cols, low=1)
    check_choice("scheme", scheme, READ_SCHEMES)
    r, c = _check_selected(selected, rows, cols)
    v = check_real("v", v)
    row_other, col_other = {"v/2": (v / 2, v / 2), "v/3": (v / 3, 2 * v / 3), "ground": (0.0, 0.0)}[scheme]
    v_rows = torch.full((rows,), row_other, dtype=dtype, device=device)
    v_cols = torch.full((cols,), col_other, dtype=dtype, device=device)
    v_rows[r] = v
    v_cols[c] = 0.0
    return v_rows, v_cols


def cell_categories(rows: int, cols: int, selected: tuple[int, int]) -> Tensor:
    """int8 ``(rows, cols)``: SELECTED, HALF_SELECTED_ROW, HALF_SELECTED_COL or UNSELECTED."""
    rows, cols = check_int("rows", rows, low=1), check_int("cols", cols, low=1)
    r, c = _check_selected(selected, rows, cols)
    cat = torch.full((rows, cols), UNSELECTED, dtype=torch.int8)
    cat[r, :] = HALF_SELECTED_ROW
    cat[:, c] = HALF_SELECTED_COL
    cat[r, c] = SELECTED
    return cat


@dataclass
class WriteResult:
    """Outcome of one write pulse (V, A, S, W, s; all tensors ``(rows, cols)`` unless noted).

    Attributes:
        scheme: "v/2" or "v/3"; selected: (row, col); v_write: applied write voltage (V).
        v_rows, v_cols: drive voltages of the rows ``(rows,)`` and columns ``(cols,)``.
        category: int8 cell categories (see :func:`cell_categories`).
        v_cell: voltage across every cell (row node - column node) after IR drop.
        v_device: voltage across the memory element (``v_cell`` minus the selector drop).
        i_cell: cell current (A), row -> column.
        v_delivered: ``v_device`` of the selected cell (V), the voltage that does the write.
        power: power drawn from all drivers (W); width: pulse width (s) or nan if unknown.
        g_before, g_after, delta_g: read conductances (S) before/after the pulse and their change.
        pulse_model: what was applied ("rram_gap", "floating_gate", "stt_current",
            "pcm_amplitude_free", "none" for linear cells or ``apply=False``).
    """

    scheme: str
    selected: tuple[int, int]
    v_write: float
    v_rows: Tensor
    v_cols: Tensor
    category: Tensor
    v_cell: Tensor
    v_device: Tensor
    i_cell: Tensor
    v_delivered: float
    power: float
    width: float
    g_before: Tensor
    g_after: Tensor
    delta_g: Tensor
    pulse_model: str

    @property
    def disturb(self) -> Tensor:
        """``|delta_g|`` (S) of every cell except the selected one (which is set to 0)."""
        d = self.delta_g.abs().clone()
        d[self.category == SELECTED] = 0.0
        return d

    def summary(self) -> dict[str, dict[str, float]]:
        """Per category: number of cells, max and mean ``|v_cell|`` (V) and max ``|delta_g|`` (S)."""
        out = {}
        for k, name in enumerate(_CATEGORY_NAMES):
            m = self.category == k
            if bool(m.any()):
                v = self.v_cell[m].abs()
                out[name] = {"cells": int(m.sum()), "v_max": float(v.max()), "v_mean": float(v.mean()),
                             "dg_max": float(self.delta_g[m].abs().max())}
        return out


def _device_voltage(xbar: Crossbar, v_cell: Tensor, i_cell: Tensor) -> Tensor:
    """Voltage (V) across the memory element: ``v_cell`` minus the selector drop in 1S1R, the
    selector voltage from its inverse I-V at the solved cell current."""
    c = xbar.config
    if c.topology == "0T1R":
        return v_cell
    v0 = selector_v0(c.selector, c.selector_v_0, c.selector_nl, c.selector_v_w)
    if c.selector == "sinh":
        v_sel = v0 * torch.asinh(i_cell / c.selector_i_s)
    else:
        v_sel = torch.sign(i_cell) * v0 * torch.log1p(i_cell.abs() / c.selector_i_s)
    return v_cell - v_sel


def _apply_pulse(cells, v_dev: Tensor, i_cell: Tensor, category: Tensor, width: float | None,
                 i_compliance: float | None, v_write: float) -> str:
    """Apply one pulse of the per-cell device voltages to the device model; return the model name."""
    family = getattr(cells, "family", None)
    dtype = cells.dtype
    v = v_dev.to(dtype)
    if family == "rram":
        cells.apply_pulses(torch.sign(v).long(), amplitude=v, width=width, i_compliance=i_compliance)
        return "rram_gap"
    if family == "floating_gate":
        cells.apply_pulses(torch.sign(v).long(), amplitude=v.abs(), width=width)
        return "floating_gate"
    if family == "stt_mram":
        current = i_cell.to(dtype).abs() / cells.n_mtj
        cells.apply_pulses(torch.sign(v).long(), current=current, width=width)
        return "stt_current"
    if family == "pcm":
        sign = 1 if v_write > 0 else -1
        pulses = torch.where(category == SELECTED, sign, 0).to(torch.long)
        cells.apply_pulses(pulses)
        return "pcm_amplitude_free"
    raise ValueError(f"no pulse model for device family {family!r}; supported: rram, floating_gate, stt_mram, "
                     "pcm (pass apply=False to get the voltages only)")


def write_cell(cells, selected: tuple[int, int], v_write: float, *, scheme: str = "v/2",
               config: CrossbarConfig | None = None, width: float | None = None,
               i_compliance: float | None = None, segments: int = 1, apply: bool = True,
               **options) -> WriteResult:
    """Write cell ``selected`` of a 0T1R or 1S1R array with one pulse of ``v_write`` (V).

    Args:
        cells: a 2-D ``devices`` object (its I-V is solved and its pulse model applied; it is
            modified in place when ``apply``) or a ``(rows, cols)`` conductance tensor (S; linear
            cells: voltages only, ``delta_g = 0``).
        selected: (row, col) of the target cell; v_write: signed write voltage (V).
        scheme: "v/2" or "v/3"; config / options: the :class:`CrossbarConfig` (wires, drivers,
            topology "0T1R" or "1S1R", selector).
        width: pulse width (s), default the family's own (RRAM ``t_pulse``, STT ``t_write``, ...).
        i_compliance: RRAM SET current compliance (A) of the drivers, default the preset's.
        segments: the pulse is applied in this many equal parts with a fresh circuit solve before
            each (1 = bias from the pre-pulse state). The reported voltages are those of the first
            solve.
        apply: apply the pulse to the device model (False: voltages only).
    """
    check_choice("scheme", scheme, WRITE_SCHEMES)
    v_write = check_real("v_write", v_write)
    if v_write == 0.0:
        raise ValueError("v_write must be nonzero (V)")
    segments = check_int("segments", segments, low=1)
    apply = check_bool("apply", apply)
    width = check_optional_real("width", width, low=0.0, low_open=True)
    i_compliance = check_optional_real("i_compliance", i_compliance, low=0.0, low_open=True)
    xbar = Crossbar(cells, config=config, **options)
    if xbar.config.topology not in ("0T1R", "1S1R"):
        raise ValueError(f"topology must be '0T1R' or '1S1R' for V/2 and V/3 writing (1T1R arrays are written "
                         f"through the access transistors), got {xbar.config.topology!r}")
    is_device = xbar.device_cells is not None
    if is_device and apply and getattr(cells, "family", None) == "pcm" and segments != 1:
        raise ValueError("segments must be 1 for PCM: its pulses are amplitude-free and cannot be split")
    rows, cols = xbar.rows, xbar.cols
    selected = _check_selected(selected, rows, cols)
    v_rows, v_cols = bias_voltages(rows, cols, selected, v_write, scheme, device=xbar.torch_device)
    category = cell_categories(rows, cols, selected).to(xbar.torch_device)
    g_before = (cells.conductance() if is_device else xbar.g).detach().to(torch.float64).clone()
    model = "none"
    first = None
    for _ in range(int(segments) if (apply and is_device) else 1):
        with torch.no_grad():
            sol = xbar.full_solution(v_rows, v_col_bias=v_cols)
            v_dev = _device_voltage(xbar, sol.v_cell[0], sol.i_cell[0])
        if first is None:
            first = (sol, v_dev)
        if apply and is_device:
            seg_width = None if width is None else width / segments
            if seg_width is None and segments > 1:
                seg_width = _default_width(cells) / segments
            model = _apply_pulse(cells, v_dev, sol.i_cell[0], category, seg_width, i_compliance, v_write)
    sol, v_dev = first
    g_after = (cells.conductance() if is_device else xbar.g).detach().to(torch.float64).clone()
    r, c = selected
    used_width = width if width is not None else (_default_width(cells) if is_device else math.nan)
    return WriteResult(scheme, (int(r), int(c)), v_write, v_rows, v_cols, category, sol.v_cell[0], v_dev,
                       sol.i_cell[0], float(v_dev[r, c]), float(sol.power[0]), used_width, g_before, g_after,
                       g_after - g_before, model)


def _default_width(cells) -> float:
    p = cells.params
    for name in ("t_pulse", "t_write"):
        if hasattr(p, name):
            return float(getattr(p, name))
    return math.nan


# ------------------------------------------------------------------------------ read margin
@dataclass
class ReadMargin:
    """Read margin of one cell (see module docstring). Currents in A, voltages in V.

    Attributes:
        rows, cols, selected, topology, scheme, definition, unselected: the set-up.
        margin: the read margin (dimensionless).
        i_lrs, i_hrs: sensed currents with the selected cell in the LRS / HRS.
        i_cell_lrs: the selected cell's own current (LRS case); the rest of ``i_lrs`` is sneak.
    """

    rows: int
    cols: int
    selected: tuple[int, int]
    topology: str
    scheme: str
    definition: str
    unselected: str
    margin: float
    i_lrs: float
    i_hrs: float
    i_cell_lrs: float


def _size(n) -> tuple[int, int]:
    """``n`` (an int or a (rows, cols) pair of ints, each >= 1) as ``(rows, cols)``."""
    shape = (n, n) if not hasattr(n, "__len__") or isinstance(n, (str, bytes)) else tuple(n)
    try:
        if isinstance(n, (str, bytes)) or len(shape) != 2:
            raise ValueError
        return check_int("n", shape[0], low=1), check_int("n", shape[1], low=1)
    except ValueError:
        raise ValueError(f"n must be an int >= 1 or a (rows, cols) pair of ints >= 1, got {n!r}") from None


def read_margin(n, g_lrs: float, g_hrs: float, topology: str = "0T1R", *, scheme: str = "v/2",
                v_read: float = 0.2, selected: tuple[int, int] | None = None, unselected: str = "lrs",
                definition: str = "current", config: CrossbarConfig | None = None, **options) -> ReadMargin:
    """Read margin of one cell of an ``n x n`` (or ``(rows, cols)``) linear-cell array.

    ``g_lrs`` > ``g_hrs`` (S) are the two states; every unselected cell is in the LRS
    (``unselected="lrs"``, worst case) or HRS. ``selected`` defaults to the cell farthest
    from the drivers and the sense ends (row 0, last column for the default ``row_drive=
    "first"``, ``col_sense="last"``). ``topology`` "0T1R", "1S1R" or "1T1R" (all gates on);
    further electrical options via ``config`` / ``options``.
    """
    rows, cols = _size(n)
    g_lrs = check_real("g_lrs", g_lrs, low=0.0, low_open=True)
    g_hrs = check_real("g_hrs", g_hrs, low=0.0)
    if not g_hrs < g_lrs:
        raise ValueError(f"g_hrs must be < g_lrs, got g_hrs={g_hrs:g} S, g_lrs={g_lrs:g} S")
    v_read = check_real("v_read", v_read, low=0.0, low_open=True)
    check_choice("scheme", scheme, READ_SCHEMES)
    check_choice("unselected", unselected, ("lrs", "hrs"))
    check_choice("definition", definition, ("current", "pull_up"))
    options["topology"] = topology
    cfg = CrossbarConfig(**options) if config is None else dataclasses.replace(config, **options)
    cfg.validate()
    if selected is None:  # the cell farthest from the row drivers and the sense ends
        selected = ({"last": 0, "first": rows - 1, "both": (rows - 1) // 2}[cfg.col_sense],
                    {"first": cols - 1, "last": 0, "both": (cols - 1) // 2}[cfg.row_drive])
    r, c = _check_selected(selected, rows, cols)
    v_rows, v_cols = bias_voltages(rows, cols, (r, c), v_read, scheme)
    currents, cell_current = [], 0.0
    for g_sel in (g_lrs, g_hrs):
        g = torch.full((rows, cols), g_lrs if unselected == "lrs" else g_hrs, dtype=torch.float64)
        g[r, c] = g_sel
        xbar = Crossbar(g, config=cfg)
        with torch.no_grad():
            sol = xbar.full_solution(v_rows, v_col_bias=v_cols)
        currents.append(float(sol.i_out[0, c]))
        if g_sel == g_lrs:
            cell_current = float(sol.i_cell[0, r, c])
    i_lrs, i_hrs = currents
    if definition == "current":
        margin = (i_lrs - i_hrs) / i_lrs if i_lrs != 0.0 else -math.inf
    else:
        margin = (i_lrs - i_hrs) * xbar.config.r_sense / v_read
    return ReadMargin(rows, cols, (r, c), topology, scheme, definition, unselected, margin, i_lrs, i_hrs,
                      cell_current)


def read_margin_vs_size(sizes, g_lrs: float, g_hrs: float, topology: str = "0T1R", **kwargs) -> Tensor:
    """Read margins (float64 tensor, one per size) of :func:`read_margin` for ``n`` in ``sizes``."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"sizes must be a sequence of array sizes, got {sizes!r}")
    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes must hold at least one array size")
    return torch.tensor([read_margin(n, g_lrs, g_hrs, topology, **kwargs).margin for n in sizes],
                        dtype=torch.float64)
