"""memxbar crossbar arrays: an exact circuit solver with IR drop and sneak paths, and peripherals.

* :class:`Crossbar` — 0T1R / 1T1R / 1S1R arrays of linear conductances or ``devices`` objects;
  ``solve``, ``full_solution``, ``transfer_matrix``, differentiable (exact adjoint or ideal
  straight-through gradients). :class:`CrossbarConfig` holds every electrical and numerical
  option as plain values.
* :class:`TiledCrossbar` — a large signed matrix on fixed-size differential tiles with digital
  partial sums (the core :class:`TiledArray` / :class:`TileLayout`, :mod:`xbar.tiles`), device
  programming (:mod:`xbar.programming`) and :class:`GlobalDriftCompensation`.
* :mod:`xbar.peripherals` — DAC, ADC, TIA, differential weight mapping, MVM energy;
  :mod:`xbar.energy` — array (cells and wires) and peripheral energy with cited default figures.
* :mod:`xbar.writing` — V/2, V/3 write schemes, half-select disturb, read margin.
"""
from . import energy, writing  # noqa: F401  (``xbar.writing``, ``xbar.energy`` as written in the README)
from .crossbar import ConvergenceError, Crossbar, CrossbarConfig, CrossbarSolution
from .drift_compensation import GlobalDriftCompensation
from .energy import EnergyConfig
from .peripherals import ADC, DAC, TIA, DifferentialMapping, mvm_energy
from .tiles import TiledArray, TileLayout
from .tiling import TiledCrossbar

__all__ = ["Crossbar", "CrossbarConfig", "CrossbarSolution", "ConvergenceError", "ADC", "DAC", "TIA",
           "DifferentialMapping", "mvm_energy", "TiledCrossbar", "TiledArray", "TileLayout",
           "GlobalDriftCompensation", "EnergyConfig", "energy", "writing"]
