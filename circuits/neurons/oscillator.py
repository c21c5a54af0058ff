r"""Threshold-switch relaxation-oscillator neuron (Pickett et al., Nat. Mater. 12, 114 (2013);
Duan et al., Nat. Commun. 11, 3399 (2020)).

Circuit: the input current I (A) charges a membrane capacitor C (node v to ground); across C sits
a volatile threshold switch M (:mod:`devices.volatile`, threshold ``v_on`` above hold ``v_off``)
in series with a load resistor R_L, and optionally a leak conductance g_leak. Equations::

    C dv/dt = I − G_b(x) v − g_leak v,      G_b = G(x) / (1 + R_L G(x))   (M in series with R_L)
    V_M     = v / (1 + R_L G(x))                                          (voltage across M)
    dx/dt   = a − (a + b) x,   a, b: MSS rates at V_M with thresholds moved by x (``feedback``)

Under DC input C charges through the OFF switch until V_M reaches ``v_on``; M turns ON and
discharges C through R_on + R_L until V_M falls below ``v_off``; M relaxes OFF and the cycle
repeats: tonic spiking, faster for larger I, with no threshold comparator and no reset.

Integration (:func:`oscillator_step`): Strang splitting of two unconditionally stable
sub-flows: the device update with v frozen (exact MSS update at the divider voltage V_M of the
sub-step's start) and the membrane update with x frozen, exact for piecewise-constant input::

    v ← v∞ + (v − v∞) exp(−(G_b + g_leak) Δt / C),    v∞ = I / (G_b + g_leak)

Period estimate (:func:`oscillator_period`, ideal switch: instantaneous switching at the
thresholds; node-voltage thresholds ``v_hi = v_on (1 + R_L/R_off)``, ``v_lo = v_off (1 + R_L/R_on)``)::

    G_c = 1/(R_off + R_L) + g_leak,  G_d = 1/(R_on + R_L) + g_leak,  v_c = I/G_c,  v_d = I/G_d
    t_charge    = (C/G_c) ln((v_c − v_lo) / (v_c − v_hi))      (needs v_c > v_hi: I > v_hi G_c, rheobase)
    t_discharge = (C/G_d) ln((v_hi − v_d) / (v_lo − v_d))      (needs v_d < v_lo: I < v_lo G_d, else stuck ON)
    T = t_charge + t_discharge

It needs ``v_lo < v_hi`` (R_L small enough), which :func:`validate_oscillator_parameters`
checks. The estimate is the sharp-switch limit: the model's soft thresholds (k_th) make the
switch fire a few k_th early. With the defaults (NbO₂ preset: v_on 1 V, v_off 0.6 V, R_on 500 Ω,
R_off 50 kΩ, τ = 1 ns, k_th = 1 mV, ρ = 1; C = 1 nF, R_L = 100 Ω) the rheobase is 20.0 µA, the
simulated rate is 3.2–3.6 % above 1/T for 50–800 µA (Δt = 2 ns; 2.1–3.3 % at Δt = 5 ns) and
within 0.6 % for k_th = 0.25 mV. The f–I curve rises from 0 at the rheobase to ≈ 1.25 MHz near
0.8 mA, then falls (the discharge slows) and stops above ≈ 1.2 mA, where the switch stays ON
(depolarisation block); near that upper limit the estimate is poor.

The switch must be regenerative (``feedback`` ρ > 0, as in the threshold-switch presets): a
pure MSS switch (ρ = 0) cannot sustain oscillation in this circuit (see :mod:`devices.volatile`:
negative divergence everywhere, Bendixson's criterion); it turns partly ON once and stays there.

Readout: a spike is the switch turning ON (x rising through ``x_spike``; :func:`spike_times`,
detached, for counting only). :func:`f_i_curve` returns the steady firing rate per DC input.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from devices.validation import check_scalar
from devices.volatile import (NBO2_PICKETT2013, SwitchParameters, VolatileMemristor, validate_switch_parameters,
                              volatile_conductance, volatile_steady_state, volatile_step)

from .mif import _check_count, _check_input

__all__ = ["OscillatorParameters", "OscillatorState", "OscillatorNeuron", "oscillator_step",
           "oscillator_initial_state", "oscillator_period", "validate_oscillator_parameters", "spike_times",
           "f_i_curve"]

Tensor = torch.Tensor


class OscillatorParameters(NamedTuple):
    """Relaxation-oscillator parameters (SI; floats or per-neuron tensors). Defaults: NbO₂ switch.

    Attributes:
        c: membrane capacitance C (F).
        r_load: load resistor R_L in series with the switch (Ω).
        g_leak: leak conductance across C (S).
        m: :class:`SwitchParameters` of the threshold switch.
        x_spike: switch state whose upward crossing marks a spike (counting only).
    """

    c: float | Tensor = 1e-9
    r_load: float | Tensor = 100.0
    g_leak: float | Tensor = 0.0
    m: SwitchParameters = NBO2_PICKETT2013.switch_parameters()
    x_spike: float = 0.5


class OscillatorState(NamedTuple):
    """Membrane voltage ``v`` (V) and switch state ``x`` ∈ [0, 1]."""

    v: Tensor
    x: Tensor


def _thresholds(p: OscillatorParameters):
    m = p.m
    return m.v_on * (1 + p.r_load / m.r_off), m.v_off * (1 + p.r_load / m.r_on)


def validate_oscillator_parameters(p: OscillatorParameters) -> None:
    """Raise ``ValueError`` naming the parameter (C ≤ 0, R_L < 0, g_leak < 0, NaN, bad switch, v_lo ≥ v_hi)."""
    for name, low, open_ in (("c", 0.0, True), ("r_load", 0.0, False), ("g_leak", 0.0, False)):
        t = torch.as_tensor(getattr(p, name), dtype=torch.float64)
        if not bool(torch.isfinite(t).all()) or not bool(((t > low) if open_ else (t >= low)).all()):
            bracket = "(" if open_ else "["
            raise ValueError(f"{name} must be finite and in {bracket}{low:g}, inf), got {getattr(p, name)}")
    check_scalar("x_spike", p.x_spike, low=0.0, high=1.0, low_open=True, high_open=True)
    validate_switch_parameters(p.m, "m")
    if not bool((torch.as_tensor(p.m.v_off, dtype=torch.float64) > 0).all()):
        raise ValueError("m.v_off must be > 0 V for a relaxation oscillator (the switch must turn OFF at rest)")
    v_hi, v_lo = (torch.as_tensor(t, dtype=torch.float64) for t in _thresholds(p))
    if not bool((v_lo < v_hi).all()):
        raise ValueError("r_load too large: the switch would turn OFF as soon as it turns ON; need "
                         "v_off (1 + r_load/r_on) < v_on (1 + r_load/r_off)")


def oscillator_initial_state(shape, p: OscillatorParameters = OscillatorParameters(), *, v: float = 0.0,
                             dtype: torch.dtype = torch.float32, device=None) -> OscillatorState:
    """Uniform initial state: v (V), switch at its rest state x∞ at that voltage."""
    check_scalar("v", v)
    vv = torch.full(tuple(shape), float(v), dtype=dtype, device=device)
    x = volatile_steady_state(vv / (1 + p.r_load * volatile_conductance(torch.zeros_like(vv), p.m)), p.m)
    return OscillatorState(vv, x.expand_as(vv).clone())


def _switch(v, x, p, dt, generator):
    g = volatile_conductance(x, p.m)
    return volatile_step(x, v / (1 + p.r_load * g), dt, p.m, generator)


def oscillator_step(i_in: Tensor, state: OscillatorState, p: OscillatorParameters, dt,
                    generator: torch.Generator | None = None) -> tuple[Tensor, OscillatorState]:
    """One Strang-split step of ``dt`` s with input current ``i_in`` (A) held constant; returns ``(v, state)``."""
    v, x = state
    half = dt / 2
    x = _switch(v, x, p, half, generator)
    g = volatile_conductance(x, p.m)
    g_tot = g / (1 + p.r_load * g) + p.g_leak
    v_inf = i_in / g_tot
    v = v_inf + (v - v_inf) * torch.exp(-g_tot * dt / p.c)
    x = _switch(v, x, p, half, generator)
    return v, OscillatorState(v, x)


def oscillator_period(i_in, p: OscillatorParameters = OscillatorParameters()) -> Tensor:
    """Ideal-switch period (s) for DC input ``i_in`` (A) (formula in the module docstring);
    ``inf`` below the rheobase and in the stuck-ON regime."""
    i = torch.as_tensor(i_in, dtype=torch.float64)
    m = p.m
    v_hi, v_lo = _thresholds(p)
    g_c = 1 / (m.r_off + p.r_load) + p.g_leak
    g_d = 1 / (m.r_on + p.r_load) + p.g_leak
    v_c, v_d = i / g_c, i / g_d
    ok = (v_c > v_hi) & (v_d < v_lo)
    v_c = torch.where(ok, v_c, torch.full_like(i, 2.0 * v_hi + 1.0))
    v_d = torch.where(ok, v_d, torch.zeros_like(i) - 1.0)
    t_c = p.c / g_c * torch.log((v_c - v_lo) / (v_c - v_hi))
    t_d = p.c / g_d * torch.log((v_hi - v_d) / (v_lo - v_d))
    return torch.where(ok, t_c + t_d, torch.full_like(i, math.inf))


def spike_times(x_trace: Tensor, dt, level: float = 0.5) -> list:
    """Times (s) of upward crossings of ``level`` by a switch-state trace ``(T, n)`` (linear
    interpolation between steps; the sample ``k`` is at ``(k + 1) dt``); detached, counting only."""
    x = x_trace.detach().double().reshape(x_trace.shape[0], -1).cpu()
    out = []
    for j in range(x.shape[1]):
        xj = x[:, j]
        k = torch.nonzero((xj[1:] > level) & (xj[:-1] <= level)).flatten()
        frac = (level - xj[k]) / (xj[k + 1] - xj[k])
        out.append(((k + 1 + frac) * dt).tolist())
    return out


@torch.no_grad()
def f_i_curve(currents, params: OscillatorParameters = OscillatorParameters(), t_sim: float = 50e-6,
              dt: float = 2e-9) -> Tensor:
    """Steady firing rate (Hz) for each DC input current (A).

    The simulation starts at the reset level ``v_lo`` with the switch OFF (the state right
    after a spike), so every interval is a steady one: the rate is ``(n − 1)/(t_n − t_1)`` over
    the ``n`` spikes in ``t_sim`` s, ``1/t_1`` (first passage from reset) with a single spike
    after which the switch released, and 0 otherwise (below the rheobase, stuck ON above the
    upper limit, or a period longer than ``t_sim``: rates below ≈ 1/t_sim are not resolved)."""
    validate_oscillator_parameters(params)
    t_sim = check_scalar("t_sim", t_sim, low=0.0, low_open=True)
    dt = check_scalar("dt", dt, low=0.0, low_open=True)
    i = torch.as_tensor(currents, dtype=torch.float64).flatten()
    if not bool(torch.isfinite(i).all()):
        raise ValueError("currents must be finite (no NaN/inf)")
    v_lo = float(torch.as_tensor(_thresholds(params)[1], dtype=torch.float64).min())
    state = oscillator_initial_state(i.shape, params, v=v_lo, dtype=torch.float64)
    xs = []
    for _ in range(int(round(t_sim / dt))):
        _, state = oscillator_step(i, state, params, dt)
        xs.append(state.x)
    rates = []
    released = (state.x <= params.x_spike).tolist()
    for t, off in zip(spike_times(torch.stack(xs), dt, params.x_spike), released):
        if len(t) >= 2:
            rates.append((len(t) - 1) / (t[-1] - t[0]))
        else:  # one spike counts only if the switch released again (else it is stuck ON)
            rates.append(1.0 / t[0] if t and off else 0.0)
    return torch.tensor(rates, dtype=torch.float64)


class OscillatorNeuron(nn.Module):
    """A layer of ``n`` relaxation-oscillator neurons over time-major input currents ``(T, batch, n)`` (A).

    The switches come from :class:`devices.VolatileMemristor` (preset ``device_preset``,
    overrides ``device_overrides``, shape ``(n,)``, seed ``seed``): D2D variation per neuron;
    ``d2d`` sets the three D2D sigmas together, ``c2c_sigma`` the per-step rate noise (generator
    seeded with ``seed + 1`` unless one is passed to :meth:`forward`). All options are plain values.
    """

    def __init__(self, n: int, *, dt: float = 2e-9, c: float = 1e-9, r_load: float = 100.0, g_leak: float = 0.0,
                 x_spike: float = 0.5, v_init: float = 0.0, device_preset: str = "nbo2_pickett2013",
                 device_overrides: dict | None = None, d2d: float | None = None, c2c_sigma: float | None = None,
                 seed: int = 0, dtype: torch.dtype = torch.float32, device="cpu"):
        super().__init__()
        self.n = _check_count(n)
        self.dt = check_scalar("dt", dt, low=0.0, low_open=True)
        self.v_init = check_scalar("v_init", v_init)
        self.seed = int(seed)
        overrides = dict(device_overrides or {})
        if d2d is not None:
            d2d = check_scalar("d2d", d2d, low=0.0, high=1 / 3, high_open=True)
            overrides.update(d2d_r_sigma=d2d, d2d_v_sigma=d2d, d2d_tau_sigma=d2d)
        if c2c_sigma is not None:
            overrides["c2c_sigma"] = check_scalar("c2c_sigma", c2c_sigma, low=0.0)
        dev = VolatileMemristor((self.n,), preset=device_preset, seed=self.seed, dtype=dtype, device=device,
                                **overrides)
        self.device_config = dev.to_config()
        dyn = dev.dynamics
        for field in ("r_on", "r_off", "v_on", "tau", "tau_on"):
            self.register_buffer(f"m_{field}", getattr(dyn, field).clone())
        self._switch = dict(v_off=float(dyn.v_off), k_th=float(dyn.k_th), bipolar=bool(dyn.bipolar),
                            c2c_sigma=float(dyn.c2c_sigma), feedback=float(dyn.feedback))
        self.c, self.r_load, self.g_leak, self.x_spike = float(c), float(r_load), float(g_leak), float(x_spike)
        validate_oscillator_parameters(self.parameters_tuple())
        self._generator: torch.Generator | None = None

    def parameters_tuple(self) -> OscillatorParameters:
        """The :class:`OscillatorParameters` used by :meth:`forward` (per-neuron switch tensors)."""
        s = self._switch
        m = SwitchParameters(self.m_r_on, self.m_r_off, self.m_v_on, s["v_off"], self.m_tau, self.m_tau_on, s["k_th"],
                             s["bipolar"], s["c2c_sigma"], s["feedback"])
        return OscillatorParameters(self.c, self.r_load, self.g_leak, m, self.x_spike)

    def initial_state(self, batch: int) -> OscillatorState:
        buf = self.m_r_on
        return oscillator_initial_state((batch, self.n), self.parameters_tuple(), v=self.v_init, dtype=buf.dtype,
                                        device=buf.device)

    def forward(self, i_in: Tensor, state: OscillatorState | None = None, *, return_states: bool = False,
                generator: torch.Generator | None = None):
        """Simulate; returns the membrane voltage trace ``(T, batch, n)`` (V), or with
        ``return_states=True`` ``(v_trace, OscillatorState of (T, batch, n) traces)``."""
        _check_input(i_in, self.n)
        p = self.parameters_tuple()
        state = self.initial_state(i_in.shape[1]) if state is None else state
        if p.m.c2c_sigma > 0 and generator is None:
            if self._generator is None or self._generator.device != i_in.device:
                self._generator = torch.Generator(device=i_in.device)
                self._generator.manual_seed(self.seed + 1)
            generator = self._generator
        vs, xs = [], []
        for t in range(i_in.shape[0]):
            v, state = oscillator_step(i_in[t], state, p, self.dt, generator)
            vs.append(v)
            if return_states:
                xs.append(state.x)
        v_trace = torch.stack(vs)
        if return_states:
            return v_trace, OscillatorState(v_trace, torch.stack(xs))
        return v_trace

    def spikes(self, x_trace: Tensor) -> Tensor:
        """Detached spike onsets (1.0 where the switch state rises through ``x_spike``) of ``(T, batch, n)``."""
        above = x_trace.detach() > self.x_spike
        onset = torch.zeros_like(above)
        onset[1:] = above[1:] & ~above[:-1]
        return onset.to(x_trace.dtype)

    def extra_repr(self) -> str:
        return f"n={self.n}, dt={self.dt:g} s, c={self.c:g} F, r_load={self.r_load:g} Ω, g_leak={self.g_leak:g} S"
