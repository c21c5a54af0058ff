r"""Memristive integrate-and-fire (MIF) neuron: S.-M. Kang et al., "How to Build a Memristive
Integrate-and-Fire Model for Spiking Neuronal Signal Generation", IEEE TCAS-I, Nov. 2021.

Circuit: a membrane capacitor C from node v to ground; two volatile memristors M1, M2
(:mod:`devices.volatile`), each in series with a DC source E_k, from v to ground; an input
current I (A) into v. Governing equations::

    C dv/dt   = I − G1 (v − E1) − G2 (v − E2),          G_k = x_k/R_on,k + (1 − x_k)/R_off,k
    dx_k/dt   = a_k − (a_k + b_k) x_k,                  a_k, b_k: MSS rates at V_k = v − E_k

There is no threshold and no reset anywhere: the membrane repolarises because the memristors
switch ON above their threshold and pull v toward their reversal potentials, then relax.

Integration (:func:`mif_step`). For conductances and input held constant over Δt the membrane
equation is linear and solved exactly::

    v ← E_eff + (v − E_eff) · exp(−G_tot Δt / C),   G_tot = G1 + G2,   E_eff = (I + G1 E1 + G2 E2) / G_tot

and for v held constant each device update is exact too (:func:`devices.volatile.volatile_step`).
The two exact sub-flows are composed by Strang splitting (default, second order): half a step
of both devices with the old v, a full membrane step with the new conductances, half a step of
the devices with the new v. ``splitting="lie"`` (first order: full device step with the old v,
then the membrane) costs one device update less. Both are unconditionally stable and
differentiable at any Δt (every factor is an ``exp(−rate·Δt)`` ∈ (0, 1]). Against a Radau
reference (rtol 1e-11) of the coupled ODE for a 20 µA DC step (M1 switches, v peaks ≈ 0.22 V),
the largest error relative to the swing is 1.0e-2 at Δt = 1 µs, 1.5e-4 at 100 ns and 3.5e-5 at
50 ns (Strang; second order; Lie: 1.1e-2, 2.8e-4, 9.9e-5).

:func:`mif_step_euler` is the forward-Euler update of the authors' snnTorch code (all new
values from the old state). Its membrane factor ``1 − G_tot Δt/C`` leaves (−1, 1) as soon as a
memristor turns ON (with the MIF parameters G_on Δt/C = 10 at Δt = 1 µs; for the 20 µA step
above it reaches 1e35 V within 100 µs): it is here only to demonstrate that failure.

Input compliance (optional). The input current comes from a current mirror whose output stage
cannot drive the membrane beyond its supply rails ``v_low`` < ``v_high`` (V): in range it is an
ideal current source; at a rail it leaves saturation and delivers only the current that holds v
there. For the linear membrane equation of one step the exact solution of that hard-rail model
is the unconstrained exponential update clipped to the rails: v(t) moves monotonically toward
E_eff, so once it reaches a rail it stays there for the rest of the step (E_eff beyond the rail)
and never reaches it otherwise (the memristor branches pull toward E1, E2 inside the rails). To
keep gradients flowing, the clip is smoothed with a softplus of width ``v_knee`` (default 0.1 V, about
the saturation voltage of the output transistor, over which a real mirror leaves saturation)::

    v ← v_high − κ·softplus((v_high − v_lin)/κ),  then  v ← v_low + κ·softplus((v − v_low)/κ),  κ = v_knee

which equals ``v_lin`` to within ``κ·exp(−d/κ)`` at a distance d from the rails, stays within
``κ·ln 2`` of a rail that clips, and never leaves [v_low, v_high + κ·exp(−(v_high − v_low)/κ)]
(4.5 µV above v_high for the ±0.5 V, 0.1 V defaults of a network). Unset rails (None, the
default): an ideal source, no clipping. :func:`mif_derivatives` is the unconstrained ODE (no
rails). The SPICE export (:mod:`circuits.spice.neuron_export`) represents the rails by a stiff
clamp of the membrane to them; torch with a small ``v_knee`` agrees with it
(tests/test_spice_neuron.py).

Readouts. :func:`spike_readout` (v above ``v_spike``) and :func:`count_spikes` are detached:
they are for counting, never for gradients. :func:`analog_readout` gives the differentiable
time integral, mean or peak of the membrane voltage for losses.

Parameters: the SI mapping of the paper's coded defaults is in :mod:`devices.volatile`
(``"mif_kang2021"``): C = 100 pF, E1 = 0 V, E2 = 50 mV, readout level 30 mV, Δt = 1 µs, initial
state x = 0.0238 (G ≈ 33.6 µS) as in the code; 1 mA of SI input current = 1 code unit.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from devices.seeding import make_generator
from devices.validation import check_choice, check_int, check_real, check_seed
from devices.volatile import (SwitchParameters, VolatileMemristor, validate_switch_parameters, volatile_conductance,
                              volatile_rates, volatile_step)

__all__ = ["MIFParameters", "MIFState", "MIFNeuron", "mif_step", "mif_step_euler", "mif_derivatives",
           "mif_initial_state", "membrane_step", "clip_to_rails", "validate_mif_parameters", "spike_readout",
           "count_spikes", "analog_readout", "X_INIT_KANG2021"]

Tensor = torch.Tensor

#: Initial memristor state of the MIF code (G ≈ 33.6 µS with R_on 1 kΩ, R_off 100 kΩ).
X_INIT_KANG2021 = 0.0238


class MIFParameters(NamedTuple):
    """MIF neuron parameters (SI; floats or per-neuron tensors). Defaults: Kang et al. 2021 mapped to SI.

    Attributes:
        c: membrane capacitance C (F).
        e1: reversal source in series with M1 (V).
        e2: reversal source in series with M2 (V).
        m1: :class:`SwitchParameters` of M1.
        m2: :class:`SwitchParameters` of M2.
        v_spike: readout level of :func:`spike_readout` (V); counting only.
        splitting: ``"strang"`` (second order) or ``"lie"`` (first order).
        v_low, v_high: compliance rails (V) of the input current source, or None (ideal source).
        v_knee: smoothing width (V) of the clip at the rails.
    """

    c: float | Tensor = 1e-10
    e1: float | Tensor = 0.0
    e2: float | Tensor = 0.05
    m1: SwitchParameters = SwitchParameters()
    m2: SwitchParameters = SwitchParameters()
    v_spike: float = 0.03
    splitting: str = "strang"
    v_low: float | None = None
    v_high: float | None = None
    v_knee: float = 0.1


class MIFState(NamedTuple):
    """MIF state: membrane voltage ``v`` (V) and memristor states ``x1``, ``x2`` ∈ [0, 1]."""

    v: Tensor
    x1: Tensor
    x2: Tensor


def validate_mif_parameters(p: MIFParameters) -> None:
    """Raise ``ValueError`` naming the parameter for bad values (C ≤ 0, NaN, v_off ≥ v_on, R_on ≥ R_off, ...)."""
    c = torch.as_tensor(p.c, dtype=torch.float64)
    if not bool(torch.isfinite(c).all()) or not bool((c > 0).all()):
        raise ValueError(f"c (membrane capacitance, F) must be finite and in (0, inf), got {p.c}")
    for name in ("e1", "e2"):
        if not bool(torch.isfinite(torch.as_tensor(getattr(p, name), dtype=torch.float64)).all()):
            raise ValueError(f"{name} (reversal potential, V) must be finite")
    check_real("v_spike", p.v_spike)
    check_choice("splitting", p.splitting, ("strang", "lie"))
    for name in ("v_low", "v_high"):
        if getattr(p, name) is not None:
            check_real(name, getattr(p, name))
    check_real("v_knee", p.v_knee, low=0.0, low_open=True)
    if p.v_low is not None and p.v_high is not None and not p.v_low < p.v_high:
        raise ValueError(f"v_low must be < v_high (compliance rails, V), got v_low={p.v_low} and v_high={p.v_high}")
    validate_switch_parameters(p.m1, "m1")
    validate_switch_parameters(p.m2, "m2")


def mif_initial_state(shape, p: MIFParameters = MIFParameters(), *, v: float = 0.0, x: float = X_INIT_KANG2021,
                      dtype: torch.dtype = torch.float32, device=None) -> MIFState:
    """A uniform initial state of ``shape`` (e.g. ``(batch, neurons)``): v (V), x1 = x2 = x."""
    check_real("v", v)
    check_real("x", x, low=0.0, high=1.0)
    full = lambda val: torch.full(tuple(shape), float(val), dtype=dtype, device=device)  # noqa: E731
    return MIFState(full(v), full(x), full(x))


def clip_to_rails(v: Tensor, v_low=None, v_high=None, v_knee=0.1) -> Tensor:
    """The softplus-smoothed clip of membrane voltages ``v`` (V) to the input source's rails
    ``[v_low, v_high]`` (module docstring, "Input compliance"); a None rail does not clip."""
    beta = 1.0 / float(v_knee)  # κ·softplus(u/κ) = softplus(u, beta=1/κ): one fused operation
    if v_high is not None:
        v = v_high - torch.nn.functional.softplus(v_high - v, beta=beta)
    if v_low is not None:
        v = v_low + torch.nn.functional.softplus(v - v_low, beta=beta)
    return v


def membrane_step(v: Tensor, i_in: Tensor, g1: Tensor, g2: Tensor, e1, e2, c, dt, rails=None) -> Tensor:
    """Exact ``v(Δt)`` of ``C dv/dt = I − G1 (v − E1) − G2 (v − E2)`` for constant I, G1, G2;
    with ``rails = (v_low, v_high, v_knee)`` clipped to the input source's rails
    (:func:`clip_to_rails`)."""
    g_tot = g1 + g2
    e_eff = (i_in + g1 * e1 + g2 * e2) / g_tot
    v = e_eff + (v - e_eff) * torch.exp(-g_tot * dt / c)
    return v if rails is None else clip_to_rails(v, *rails)


def mif_derivatives(i_in: Tensor, state: MIFState, p: MIFParameters) -> MIFState:
    """Right-hand side ``(dv/dt [V/s], dx1/dt, dx2/dt [1/s])`` of the MIF ODE system."""
    v, x1, x2 = state
    g1, g2 = volatile_conductance(x1, p.m1), volatile_conductance(x2, p.m2)
    a1, b1 = volatile_rates(v - p.e1, p.m1, x1)
    a2, b2 = volatile_rates(v - p.e2, p.m2, x2)
    dv = (i_in - g1 * (v - p.e1) - g2 * (v - p.e2)) / p.c
    return MIFState(dv, a1 - (a1 + b1) * x1, a2 - (a2 + b2) * x2)


def _devices(v: Tensor, x1: Tensor, x2: Tensor, p: MIFParameters, dt, generator) -> tuple[Tensor, Tensor]:
    return (volatile_step(x1, v - p.e1, dt, p.m1, generator), volatile_step(x2, v - p.e2, dt, p.m2, generator))


def mif_step(i_in: Tensor, state: MIFState, p: MIFParameters, dt,
             generator: torch.Generator | None = None) -> tuple[Tensor, MIFState]:
    """One exact-splitting step of ``dt`` s with input current ``i_in`` (A) held constant.

    Returns ``(v, new_state)`` with ``v`` the membrane voltage (V) at the end of the step. C2C
    noise (``p.m1.c2c_sigma``/``p.m2.c2c_sigma`` > 0) draws from ``generator``. No validation here
    (hot path): see :func:`validate_mif_parameters` and :class:`MIFNeuron`.
    """
    v, x1, x2 = state
    if p.splitting == "lie":
        x1, x2 = _devices(v, x1, x2, p, dt, generator)
        v = membrane_step(v, i_in, volatile_conductance(x1, p.m1), volatile_conductance(x2, p.m2), p.e1, p.e2,
                          p.c, dt, (p.v_low, p.v_high, p.v_knee))
        return v, MIFState(v, x1, x2)
    half = dt / 2
    x1, x2 = _devices(v, x1, x2, p, half, generator)
    v = membrane_step(v, i_in, volatile_conductance(x1, p.m1), volatile_conductance(x2, p.m2), p.e1, p.e2, p.c, dt,
                      (p.v_low, p.v_high, p.v_knee))
    x1, x2 = _devices(v, x1, x2, p, half, generator)
    return v, MIFState(v, x1, x2)


def mif_step_euler(i_in: Tensor, state: MIFState, p: MIFParameters, dt) -> tuple[Tensor, MIFState]:
    """Forward-Euler step (as in the authors' snnTorch fork; every new value from the old state).

    Unstable once ``G_tot Δt / C > 2``; kept only to demonstrate that (no C2C noise).
    """
    d = mif_derivatives(i_in, state, p)
    v = state.v + dt * d.v
    return v, MIFState(v, state.x1 + dt * d.x1, state.x2 + dt * d.x2)


# ----------------------------------------------------------------------------- readouts
def spike_readout(v: Tensor, level) -> Tensor:
    """``1.0`` where ``v > level`` (V), else ``0.0``; detached (counting only, never for gradients)."""
    return (v.detach() > level).to(v.dtype)


def count_spikes(v_trace: Tensor, level) -> Tensor:
    """Number of upward crossings of ``level`` (V) along the time axis 0 of ``(T, ...)``; detached."""
    above = v_trace.detach() > level
    rising = above[1:] & ~above[:-1]
    return rising.sum(0) + above[0].long()


def analog_readout(v_trace: Tensor, dt, mode: str = "integral") -> Tensor:
    """Differentiable readout of a ``(T, ...)`` voltage trace: ``"integral"`` (Σ v Δt, V·s),
    ``"mean"`` (V) or ``"peak"`` (max over time, V)."""
    if mode == "integral":
        return v_trace.sum(0) * dt
    if mode == "mean":
        return v_trace.mean(0)
    if mode == "peak":
        return v_trace.max(0).values
    raise ValueError(f"mode must be 'integral', 'mean' or 'peak', got {mode!r}")


def _check_input(i_in: Tensor, n: int, name: str = "input current") -> None:
    if i_in.dim() != 3 or i_in.shape[-1] != n:
        raise ValueError(f"{name} must be time-major (T, batch, {n}) in A, got shape {tuple(i_in.shape)}")
    if not bool(torch.isfinite(i_in).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf)")


# ----------------------------------------------------------------------------- module
class MIFNeuron(nn.Module):
    """A layer of ``n`` MIF neurons over time-major input currents ``(T, batch, n)`` (A).

    Each neuron's M1 and M2 are drawn from :class:`devices.VolatileMemristor` (preset
    ``device_preset``, overrides ``device_overrides``, array shape ``(2, n)``, seed ``seed``), so
    D2D variation makes every neuron's devices differ. ``d2d`` sets ``d2d_r_sigma``,
    ``d2d_v_sigma`` and ``d2d_tau_sigma`` together (e.g. 0.1 for 10 %); ``c2c_sigma`` sets the
    per-step rate noise, drawn from the generator :func:`devices.seeding.make_generator`
    ``(seed, "c2c")`` (or the one passed to :meth:`forward`). ``v_low``/``v_high``/``v_knee`` (V)
    give the input current source its compliance rails (module docstring; None: ideal source).
    All options are plain values.
    """

    def __init__(self, n: int, *, dt: float = 1e-6, c: float = 1e-10, e1: float = 0.0, e2: float = 0.05,
                 v_spike: float = 0.03, v_init: float = 0.0, x_init: float = X_INIT_KANG2021,
                 device_preset: str = "mif_kang2021", device_overrides: dict | None = None, d2d: float | None = None,
                 c2c_sigma: float | None = None, splitting: str = "strang", v_low: float | None = None,
                 v_high: float | None = None, v_knee: float = 0.1, seed: int = 0,
                 dtype: torch.dtype = torch.float32, device="cpu"):
        super().__init__()
        self.n = check_int("n (number of neurons)", n, low=1)
        self.dt = check_real("dt", dt, low=0.0, low_open=True)
        self.v_init = check_real("v_init", v_init)
        self.x_init = check_real("x_init", x_init, low=0.0, high=1.0)
        self.seed = check_seed("seed", seed)
        overrides = dict(device_overrides or {})
        if d2d is not None:
            d2d = check_real("d2d", d2d, low=0.0, high=1 / 3, high_open=True)
            overrides.update(d2d_r_sigma=d2d, d2d_v_sigma=d2d, d2d_tau_sigma=d2d)
        if c2c_sigma is not None:
            overrides["c2c_sigma"] = check_real("c2c_sigma", c2c_sigma, low=0.0)
        devs = VolatileMemristor((2, self.n), preset=device_preset, seed=self.seed, dtype=dtype, device=device,
                                 **overrides)
        self.device_config = devs.to_config()
        dyn = devs.dynamics
        for k in (1, 2):
            for field in ("r_on", "r_off", "v_on", "tau", "tau_on"):
                self.register_buffer(f"m{k}_{field}", getattr(dyn, field)[k - 1].clone())
        self._switch = dict(v_off=float(dyn.v_off), k_th=float(dyn.k_th), bipolar=bool(dyn.bipolar),
                            c2c_sigma=float(dyn.c2c_sigma), feedback=float(dyn.feedback))
        self.c = check_real("c (membrane capacitance, F)", c, low=0.0, low_open=True)
        self.e1, self.e2 = check_real("e1 (reversal potential, V)", e1), check_real("e2 (reversal potential, V)", e2)
        self.v_spike = check_real("v_spike", v_spike)
        self.splitting = check_choice("splitting", splitting, ("strang", "lie"))
        self.v_low = None if v_low is None else check_real("v_low", v_low)
        self.v_high = None if v_high is None else check_real("v_high", v_high)
        self.v_knee = check_real("v_knee", v_knee, low=0.0, low_open=True)
        validate_mif_parameters(self.parameters_tuple())
        self._generator: torch.Generator | None = None

    def switch_parameters(self, k: int) -> SwitchParameters:
        """Per-neuron :class:`SwitchParameters` of memristor ``k`` (1 or 2)."""
        s = self._switch
        return SwitchParameters(getattr(self, f"m{k}_r_on"), getattr(self, f"m{k}_r_off"), getattr(self, f"m{k}_v_on"),
                                s["v_off"], getattr(self, f"m{k}_tau"), getattr(self, f"m{k}_tau_on"), s["k_th"],
                                s["bipolar"], s["c2c_sigma"], s["feedback"])

    def parameters_tuple(self) -> MIFParameters:
        """The :class:`MIFParameters` used by :meth:`forward` (per-neuron device tensors)."""
        return MIFParameters(self.c, self.e1, self.e2, self.switch_parameters(1), self.switch_parameters(2),
                             self.v_spike, self.splitting, self.v_low, self.v_high, self.v_knee)

    def initial_state(self, batch: int) -> MIFState:
        """The resting initial state ``(batch, n)``: v = ``v_init``, x1 = x2 = ``x_init``."""
        buf = self.m1_r_on
        return mif_initial_state((batch, self.n), v=self.v_init, x=self.x_init, dtype=buf.dtype, device=buf.device)

    def _rng(self, device) -> torch.Generator:
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = make_generator(self.seed, "c2c", device=device)
        return self._generator

    def forward(self, i_in: Tensor, state: MIFState | None = None, *, return_states: bool = False,
                generator: torch.Generator | None = None):
        """Simulate; returns the membrane voltage trace ``(T, batch, n)`` (V), or with
        ``return_states=True`` ``(v_trace, MIFState of (T, batch, n) traces)``."""
        _check_input(i_in, self.n)
        p = self.parameters_tuple()
        state = self.initial_state(i_in.shape[1]) if state is None else state
        if p.m1.c2c_sigma > 0 and generator is None:
            generator = self._rng(i_in.device)
        vs, x1s, x2s = [], [], []
        for t in range(i_in.shape[0]):
            v, state = mif_step(i_in[t], state, p, self.dt, generator)
            vs.append(v)
            if return_states:
                x1s.append(state.x1)
                x2s.append(state.x2)
        v_trace = torch.stack(vs)
        if return_states:
            return v_trace, MIFState(v_trace, torch.stack(x1s), torch.stack(x2s))
        return v_trace

    def spikes(self, v_trace: Tensor) -> Tensor:
        """Detached spike readout (v above ``v_spike``) of a voltage trace; counting only."""
        return spike_readout(v_trace, self.v_spike)

    def extra_repr(self) -> str:
        return (f"n={self.n}, dt={self.dt:g} s, c={self.c:g} F, e1={self.e1:g} V, e2={self.e2:g} V, "
                f"device={self.device_config['params']['r_on']:g}/{self.device_config['params']['r_off']:g} Ω, "
                f"splitting={self.splitting!r}")
