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
sub-flows, second order in the step Δt: half a step of the switch with v frozen, a full
membrane step with x frozen (exact for piecewise-constant input), half a step of the switch
with the new v::

    v ← v∞ + (v − v∞) exp(−(G_b + g_leak) Δt / C),    v∞ = I / (G_b + g_leak)

The switch sub-flow (v frozen) is not linear in x: the regenerative thresholds and the divider
voltage V_M = v/(1 + R_L G(x)) move with x. Each of its (sub-)steps h is the exponential
midpoint rule: a predictor ``x_m`` = exact MSS step of h/2 with the rates frozen at the start,
then the exact MSS step of h from x with the rates (thresholds and V_M) frozen at ``x_m``::

    x ← x∞(x_m) + (x − x∞(x_m)) exp(−(a(x_m) + b(x_m)) h)

second order in h, a convex combination of x and x∞ ∈ (0, 1) for any h (unconditionally
stable, x ∈ [0, 1]) and differentiable. Regenerative switching makes the rates change much
faster than the device time constant while the switch fires or releases: at loop gain
``L = τ_min [(1 − x) σ_a(1 − σ_a)/τ_on + x σ_b(1 − σ_b)/τ] |∂z/∂x|`` (z: the rates' logistic
argument, ∂z/∂x = (ρ (v_on − v_off) + ∂V_M'/∂x)/k_th; L ≈ 100 for the NbO₂ preset, 0 at rest) the
rates e-fold within τ_min/L ≈ 10 ps. The switch half step is therefore split into
``n = clamp(ceil(substep_gain · L), 1, max_substeps)`` equal sub-steps per element (a
detached integer, 1 except while a switch fires or releases): the rates then change by
O(h/(substep_gain τ_min)) over a sub-step, so the error stays O(Δt²) through the firing event
instead of O(Δt) (a step with thresholds frozen at the start of each half step, the previous
scheme, is first order). Measured against a Radau reference (rtol 1e-10) of the 2-D ODE, NbO₂
preset, 400 µA from v_lo over 2 µs, membrane error / swing: 1.0e-2, 1.7e-3, 1.1e-4, 3.0e-5,
3.2e-6 at Δt = 2, 1, 0.5, 0.25, 0.125 ns (previous scheme: 1.9e-2 at 0.25 ns, halving with Δt);
about 1 % more switch updates than without sub-steps, and up to ``max_substeps`` per event.
``substep_gain = 0`` gives one sub-step (the exponential midpoint rule over the half step).

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
simulated rate is 4.0–4.8 % above 1/T for 50–800 µA (Δt = 0.5 ns, converged: the same within
0.1 % at Δt = 2 ns; 2.8–4.7 % at Δt = 5 ns) and 0.6–0.9 % above it for k_th = 0.25 mV. (The
first-order step used before this scheme gave 3.2–3.6 % at 2 ns: part of that was its error.)
The f–I curve rises from 0 at the rheobase to ≈ 1.29 MHz near 0.7 mA, then falls (the discharge
slows) and stops between 1.2 and 1.25 mA, where the switch stays ON (depolarisation block); near
that upper limit the estimate is poor.

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

from devices.seeding import make_generator
from devices.validation import check_int, check_real, check_seed
from devices.volatile import (NBO2_PICKETT2013, SwitchParameters, VolatileMemristor, validate_switch_parameters,
                              volatile_conductance, volatile_steady_state)
from devices.volatile_physics import _neg_log_rates as neg_log_rates

from .mif import _check_input

__all__ = ["OscillatorParameters", "OscillatorState", "OscillatorNeuron", "oscillator_step",
           "oscillator_initial_state", "oscillator_period", "validate_oscillator_parameters", "spike_times",
           "f_i_curve", "switch_flow", "membrane_flow", "loop_gain", "switch_substep_counts"]

Tensor = torch.Tensor


class OscillatorParameters(NamedTuple):
    """Relaxation-oscillator parameters (SI; floats or per-neuron tensors). Defaults: NbO₂ switch.

    Attributes:
        c: membrane capacitance C (F).
        r_load: load resistor R_L in series with the switch (Ω).
        g_leak: leak conductance across C (S).
        m: :class:`SwitchParameters` of the threshold switch.
        x_spike: switch state whose upward crossing marks a spike (counting only).
        substep_gain: switch sub-steps per unit of the regenerative loop gain L (module
            docstring, "Integration"); 0: one sub-step per half step.
        max_substeps: largest number of switch sub-steps per half step.
    """

    c: float | Tensor = 1e-9
    r_load: float | Tensor = 100.0
    g_leak: float | Tensor = 0.0
    m: SwitchParameters = NBO2_PICKETT2013.switch_parameters()
    x_spike: float = 0.5
    substep_gain: float = 1.0
    max_substeps: int = 128


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
    check_real("x_spike", p.x_spike, low=0.0, high=1.0, low_open=True, high_open=True)
    check_real("substep_gain", p.substep_gain, low=0.0)
    check_int("max_substeps", p.max_substeps, low=1)
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
    check_real("v", v)
    vv = torch.full(tuple(shape), float(v), dtype=dtype, device=device)
    x = volatile_steady_state(vv / (1 + p.r_load * volatile_conductance(torch.zeros_like(vv), p.m)), p.m)
    return OscillatorState(vv, x.expand_as(vv).clone())


def _divider(v: Tensor, x: Tensor, p: OscillatorParameters) -> tuple[Tensor, Tensor]:
    """``(G(x), V_M)``: the switch conductance (S) and the voltage across it (V) at membrane ``v``."""
    g = volatile_conductance(x, p.m)
    return g, v / (1 + p.r_load * g)


def _frozen_step(x: Tensor, na: Tensor, nb: Tensor, h) -> Tensor:
    """Exact MSS step of ``h`` s from ``x`` with the log rates held at ``(na, nb)`` (a convex
    combination of x and x∞ = a/(a + b); expm1: exact at h = 0)."""
    frac = -torch.expm1(-h * (torch.exp(-na) + torch.exp(-nb)))
    return (x + (torch.sigmoid(nb - na) - x) * frac).clamp(0.0, 1.0)


class _Switch:
    """The switch sub-flow's rates at a frozen membrane voltage ``v`` (V), with the C2C log-rate
    offsets of one half step (``noise``, or None)."""

    def __init__(self, v: Tensor, p: OscillatorParameters, noise):
        self.v, self.p, self.noise = v, p, noise

    def log_rates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(−log a, −log b)`` at state ``x`` (thresholds and V_M at x) plus the C2C offsets."""
        na, nb = neg_log_rates(_divider(self.v, x, self.p)[1], self.p.m, x)
        return (na, nb) if self.noise is None else (na + self.noise[0], nb + self.noise[1])

    def midpoint(self, x: Tensor, h, start: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Exponential midpoint step of ``h`` s (``start``: the log rates at ``x`` if known)."""
        na, nb = self.log_rates(x) if start is None else start
        na, nb = self.log_rates(_frozen_step(x, na, nb, h / 2))
        return _frozen_step(x, na, nb, h)


@torch.no_grad()
def _loop_gain(x: Tensor, g: Tensor, v_m: Tensor, p: OscillatorParameters) -> Tensor:
    m = p.m
    window = m.v_on - m.v_off
    dv_m = -v_m * p.r_load * (1 / m.r_on - 1 / m.r_off) / (1 + p.r_load * g)     # ∂V_M/∂x (V)
    v_eff = v_m
    if m.bipolar:
        dv_m, v_eff = dv_m * torch.sign(v_m), v_m.abs()
    dz = (m.feedback * window + dv_m).abs() / m.k_th                             # |∂z/∂x|
    # logistic arguments of a and b (thresholds of devices.volatile_physics); σ(z)σ(−z) = σ(z)(1 − σ(z))
    # without the cancellation of 1 − σ near 1
    th_on = m.v_on - m.feedback * window * x
    z_a = (v_eff - th_on) / m.k_th
    z_b = (th_on - (1 - m.feedback) * window - v_eff) / m.k_th
    slope_a = torch.sigmoid(z_a) * torch.sigmoid(-z_a)
    slope_b = torch.sigmoid(z_b) * torch.sigmoid(-z_b)
    tau_min = torch.minimum(torch.as_tensor(m.tau, dtype=x.dtype, device=x.device),
                            torch.as_tensor(m.tau_on, dtype=x.dtype, device=x.device))
    return tau_min * ((1 - x) * slope_a / m.tau_on + x * slope_b / m.tau) * dz


@torch.no_grad()
def _loop_gain_bound(x: Tensor, v_m: Tensor, na: Tensor, nb: Tensor, p: OscillatorParameters) -> Tensor:
    """A cheap upper bound of :func:`loop_gain` from the (noise-free) log rates already at hand:
    ``σ(z)(1 − σ(z))/τ ≤ σ(z)/τ`` (the rate) and ``|∂z/∂x| ≤ (ρ w + |V_M| R_L ΔG)/k_th``."""
    m = p.m
    dz = (m.feedback * (m.v_on - m.v_off) + v_m.abs() * (p.r_load * (1 / m.r_on - 1 / m.r_off))) / m.k_th
    tau_min = torch.minimum(torch.as_tensor(m.tau, dtype=x.dtype, device=x.device),
                            torch.as_tensor(m.tau_on, dtype=x.dtype, device=x.device))
    return tau_min * ((1 - x) * torch.exp(-na) + x * torch.exp(-nb)) * dz


def loop_gain(v: Tensor, x: Tensor, p: OscillatorParameters) -> Tensor:
    """Regenerative loop gain ``L`` (dimensionless, detached) of the switch at membrane ``v`` (V)
    and state ``x``: ``τ_min`` times the part of ``∂(a − (a + b) x)/∂x`` that comes from the
    x-dependence of the rates (thresholds and V_M); module docstring. ≈ 0 at rest, up to about
    ρ (v_on − v_off)/(4 k_th) while the switch fires or releases."""
    return _loop_gain(x, *_divider(v, x, p), p)


def _substeps(gain: Tensor, p: OscillatorParameters) -> Tensor:
    return torch.ceil(p.substep_gain * gain).clamp(1, p.max_substeps)


def switch_substep_counts(v: Tensor, x: Tensor, p: OscillatorParameters) -> Tensor:
    """Switch sub-steps per element of one half step: ``clamp(ceil(substep_gain · L), 1, max_substeps)``."""
    return _substeps(loop_gain(v, x, p), p)


def _c2c_noise(x: Tensor, p: OscillatorParameters, generator) -> tuple[Tensor, Tensor] | None:
    """Per-element lognormal C2C log-rate offsets of one half step (as :func:`devices.volatile.volatile_step`)."""
    sigma = float(p.m.c2c_sigma)
    if sigma <= 0:
        return None
    if generator is None:
        raise ValueError("generator must be a torch.Generator when c2c_sigma > 0 (randomness is explicit)")
    return tuple(sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) for _ in range(2))


def switch_flow(x: Tensor, v: Tensor, p: OscillatorParameters, h, generator: torch.Generator | None = None) -> Tensor:
    """The switch sub-flow over ``h`` s with the membrane frozen at ``v`` (V): per element
    :func:`switch_substep_counts` equal exponential-midpoint sub-steps (module docstring). C2C
    noise: one draw per element and call, shared by its sub-steps. The sub-step count is read
    back to the host once per call (a device synchronisation on a GPU)."""
    switch = _Switch(v, p, _c2c_noise(x, p, generator))
    g, v_m = _divider(v, x, p)
    na, nb = neg_log_rates(v_m, p.m, x)
    start = (na, nb) if switch.noise is None else (na + switch.noise[0], nb + switch.noise[1])
    if p.substep_gain == 0 or x.numel() == 0 or \
            float(p.substep_gain * _loop_gain_bound(x, v_m, na, nb, p).max()) <= 1:
        return switch.midpoint(x, h, start)       # one sub-step everywhere (the common case: no switch firing)
    n = _substeps(_loop_gain(x, g, v_m, p), p)
    n_max = int(n.max())
    if n_max == 1:
        return switch.midpoint(x, h, start)
    h_sub = h / n
    for k in range(n_max):
        x = torch.where(n > k, switch.midpoint(x, h_sub, start if k == 0 else None), x)
    return x


def membrane_flow(v: Tensor, x: Tensor, i_in: Tensor, p: OscillatorParameters, h) -> Tensor:
    """Exact membrane update over ``h`` s with the switch frozen at ``x`` and input ``i_in`` (A)."""
    g = volatile_conductance(x, p.m)
    g_tot = g / (1 + p.r_load * g) + p.g_leak
    v_inf = i_in / g_tot
    return v_inf + (v - v_inf) * torch.exp(-g_tot * h / p.c)


def oscillator_step(i_in: Tensor, state: OscillatorState, p: OscillatorParameters, dt,
                    generator: torch.Generator | None = None) -> tuple[Tensor, OscillatorState]:
    """One Strang-split step of ``dt`` s with input current ``i_in`` (A) held constant; returns
    ``(v, state)`` (second order; module docstring, "Integration")."""
    v, x = state
    half = dt / 2
    x = switch_flow(x, v, p, half, generator)
    v = membrane_flow(v, x, i_in, p, dt)
    x = switch_flow(x, v, p, half, generator)
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
    t_sim = check_real("t_sim", t_sim, low=0.0, low_open=True)
    dt = check_real("dt", dt, low=0.0, low_open=True)
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
    :func:`devices.seeding.make_generator` ``(seed, "c2c")`` unless one is passed to :meth:`forward`).
    ``substep_gain``/``max_substeps``: the switch sub-steps (module docstring, "Integration").
    All options are plain values.
    """

    def __init__(self, n: int, *, dt: float = 2e-9, c: float = 1e-9, r_load: float = 100.0, g_leak: float = 0.0,
                 x_spike: float = 0.5, v_init: float = 0.0, device_preset: str = "nbo2_pickett2013",
                 device_overrides: dict | None = None, d2d: float | None = None, c2c_sigma: float | None = None,
                 substep_gain: float = 1.0, max_substeps: int = 128, seed: int = 0,
                 dtype: torch.dtype = torch.float32, device="cpu"):
        super().__init__()
        self.n = check_int("n (number of neurons)", n, low=1)
        self.dt = check_real("dt", dt, low=0.0, low_open=True)
        self.v_init = check_real("v_init", v_init)
        self.seed = check_seed("seed", seed)
        overrides = dict(device_overrides or {})
        if d2d is not None:
            d2d = check_real("d2d", d2d, low=0.0, high=1 / 3, high_open=True)
            overrides.update(d2d_r_sigma=d2d, d2d_v_sigma=d2d, d2d_tau_sigma=d2d)
        if c2c_sigma is not None:
            overrides["c2c_sigma"] = check_real("c2c_sigma", c2c_sigma, low=0.0)
        dev = VolatileMemristor((self.n,), preset=device_preset, seed=self.seed, dtype=dtype, device=device,
                                **overrides)
        self.device_config = dev.to_config()
        dyn = dev.dynamics
        for field in ("r_on", "r_off", "v_on", "tau", "tau_on"):
            self.register_buffer(f"m_{field}", getattr(dyn, field).clone())
        self._switch = dict(v_off=float(dyn.v_off), k_th=float(dyn.k_th), bipolar=bool(dyn.bipolar),
                            c2c_sigma=float(dyn.c2c_sigma), feedback=float(dyn.feedback))
        self.c = check_real("c", c, low=0.0, low_open=True)
        self.r_load = check_real("r_load", r_load, low=0.0)
        self.g_leak = check_real("g_leak", g_leak, low=0.0)
        self.x_spike = check_real("x_spike", x_spike, low=0.0, high=1.0, low_open=True, high_open=True)
        self.substep_gain = check_real("substep_gain", substep_gain, low=0.0)
        self.max_substeps = check_int("max_substeps", max_substeps, low=1)
        validate_oscillator_parameters(self.parameters_tuple())
        self._generator: torch.Generator | None = None

    def parameters_tuple(self) -> OscillatorParameters:
        """The :class:`OscillatorParameters` used by :meth:`forward` (per-neuron switch tensors)."""
        s = self._switch
        m = SwitchParameters(self.m_r_on, self.m_r_off, self.m_v_on, s["v_off"], self.m_tau, self.m_tau_on, s["k_th"],
                             s["bipolar"], s["c2c_sigma"], s["feedback"])
        return OscillatorParameters(self.c, self.r_load, self.g_leak, m, self.x_spike, self.substep_gain,
                                    self.max_substeps)

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
                self._generator = make_generator(self.seed, "c2c", device=i_in.device)
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
        return (f"n={self.n}, dt={self.dt:g} s, c={self.c:g} F, r_load={self.r_load:g} Ω, g_leak={self.g_leak:g} S, "
                f"substep_gain={self.substep_gain:g}")
