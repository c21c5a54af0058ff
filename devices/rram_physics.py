"""Stanford–PKU filamentary RRAM compact model: the pure functional core.

The model (Guan, Yu & Wong, IEEE TED 59, 1172 (2012); Jiang et al., IEEE TED 63, 1884 (2016),
"A compact model for metal-oxide resistive random access memory with experiment
verification") describes a conductive filament whose tip is separated from the electrode by a
tunnelling gap ``g`` (m). Current and gap dynamics::

    I(V, g)   = I0 · exp(-g / g0) · sinh(V / V0)                                   (1)
    dg/dt     = -v0 · exp(-Ea / (kB·T/q)) · sinh(γ(g) · a0 · V / (t_ox · kB·T/q))  (2)
    γ(g)      = γ0 - β · (g / 1 nm)^3,   γ := 0  where γ·|V| / t_ox < F_min       (3)
    T         = T_amb + |V · I| · R_th                                             (4)

Positive V (SET) shrinks the gap (higher conductance), negative V (RESET) grows it. ``Ea`` is in
eV, so ``Ea/(kB T/q)`` is dimensionless. Equation (3) gives the model its switching threshold:
below ``|V| = F_min·t_ox/γ`` the gap does not move, so reads do not disturb the state. The
thermal time constant (sub-ns) is far below the pulse widths simulated here, so the quasi-static
temperature (4) is used, as in the reference Verilog-A at pulse widths ≫ τ_th.

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
    ea: float  # eV, activation energy of oxygen-vacancy migration
    a0: float  # m, hopping distance
    t_ox: float  # m, oxide thickness
    gamma0: float  # local field enhancement factor at g = 0
    beta_gamma: float  # field-enhancement reduction per (g/1 nm)^3
    f_min: float  # V/m, minimum field for gap motion
    r_th: float  # K/W, effective thermal resistance
    t_amb: float  # K, ambient temperature
    gap_min: float  # m
    gap_max: float  # m


def gap_current(p: GapParams, gap: Tensor, voltage: Tensor, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Equation (1): device current (A) at ``voltage`` (V) for gap ``gap`` (m)."""
    return p.i0 * i0_scale * torch.exp(-gap / p.g0) * torch.sinh(voltage / p.v0)


def gap_conductance(p: GapParams, gap: Tensor, v_read: float, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Read conductance ``I(v_read)/v_read`` (S)."""
    return gap_current(p, gap, torch.as_tensor(v_read, dtype=gap.dtype, device=gap.device), i0_scale) / v_read


def gap_for_conductance(p: GapParams, g: Tensor, v_read: float, i0_scale: Tensor | float = 1.0) -> Tensor:
    """Inverse of :func:`gap_conductance`: the gap (m) that reads conductance ``g`` (S)."""
    prefactor = p.i0 * i0_scale * torch.sinh(torch.as_tensor(v_read / p.v0, dtype=g.dtype)) / v_read
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
    """Equation (2): dg/dt (m/s). ``rate_scale`` multiplies v0 (device-to-device spread);
    ``i_compliance`` (A) limits the SET current (see :func:`compliance_voltage`)."""
    voltage = compliance_voltage(p, gap, voltage, i_compliance, i0_scale)
    temp = temperature(p, gap, voltage, i0_scale)
    v_thermal = K_B * temp / Q_E  # V
    gamma = p.gamma0 - p.beta_gamma * (gap / 1e-9) ** 3
    gamma = torch.where(gamma * voltage.abs() / p.t_ox < p.f_min, torch.zeros_like(gamma), gamma)
    return -p.vel0 * rate_scale * torch.exp(-p.ea / v_thermal) * torch.sinh(gamma * p.a0 * voltage / (p.t_ox * v_thermal))


def switching_threshold(p: GapParams, gap: Tensor) -> Tensor:
    """|V| (V) below which the gap cannot move (equation (3)): ``F_min·t_ox/γ(g)``."""
    gamma = p.gamma0 - p.beta_gamma * (gap / 1e-9) ** 3
    return p.f_min * p.t_ox / gamma


def integrate_gap(p: GapParams, gap: Tensor, v_start: Tensor | float, duration: float,
                  v_end: Tensor | float | None = None, *, max_gap_step: float = 1e-11,
                  i0_scale: Tensor | float = 1.0, rate_scale: Tensor | float = 1.0,
                  step_scale: Tensor | float = 1.0, i_compliance: Tensor | float | None = None,
                  max_iter: int = 100000) -> Tensor:
    """Integrate (2) over ``duration`` (s) while the voltage ramps linearly from ``v_start`` to
    ``v_end`` (default: constant ``v_start``).

    SET is a positive-feedback process (a smaller gap carries more current, heats the
    filament and moves faster), so the ODE is stiff exactly where it matters. Every device
    therefore advances with its own step ``h = min(t_left, max_gap_step/|dg/dt|)`` (explicit
    midpoint rule, second order, gap change per step ≤ ``max_gap_step`` m), vectorised over the
    array: devices that do not move finish in one step. ``step_scale`` multiplies every gap
    increment (cycle-to-cycle variation of one pulse). The gap is kept in
    ``[gap_min, gap_max]``.
    """
    dtype, device = gap.dtype, gap.device
    v_start = torch.as_tensor(v_start, dtype=dtype, device=device)
    v_end = v_start if v_end is None else torch.as_tensor(v_end, dtype=dtype, device=device)
    shape = torch.broadcast_shapes(gap.shape, v_start.shape, v_end.shape)
    gap = gap.expand(shape).clone()
    slope = (v_end - v_start).expand(shape) / duration
    v_start = v_start.expand(shape)
    t_done = torch.zeros(shape, dtype=dtype, device=device)

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
    times = torch.as_tensor(times, dtype=gap0.dtype)
    voltages = torch.as_tensor(voltages, dtype=gap0.dtype)
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
