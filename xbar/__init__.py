"""memxbar crossbar arrays: an exact circuit solver with IR drop and sneak paths, and peripherals.

* :class:`Crossbar` — 0T1R / 1T1R / 1S1R arrays of linear conductances or ``devices`` objects;
  ``solve``, ``full_solution``, ``transfer_matrix``, differentiable (exact adjoint or ideal
  straight-through gradients). :class:`CrossbarConfig` holds every electrical and numerical
  option as plain values.
* :mod:`xbar.peripherals` — DAC, ADC, TIA, differential weight mapping, MVM energy.
"""
from .crossbar import ConvergenceError, Crossbar, CrossbarConfig, CrossbarSolution
from .peripherals import ADC, DAC, TIA, DifferentialMapping, mvm_energy

__all__ = ["Crossbar", "CrossbarConfig", "CrossbarSolution", "ConvergenceError", "ADC", "DAC", "TIA",
           "DifferentialMapping", "mvm_energy"]
