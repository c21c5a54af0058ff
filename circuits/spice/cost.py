"""Cost estimates of SPICE exports and validations, checked before any long work starts.

The ``xbar spice`` commands refuse work whose estimated run time exceeds a budget (default
:data:`MAX_SECONDS`) or whose netlist would exceed :data:`MAX_NETLIST_BYTES`, naming the estimate,
unless the user passes ``--force`` (then the run shows a progress bar); work that would need
more than half of the available memory is refused even with ``--force`` (it could not finish).

Measured figures behind the estimates (2-core machine; ngspice 39; see
``/work/shared/reference/spice-and-solver.md`` and the module ``circuits.spice.cli``):

* ngspice's DC operating point of a linear passive crossbar (rows = cols, idle machine): 0.1 s
  at 32x32, 2.5 s at 64x64, 70 s at 128x128 — about x25 per x4 cells, i.e. ``t ∝ cells^2.36``;
  8–10 s at 64x64 on a loaded machine (load average 3.5);
* netlist text: 114 B per cell (0T1R, linear cells), 149 B (1T1R linear switch), 372 B (EKV
  transistor); building it takes 15–37 µs per cell, and about 2.5 times the text plus 300 B per
  cell of memory;
* neuron transients: a torch step of one MIF/oscillator neuron 0.33–0.38 ms, of the default
  2-layer network 1.1 ms; an ngspice time step 30–60 µs (loaded machine, load average 8).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Cost", "MAX_SECONDS", "MAX_NETLIST_BYTES", "ngspice_op_seconds", "crossbar_cost", "transient_cost",
           "available_memory_bytes", "check_cost", "format_seconds", "format_bytes"]

#: default run-time budget of one ``xbar spice`` command (s); more needs ``--force``
MAX_SECONDS = 600.0
#: default largest exported netlist (bytes, ~1.7 million linear cells); more needs ``--force``
MAX_NETLIST_BYTES = 200e6
#: ngspice operating point of a 64x64 linear crossbar (s, idle 2-core machine) and the growth exponent
NGSPICE_S_64 = 2.5
NGSPICE_EXPONENT = math.log(70.0 / 0.1) / math.log(16.0)
#: nonlinear cells (Newton iterations on behavioural sources): rough extra factor of ngspice's time
NONLINEAR_FACTOR = 3.0
#: netlist construction time per cell (s) and Python memory per cell beyond the text (bytes);
#: measured: a 400x400 export (20.8 MB netlist) took 5.8 s and 94 MB above the interpreter's own
BUILD_S_PER_CELL = 40e-6
PYTHON_BYTES_PER_CELL = 300
#: torch step of one neuron / of one network layer (s) and ngspice time step (s)
TORCH_STEP_S, NGSPICE_STEP_S = 0.5e-3, 60e-6


@dataclass(frozen=True)
class Cost:
    """An estimate: run time (s) and peak memory (bytes) of ``what``."""

    what: str
    seconds: float
    memory_bytes: float
    netlist_bytes: float = 0.0

    def describe(self) -> str:
        text = f"about {format_seconds(self.seconds)} and {format_bytes(self.memory_bytes)} of memory"
        if self.netlist_bytes:
            text += f" (netlist {format_bytes(self.netlist_bytes)})"
        return text


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 60:
        return f"{seconds:.2g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 86400 * 3:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def ngspice_op_seconds(rows: int, cols: int, *, linear: bool = True) -> float:
    """Estimated ngspice time (s, idle 2-core machine) of one crossbar operating point."""
    t = NGSPICE_S_64 * (rows * cols / 4096.0) ** NGSPICE_EXPONENT
    return t if linear else NONLINEAR_FACTOR * t


def crossbar_cost(rows: int, cols: int, bytes_per_cell: float, *, simulate: bool, linear: bool = True) -> Cost:
    """Exporting (``simulate=False``) or validating a ``rows x cols`` crossbar whose netlist
    takes ``bytes_per_cell`` bytes per cell."""
    cells = rows * cols
    text = bytes_per_cell * cells
    seconds = BUILD_S_PER_CELL * cells + (ngspice_op_seconds(rows, cols, linear=linear) if simulate else 0.0)
    memory = 2.5 * text + PYTHON_BYTES_PER_CELL * cells
    what = f"{'validating' if simulate else 'exporting'} a {rows}x{cols} crossbar"
    return Cost(what, seconds, memory, text)


def transient_cost(what: str, n_samples: int, substeps: int, t_stop: float, spice_step: float, *,
                   n_vectors: int = 4, layers: int = 1) -> Cost:
    """A neuron/network validation: ``n_samples`` input samples, ``substeps`` torch steps per
    sample, an ngspice transient over ``t_stop`` s with largest step ``spice_step`` s (plus two
    breakpoints per sample) saving ``n_vectors`` vectors, ``layers`` torch layers per step."""
    torch_steps = float(n_samples) * float(substeps)
    spice_steps = t_stop / spice_step + 2.0 * n_samples
    seconds = torch_steps * TORCH_STEP_S * layers + spice_steps * NGSPICE_STEP_S
    memory = 100.0 * torch_steps + 16.0 * n_vectors * spice_steps + 150.0 * n_samples
    return Cost(what, seconds, memory)


def available_memory_bytes() -> float | None:
    """Memory available to new allocations (``MemAvailable`` of /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_cost(cost: Cost, *, force: bool = False, max_seconds: float | None = None,
               max_netlist_bytes: float | None = None, hint: str = "") -> Cost:
    """Raise ``ValueError`` (one line, with the estimate) when ``cost`` is over the memory
    available (always) or over the time / netlist budget (unless ``force``; defaults
    :data:`MAX_SECONDS`, :data:`MAX_NETLIST_BYTES`); else return it."""
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    max_netlist_bytes = MAX_NETLIST_BYTES if max_netlist_bytes is None else max_netlist_bytes
    available = available_memory_bytes()
    if available is not None and cost.memory_bytes > 0.5 * available:
        raise ValueError(f"{cost.what} would need {cost.describe()}, more than half of the "
                         f"{format_bytes(available)} available: refused{'; ' + hint if hint else ''}")
    if force:
        return cost
    if cost.seconds > max_seconds:
        raise ValueError(f"{cost.what} would take {cost.describe()} (estimate for an idle 2-core machine; "
                         f"longer under load), above the {format_seconds(max_seconds)} budget; pass --force to "
                         f"run it anyway with a progress bar{'; or ' + hint if hint else ''}")
    if cost.netlist_bytes > max_netlist_bytes:
        raise ValueError(f"{cost.what} would write {cost.describe()}, above the {format_bytes(max_netlist_bytes)} "
                         f"budget; pass --force to write it anyway{'; or ' + hint if hint else ''}")
    return cost
