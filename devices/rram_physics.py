"""Stanford–PKU filamentary RRAM compact model: the pure functional core.

The model (Guan, Yu & Wong, IEEE EDL 33, 1405 (2012) and IEEE TED 59, 1172 (2012); Jiang et
al., IEEE TED 63, 1884 (2016), "A compact model for metal-oxide resistive random access memory
with experiment verification") describes a conductive filament whose tip is separated from the
electrode by a tunnelling gap ``g`` (m). Current, temperature and gap dynamics::

    I(V, g) = I0 · exp(-g / g0) · sinh(V / V0)                                     (1)
    T       = T_amb + |V · I| · R_th                                               (2)
    γ(g)    = γ0 - β · (g / 1 nm)^3,   x = γ · a0 · V / (t_ox · kB·T/q)            (3)

and one of two rate laws, each belonging to its own parameter set (``rate_law``):

* ``"generation_recombination"`` — the Guan/Yu/Wong law of the ASU/Stanford Verilog-A model
  and the University of Siena ``stanfordmemristor`` class: oxygen-vacancy generation (SET,
  activation energy ``Ea_g``) minus recombination (RESET, ``Ea_r``)::

      dg/dt = -v0 · [exp(-Ea_g/(kB T/q)) · exp(x) - exp(-Ea_r/(kB T/q)) · exp(-x)]      (4a)

  with its parameter set I0 = 61.4 µA, g0 = 0.275 nm, V0 = 0.43 V, v0 = 150 m/s,
  Ea_g = 1.501 eV, Ea_r = 1.5 eV, γ0 = 16.5, β = 1.25, a0 = 0.25 nm, t_ox = 5 nm, gap
  0.1–1.7 nm, C_th = 0.318 fJ/K, τ_th = 0.23 ns, T0 = 298 K. It has no field threshold:
  the gap moves at every voltage, exponentially slowly at read voltages (a 0.2 V read moves it
  by ~1e-20 m/s).
* ``"single_sinh"`` — the Stanford v1.0 / MemTorch ``Stanford_PKU`` law with one activation
  energy and a minimum-field gate::

      dg/dt = -v0 · exp(-Ea/(kB T/q)) · sinh(x),   γ := 0 where γ·|V|/t_ox < F_min   (4b)

  with its parameter set (MemTorch defaults: I0 = 1 mA, g0 = 0.25 nm, V0 = 0.25 V,
  v0 = 10 m/s, Ea = 0.6 eV, γ0 = 16, β = 0.8, t_ox = 12 nm, F_min = 1.4 GV/m, ...).

The field gate ``γ := 0 where γ|V|/t_ox < F_min`` is applied in both laws when ``f_min > 0``
(the generation–recombination set has ``f_min = 0``). Positive V (SET) shrinks the gap (higher
conductance), negative V (RESET) grows it. ``Ea`` is in eV, so ``Ea/(kB T/q)`` is
dimensionless. The thermal time constant (sub-ns) is far below the pulse widths simulated
here, so the quasi-static temperature (2) is used (the reference Verilog-A integrates
``C_th dT/dt = |VI| - C_th (T - T0)/τ_th``, whose steady state is (2) with ``R_th = τ_th/C_th``).

Everything here is a pure function of tensors (no state, no randomness) so it can be reused by
the device class, by transient waveform simulation and by the SPICE exporter.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor

K_B = 1.380649e-23  # J/K
Q_E = 1.602176634e-19  # C


class GapParams(NamedTuple):
    """Physical parameters of the gap model (SI units; ``ea`` in eV)."""

    i0: float  # A, current prefactor
    g0: float  # m, gap decay length of the tunnelling current
    v0: float  # V, voltage scale of the sinh I-V
    vel0: float  # m/s, gap velocity prefactor
    ea: float  # eV, activation energy of vacancy generation (the single energy of law (4b))
    a0: float  # m, hopping distance
    t_ox: float  # m, oxide thickness
    gamma0: float  # local field enhancement factor at g = 0
    beta_gamma: float  # field-enhancement reduction per (g/1 nm)^3
    f_min: float  # V/m, minimum field for gap motion
    r_th: float  # K/W, effective thermal resistance
    t_amb: float  # K, ambient temperature
    gap_min: float  # m
    gap_max: float  # m
    ea_r: float = 1.5  # eV, activation energy of recombination (generation_recombination law only)
    rate_law: str = "single_sinh"  # "generation_recombination" (4a) or "single_sinh" (4b)


def gap_current(p: GapParams, gap: Tensor, voltage: Tensor, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Equation (1): device current (A) at ``voltage`` (V) for gap ``gap`` (m)."""
    return p.i0 * i0_scale * torch.exp(-gap / p.g0) * torch.sinh(voltage / p.v0)


def gap_conductance(p: GapParams, gap: Tensor, v_read: float, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Read conductance ``I(v_read)/v_read`` (S)."""
    return gap_current(p, gap, torch.as_tensor(v_read, dtype=gap.dtype, device=gap.device), i0_scale) / v_read


def gap_for_conductance(p: GapParams, g: Tensor, v_read: float, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Inverse of :func:`gap_conductance`: the gap (m) that reads conductance ``g`` (S)."""
    prefactor = p.i0 * i0_scale * torch.sinh(torch.as_tensor(v_read / p.v0, dtype=g.dtype, device=g.device)) / v_read
    return p.g0 * torch.log(prefactor / g)


def temperature(p: GapParams, gap: Tensor, voltage: Tensor, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Equation (4): filament temperature (K) with quasi-static Joule heating."""
    return p.t_amb + (voltage * gap_current(p, gap, voltage, i0_scale)).abs() * p.r_th


def compliance_voltage(p: GapParams, gap: Tensor, voltage: Tensor, i_compliance: Tensor | float | None,
                       i0_scale: Tensor | float = 1.0) -> Tensor:
    """Voltage (V) left across the device when a SET current compliance ``i_compliance`` (A)
    limits the current (the saturated access transistor of a 1T1R cell acts as a current
    source): ``V_dev = min(V, V0·asinh(I_cc / (I0·exp(-g/g0))))`` for V > 0; RESET (V < 0) is
    not limited. ``None`` means no compliance."""
    if i_compliance is None:
        return voltage
    prefactor = p.i0 * i0_scale * torch.exp(-gap / p.g0)
    v_cc = p.v0 * torch.asinh(i_compliance / prefactor)
    return torch.where(voltage > 0, torch.minimum(voltage, v_cc), voltage)


def gap_velocity(p: GapParams, gap: Tensor, voltage: Tensor, i0_scale: Tensor | float = 1.0,
                 rate_scale: Tensor | float = 1.0, i_compliance: Tensor | float | None = None) -> Tensor:
    """Equation (4a) or (4b) (``p.rate_law``): dg/dt (m/s). ``rate_scale`` multiplies v0
    (device-to-device spread); ``i_compliance`` (A) limits the SET current (see
    :func:`compliance_voltage`)."""
    voltage = compliance_voltage(p, gap, voltage, i_compliance, i0_scale)
    temp = temperature(p, gap, voltage, i0_scale)
    v_thermal = K_B * temp / Q_E  # V
    gamma = p.gamma0 - p.beta_gamma * (gap / 1e-9) ** 3
    if p.f_min > 0:
        gamma = torch.where(gamma * voltage.abs() / p.t_ox < p.f_min, torch.zeros_like(gamma), gamma)
    x = gamma * p.a0 * voltage / (p.t_ox * v_thermal)
    # exponents are capped at 700 (e^700 ~ 1e304 m/s: the gap crosses its range in one step anyway),
    # so extreme parameter combinations give a finite, saturated rate instead of inf - inf = NaN
    if p.rate_law == "generation_recombination":
        return -p.vel0 * rate_scale * (torch.exp((x - p.ea / v_thermal).clamp(max=700.0))
                                       - torch.exp((-x - p.ea_r / v_thermal).clamp(max=700.0)))
    return -p.vel0 * rate_scale * torch.exp(-p.ea / v_thermal) * torch.sinh(x.clamp(-700.0, 700.0))


def switching_threshold(p: GapParams, gap: Tensor) -> Tensor:
    """|V| (V) below which the F_min gate stops the gap, ``F_min·t_ox/γ(g)``; zero when
    ``f_min = 0`` (the generation–recombination set: no hard threshold, the rate is
    exponential in V at every voltage)."""
    gamma = p.gamma0 - p.beta_gamma * (gap / 1e-9) ** 3
    return p.f_min * p.t_ox / gamma


def integrate_gap(p: GapParams, gap: Tensor, v_start: Tensor | float, duration: float,
                  v_end: Tensor | float | None = None, *, max_gap_step: float = 1e-11,
                  i0_scale: Tensor | float = 1.0, rate_scale: Tensor | float = 1.0,
                  step_scale: Tensor | float = 1.0, i_compliance: Tensor | float | None = None,
                  max_iter: int | None = None) -> Tensor:
    """Integrate (2) over ``duration`` (s) while the voltage ramps linearly from ``v_start`` to
    ``v_end`` (default: constant ``v_start``).

    SET is a positive-feedback process (a smaller gap carries more current, heats the
    filament and moves faster), so the ODE is stiff exactly where it matters. Every device
    therefore advances with its own step ``h = min(t_left, max_gap_step/|dg/dt|)`` (explicit
    midpoint rule, second order, gap change per step ≤ ``max_gap_step`` m), vectorised over the
    array: devices that do not move finish in one step. ``step_scale`` multiplies every gap
    increment (cycle-to-cycle variation of one pulse). The gap is kept in
    ``[gap_min, gap_max]``. ``max_iter`` (default: 100000, or four crossings of the whole gap range at
    ``max_gap_step`` plus 1000) guards against a stalled integration.
    """
    dtype, device = gap.dtype, gap.device
    v_start = torch.as_tensor(v_start, dtype=dtype, device=device)
    v_end = v_start if v_end is None else torch.as_tensor(v_end, dtype=dtype, device=device)
    shape = torch.broadcast_shapes(gap.shape, v_start.shape, v_end.shape)
    gap = gap.expand(shape).clone()
    slope = (v_end - v_start).expand(shape) / duration
    v_start = v_start.expand(shape)
    t_done = torch.zeros(shape, dtype=dtype, device=device)
    if max_iter is None:
        max_iter = max(100_000, int(4 * (p.gap_max - p.gap_min) / max_gap_step) + 1000)

    def f(g, t):
        vel = gap_velocity(p, g, v_start + slope * t, i0_scale, rate_scale, i_compliance) * step_scale
        # at a bound the gap cannot move further outward (same gating as the SPICE model)
        blocked = ((g <= p.gap_min) & (vel < 0)) | ((g >= p.gap_max) & (vel > 0))
        return torch.where(blocked, torch.zeros_like(vel), vel)

    for _ in range(max_iter):
        t_left = duration - t_done
        active = t_left > duration * 1e-12
        if not bool(active.any()):
            return gap
        vel = f(gap, t_done)
        h = torch.minimum(t_left, max_gap_step / vel.abs().clamp_min(1e-300))
        vel_mid = f((gap + 0.5 * h * vel).clamp(p.gap_min, p.gap_max), t_done + 0.5 * h)
        # re-limit the step with the midpoint slope, so a device that accelerates inside the
        # step cannot jump past the step bound
        h = torch.minimum(h, max_gap_step / vel_mid.abs().clamp_min(1e-300))
        vel_mid = f((gap + 0.5 * h * vel).clamp(p.gap_min, p.gap_max), t_done + 0.5 * h)
        # a midpoint clamped onto a bound has zero velocity although the device is still moving:
        # it reaches the bound within this step, so step with the start slope (lands on the bound)
        vel_mid = torch.where((vel_mid == 0) & (vel != 0), vel, vel_mid)
        h = torch.where(active, h, torch.zeros_like(h))
        gap = (gap + h * vel_mid).clamp(p.gap_min, p.gap_max)
        t_done = t_done + h
    raise RuntimeError(f"integrate_gap did not finish in {max_iter} steps (max_gap_step={max_gap_step:g} m)")


def simulate_waveform(p: GapParams, gap0: Tensor, times: Tensor, voltages: Tensor, *,
                      max_gap_step: float = 1e-11, i0_scale: Tensor | float = 1.0,
                      rate_scale: Tensor | float = 1.0) -> tuple[Tensor, Tensor]:
    """Transient response to a piecewise-linear voltage waveform (as a SPICE PWL source).

    Args:
        gap0: initial gap (m), any shape.
        times: (n,) increasing time points (s).
        voltages: (n,) or (n, *gap0.shape) voltages (V) at those times, linear in between.
    Returns:
        ``(gap, current)``: (n, *gap0.shape) gap (m) and device current (A) at the time points.
    """
    times = torch.as_tensor(times, dtype=gap0.dtype, device=gap0.device)
    voltages = torch.as_tensor(voltages, dtype=gap0.dtype, device=gap0.device)
    if voltages.dim() == 1 and gap0.dim() > 0:
        voltages = voltages.reshape(-1, *([1] * gap0.dim())).expand(-1, *gap0.shape)
    gaps = [gap0]
    gap = gap0
    for k in range(1, times.numel()):
        gap = integrate_gap(p, gap, voltages[k - 1], float(times[k] - times[k - 1]), voltages[k],
                            max_gap_step=max_gap_step, i0_scale=i0_scale, rate_scale=rate_scale)
        gaps.append(gap)
    gap_t = torch.stack(gaps)
    return gap_t, gap_current(p, gap_t, voltages, i0_scale)
