"""Fully memristive neurons: spikes from volatile-memristor dynamics, no comparator, no reset.

* :mod:`circuits.neurons.mif` — the MIF neuron (Kang et al., IEEE TCAS-I 2021): membrane C, two
  volatile memristors in series with reversal sources E1, E2; exact exponential membrane
  update with Strang splitting; graded, differentiable spikes under pulsed input.
* :mod:`circuits.neurons.oscillator` — threshold-switch relaxation oscillator (Pickett et al.
  2013; Duan et al. 2020): tonic spiking under DC input, rate rising with current.

Both follow the Norse layout: pure functional steps (``*_step(input, state, params, dt)``) with
state/parameter NamedTuples, plus an ``nn.Module`` over time-major ``(T, batch, n)`` input
currents in amperes. The devices come from :class:`devices.volatile.VolatileMemristor`.
"""
from .mif import (X_INIT_KANG2021, MIFNeuron, MIFParameters, MIFState, analog_readout, count_spikes, membrane_step,
                  mif_derivatives, mif_initial_state, mif_step, mif_step_euler, spike_readout, validate_mif_parameters)
from .oscillator import (OscillatorNeuron, OscillatorParameters, OscillatorState, f_i_curve, oscillator_initial_state,
                         oscillator_period, oscillator_step, spike_times, validate_oscillator_parameters)

__all__ = ["MIFNeuron", "MIFParameters", "MIFState", "mif_step", "mif_step_euler", "mif_derivatives",
           "mif_initial_state", "membrane_step", "validate_mif_parameters", "spike_readout", "count_spikes",
           "analog_readout", "X_INIT_KANG2021", "OscillatorNeuron", "OscillatorParameters", "OscillatorState",
           "oscillator_step", "oscillator_initial_state", "oscillator_period", "f_i_curve", "spike_times",
           "validate_oscillator_parameters"]
