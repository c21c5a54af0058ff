r"""Energy a memristive integrate-and-fire (MIF) neuron draws from its supplies.

The MIF circuit (:mod:`circuits.neurons.mif`) has three sources: the input current source (a
current mirror) delivering ``I`` into the membrane node, and the reversal sources ``E1``, ``E2``
in series with the memristors M1, M2. The energy a chip pays is what these sources deliver; it
ends as Joule heat in M1, M2 (and in the mirror's output transistor) and as the change of the
charge on C. Powers (W) at membrane voltage ``v`` with memristor conductances ``G_k``::

    P_in  = max(I · V_rail, 0),  V_rail = v_high for I ≥ 0, v_low for I < 0   (mirror between its rails)
    P_in  = max(I · v, 0)                                                      (ideal source: no rails)
    P_E,k = max(E_k · G_k (E_k − v), 0)                                        (reversal source k)

A mirror sourcing current from its positive rail (or sinking it into its negative rail) draws
``|I|·|V_rail|`` from that supply whatever the membrane voltage: the difference to ``I·v`` is
dissipated in its output transistor. A source that would absorb power (``P < 0``: a reversal
source charged by a depolarised membrane, an ideal source working against v) is not credited:
supplies do not recover energy. At rest (I = 0, both devices OFF, v = E2·G2/(G1 + G2)) the only
cost is E2 driving current through M2 and M1 in series: ``P = E2² G1 G2 / (G1 + G2)`` (42 nW for
the Kang et al. 2021 defaults, G1 = G2 = 33.6 µS, E2 = 50 mV).

Over one step of ``Δt`` the input is constant and v, G_k move from the step's start to its end;
the energy of the step is the trapezoid ``Δt (P(start) + P(end)) / 2`` (second order in Δt like the
Strang-split simulation it follows; the end states are those of
:meth:`circuits.neurons.MIFNeuron.forward` with ``return_states=True``).
"""
from __future__ import annotations

import torch

from devices.volatile import volatile_conductance

from .mif import MIFParameters, MIFState

__all__ = ["mif_supply_power", "mif_supply_energy"]

Tensor = torch.Tensor


def mif_supply_power(i_in: Tensor, state: MIFState, p: MIFParameters) -> Tensor:
    """Power (W) drawn from the supplies of each neuron (module docstring) with input current
    ``i_in`` (A) in state ``state``; same shape as ``i_in``."""
    v = state.v
    if p.v_low is None and p.v_high is None:
        p_in = (i_in * v).clamp_min(0.0)
    else:
        high = v if p.v_high is None else torch.as_tensor(p.v_high, dtype=v.dtype, device=v.device)
        low = v if p.v_low is None else torch.as_tensor(p.v_low, dtype=v.dtype, device=v.device)
        p_in = (i_in * torch.where(i_in >= 0, high, low)).clamp_min(0.0)
    p_e1 = (p.e1 * volatile_conductance(state.x1, p.m1) * (p.e1 - v)).clamp_min(0.0)
    p_e2 = (p.e2 * volatile_conductance(state.x2, p.m2) * (p.e2 - v)).clamp_min(0.0)
    return p_in + p_e1 + p_e2


def mif_supply_energy(i_in: Tensor, states: MIFState, initial: MIFState, p: MIFParameters, dt: float) -> Tensor:
    """Energy (J) drawn from the supplies of each neuron over a trace: input currents ``i_in``
    ``(T, batch, n)`` (A), ``states`` the end-of-step state traces ``(T, batch, n)`` and
    ``initial`` the state before the first step ``(batch, n)``. Returns ``(batch, n)``, summed
    over the T steps of ``dt`` s with the trapezoid rule (module docstring)."""
    start = MIFState(*(torch.cat([s0.unsqueeze(0), s[:-1]]) for s0, s in zip(initial, states)))
    power = mif_supply_power(i_in, start, p) + mif_supply_power(i_in, states, p)
    return 0.5 * dt * power.sum(0)
