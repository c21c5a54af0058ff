r"""Charge-transfer and channel-current laws of a floating-gate (FG) MOSFET.

Pure functions used by :mod:`devices.floating_gate`; they take SI inputs (V, V/m, m, m², A,
K) and return torch tensors, are vectorised and differentiable.

Fowler-Nordheim tunnelling (Lenzlinger & Snow, J. Appl. Phys. 40, 278 (1969)) through a
triangular Si/SiO2 barrier of height ``phi_B`` at oxide field ``E``::

    J(E) = A E^2 exp(-B/E)                                          [A/m^2, E in V/m]
    A = q^3/(8 pi h phi_B) * (m0/m*)                                [A/V^2]
    B = 8 pi sqrt(2 m*) phi_B^(3/2) / (3 q h)                       [V/m]

with ``phi_B`` in joules inside the formulas (passed in eV). For Si/SiO2, ``phi_B = 3.2 eV``
and ``m* = 0.42 m0`` give ``A = 1.15e-6 A/V^2`` and ``B = 2.53e10 V/m`` (2.53e8 V/cm). The
barrier is taken as symmetric, so ``J(-E) = -J(E)`` (electrons flow the other way), and
``J(0) = 0``. A tunnelling junction of area ``a_tun`` and oxide thickness ``t_ox`` between a
tunnelling electrode at ``V_tun`` and the floating gate at ``V_fg`` carries
``I_tun = a_tun * J((V_tun - V_fg)/t_ox)``, positive when electrons leave the floating gate
(the stored charge ``Q_fg`` rises).

Channel current (EKV interpolation, Enz, Krummenacher & Vittoz 1995), source at 0 V::

    I_ch = I_0 [F(kappa (V_fg - V_T)/U_T) - F((kappa (V_fg - V_T) - V_ds)/U_T)],
    F(x) = ln^2(1 + exp(x/2)),         U_T = k_B T/q

Below threshold ``F(x) -> exp(x)`` and the expression becomes the subthreshold law
``I_0 exp(kappa (V_fg - V_T)/U_T) (1 - exp(-V_ds/U_T))`` used for reading; above threshold it
is quadratic in the overdrive. The injection bias puts the channel above threshold, where
the pure exponential would overestimate the current by orders of magnitude (Hasler-group
injection modelling was extended to above-threshold currents in "Above threshold pFET
injection modeling intended for programming floating-gate systems", ISCAS 2007).

Channel hot-electron injection, Hasler-style efficiency form (Diorio, Hasler, Minch & Mead,
IEEE TED 43, 1972 (1996); Hasler-group floating-gate programming papers)::

    I_inj = beta * I_ch * exp(-V_beta / (V_ds + V_delta)^2)

``beta`` (dimensionless), ``V_beta`` (V^2) and ``V_delta`` (V) are process fits; injection
adds electrons, so ``Q_fg`` falls at the rate ``I_inj``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .validation import check_real

Tensor = torch.Tensor

Q_E = 1.602176634e-19  # elementary charge (C)
K_B = 1.380649e-23  # Boltzmann constant (J/K)
H_PLANCK = 6.62607015e-34  # Planck constant (J s)
M_E = 9.1093837015e-31  # free-electron mass (kg)
EPS_0 = 8.8541878128e-12  # vacuum permittivity (F/m)
EPS_R_SIO2 = 3.9  # relative permittivity of SiO2
SECONDS_PER_YEAR = 365.25 * 86400.0


def thermal_voltage(temperature: float) -> float:
    """``U_T = k_B T / q`` (V) at ``temperature`` (K)."""
    temperature = check_real("temperature", temperature, low=0.0, low_open=True)
    return K_B * temperature / Q_E


def fowler_nordheim_coefficients(phi_b: float = 3.2, m_eff_ratio: float = 0.42) -> tuple[float, float]:
    """FN coefficients ``(A, B)``: A in A/V^2, B in V/m, for barrier ``phi_b`` (eV) and ``m*/m0``."""
    phi_b = check_real("phi_b", phi_b, low=0.0, low_open=True)
    m_eff_ratio = check_real("m_eff_ratio", m_eff_ratio, low=0.0, low_open=True)
    phi_j = phi_b * Q_E
    a = Q_E**3 / (8.0 * math.pi * H_PLANCK * phi_j) / m_eff_ratio
    b = 8.0 * math.pi * math.sqrt(2.0 * m_eff_ratio * M_E) * phi_j**1.5 / (3.0 * Q_E * H_PLANCK)
    return a, b


def _as_float_tensor(name: str, value) -> Tensor:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number or a tensor of numbers, got {value!r}")
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64, device="cpu")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    return t


def fowler_nordheim_current_density(field, phi_b: float = 3.2, m_eff_ratio: float = 0.42) -> Tensor:
    """FN current density ``J = sign(E) A E^2 exp(-B/|E|)`` (A/m^2) at oxide field ``field`` (V/m).

    ``phi_b`` is the barrier height in eV (Si/SiO2: 3.2), ``m_eff_ratio`` the oxide effective
    mass over the free-electron mass (0.42); Lenzlinger & Snow (1969). Tensors keep their dtype.
    """
    a, b = fowler_nordheim_coefficients(phi_b, m_eff_ratio)
    return fn_density(_as_float_tensor("field", field), a, b)


def fn_density(e: Tensor, a: float, b: float) -> Tensor:
    """Unchecked kernel of :func:`fowler_nordheim_current_density` for precomputed ``(A, B)``."""
    mag = e.abs()
    safe = torch.where(mag > 0, mag, torch.ones_like(mag))
    j = a * safe * safe * torch.exp(-b / safe)
    return torch.where(mag > 0, j, torch.zeros_like(j)) * torch.sign(e)


def tunnelling_current(v_tun, v_fg, *, t_ox: float, area: float, phi_b: float = 3.2,
                       m_eff_ratio: float = 0.42) -> Tensor:
    """FN current (A) through a tunnel oxide of thickness ``t_ox`` (m) and ``area`` (m^2).

    The field is ``E = (v_tun - v_fg)/t_ox``; the result is positive when electrons tunnel
    off the floating gate (``Q_fg`` rises).
    """
    t_ox = check_real("t_ox", t_ox, low=0.0, low_open=True)
    area = check_real("area", area, low=0.0, low_open=True)
    v_tun = _as_float_tensor("v_tun", v_tun)
    v_fg = _as_float_tensor("v_fg", v_fg)
    return area * fowler_nordheim_current_density((v_tun - v_fg) / t_ox, phi_b, m_eff_ratio)


def channel_current(v_ov, v_ds, *, kappa: float, i_0: float, u_t: float) -> Tensor:
    """EKV channel current (A) for gate overdrive ``v_ov = V_fg - V_T`` (V) and ``v_ds >= 0`` (V).

    Reduces to ``i_0 exp(kappa v_ov/u_t) (1 - exp(-v_ds/u_t))`` below threshold.
    """
    return ekv_current(_as_float_tensor("v_ov", v_ov), _as_float_tensor("v_ds", v_ds), kappa, i_0, u_t)


def ekv_current(v_ov: Tensor, v_ds: Tensor, kappa: float, i_0: float, u_t: float) -> Tensor:
    """Unchecked kernel of :func:`channel_current`."""
    x_f = kappa * v_ov / u_t
    x_r = x_f - v_ds / u_t
    return i_0 * (F.softplus(0.5 * x_f) ** 2 - F.softplus(0.5 * x_r) ** 2)


def injection_efficiency(v_ds, *, beta: float, v_beta: float, v_delta: float) -> Tensor:
    """Hot-electron injection efficiency ``I_inj/I_ch = beta exp(-v_beta/(v_ds + v_delta)^2)``."""
    v_ds = _as_float_tensor("v_ds", v_ds)
    return beta * torch.exp(-v_beta / (v_ds + v_delta) ** 2)


def injection_current(i_ch, v_ds, *, beta: float, v_beta: float, v_delta: float) -> Tensor:
    """Hot-electron injection current (A), electrons onto the floating gate (``Q_fg`` falls)."""
    i_ch = _as_float_tensor("i_ch", i_ch)
    return i_ch * injection_efficiency(v_ds, beta=beta, v_beta=v_beta, v_delta=v_delta)


def oxide_capacitance(area: float, t_ox: float) -> float:
    """Parallel-plate SiO2 capacitance ``eps_0 eps_r area/t_ox`` (F)."""
    return EPS_0 * EPS_R_SIO2 * area / t_ox
