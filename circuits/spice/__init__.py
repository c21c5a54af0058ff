"""SPICE export and validation of memxbar circuits (ngspice; Xyce netlists as text).

* :func:`crossbar_netlist` / :func:`export_crossbar` — a crossbar's DC operating point as an
  injection-safe netlist (:class:`Netlist`), rendered for ngspice or Xyce, optionally written
  to a file atomically; :func:`crossbar_transient_netlist` — RRAM arrays with their switching
  dynamics under piecewise-linear sources.
* :func:`run_netlist` — simulate with ngspice (PySpice shared library or ``ngspice -b``),
  returning a :class:`SpiceResult`; a missing ngspice raises :class:`NgspiceNotFoundError`.
  ngspice runs in an empty temporary directory with ``HOME`` pointing there, so no
  ``.spiceinit``/``spice.rc`` (which may hold ``shell`` commands) is ever read, and netlists
  with a ``.control`` block are refused.
* :func:`validate` — memxbar vs ngspice on one input vector → :class:`ValidationReport`
  (max relative errors of output currents and node voltages, both wall times);
  :func:`spice_solution` — ngspice's currents and node voltages alone.
* :mod:`circuits.spice.cli` — the ``xbar spice export|validate|validate-neuron|validate-network``
  sub-commands (arrays from :mod:`.cli_arrays`: random, the user's conductances or a device
  preset read at a time), with cost estimates checked first (:mod:`.cost`) and a progress bar
  for long runs (:mod:`.progress`).
"""
from .crossbar_export import (TIGHT_OPTIONS, crossbar_netlist, crossbar_transient_netlist, export_crossbar,
                              write_atomic)
from .device_models import device_iv, rram_cell
from .netlist import DIALECTS, Netlist, NetlistError
from .ngspice import NgspiceNotFoundError, SpiceResult, SpiceSimulationError, find_libngspice, run_netlist
from .validate import TOL_LINEAR, TOL_NONLINEAR, ValidationReport, spice_solution, validate

__all__ = ["crossbar_netlist", "crossbar_transient_netlist", "export_crossbar", "write_atomic", "TIGHT_OPTIONS",
           "device_iv", "rram_cell", "Netlist", "NetlistError", "DIALECTS", "run_netlist", "SpiceResult",
           "NgspiceNotFoundError", "SpiceSimulationError", "find_libngspice", "validate", "ValidationReport",
           "spice_solution", "TOL_LINEAR", "TOL_NONLINEAR"]
from .neuron_export import mif_netlist, network_netlist, oscillator_netlist, volatile_subcircuit  # noqa: E402
from .neuron_validate import NeuronValidationReport, validate_network, validate_neuron  # noqa: E402

__all__ += ["mif_netlist", "oscillator_netlist", "network_netlist", "volatile_subcircuit", "validate_neuron",
            "validate_network", "NeuronValidationReport"]
