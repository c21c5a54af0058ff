r"""Physics of a perpendicular STT-MTJ: TMR bias dependence, critical current, switching
probability of a write pulse and thermal retention. Units SI throughout; equations are the
textbook forms collected in the project notes (section 3c).

Resistance
----------
::

    TMR(V)  = TMR0 / (1 + V² / V_h²),    R_AP(V) = R_P (1 + TMR(V)),   R_P bias-independent

Switching (spin-transfer torque) per write pulse of current ``I`` and width ``t_p``
------------------------------------------------------------------------------------
Critical current of a PMA free layer (Sun PRB 62, 570 (2000); Khvalkovskiy et al.,
J. Phys. D 46, 074001 (2013))::

    I_c0 = 4 e α k_B T Δ / (ħ η),   η = P / (1 + P²)          (A)

for AP→P; P→AP needs ``ic0_ratio_p_to_ap`` times more. With ``i = I / I_c0``:

* thermal activation (Néel–Brown), ``i < 1``::

      τ_sw = τ0 exp[Δ (1 − i)],    P_th = 1 − exp(−t_p / τ_sw)

* precessional (Sun 2000, write-error-rate form), ``i > 1``, with ``m = M_s V_FL`` (A·m²)::

      τ_D  = e m (1 + P²) / (μ_B P I_c0)
      P_pr = exp{ −(π² Δ / 4) exp[ −2 (i − 1) t_p / τ_D ] }

  ``P_pr`` is a Gumbel law in ``t_p``: its median is ``τ_D ln(π²Δ/(4 ln 2)) / (2 (i − 1))`` and
  its mean ``τ_D (C + ln(π²Δ/4)) / (2 (i − 1))`` (C = 0.577), Sun's mean switching time.

* combined (monotone in ``I`` and ``t_p``, continuous at ``I_c0``)::

      P_sw = P_th(i)                                   for i < 1
      P_sw = max(P_th evaluated at i = 1, P_pr(i))     for i >= 1

Known limits: near ``I_c0`` the thermal branch saturates at the attempt rate ``1/τ0`` (the
Néel–Brown law is only valid well below ``I_c0``), so for ``1 < i ≲ 3`` and ``t_p ≲ few τ0`` the
"dynamic reversal" regime is crude; the precessional branch assumes a Boltzmann small-angle
initial distribution and no thermal noise during the pulse; Joule heating, field-like torque
and back-hopping are ignored. D2D variation of Δ (lognormal, ``d2d_delta_sigma``) is read as
variation of the anisotropy at fixed volume, so ``I_c0,i ∝ Δ_i`` and ``m`` is common.

Retention
---------
Without field both directions flip at the same rate ``1/τ_ret``, ``τ_ret = τ0 exp(Δ)`` (Néel–Brown
at I = 0, the ``i = 0`` limit of ``P_th``). The probability that an MTJ shows an odd number of flips
(i.e. reads flipped) ``t`` seconds after programming is that of a symmetric telegraph process::

    p_ret(t) = (1 − exp(−2 t / τ_ret)) / 2

Typical values [M]: Δ ≈ 40-80 (≈ 60 for 10-year retention), τ0 ≈ 1 ns.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .validation import as_tensor, check_real

if TYPE_CHECKING:
    from .stt_mram import STTMRAMParams

Tensor = torch.Tensor

E_CHARGE = 1.602176634e-19      # C
HBAR = 1.054571817e-34          # J s
K_B = 1.380649e-23              # J / K
MU_B = 9.2740100783e-24         # J / T (= A m²)

_DIRECTIONS = ("ap_to_p", "p_to_ap")


# ----------------------------------------------------------------------------- physics helpers
def tmr(voltage, tmr0: float, v_h: float):
    """Bias-dependent tunnel magnetoresistance ``TMR(V) = TMR0 / (1 + V²/V_h²)`` (dimensionless)."""
    return tmr0 / (1.0 + (voltage / v_h) ** 2)


def conductance_window(r_p: float, tmr0: float, v_h: float, v_read: float,
                       mtjs_per_cell: int) -> tuple[float, float]:
    """``(g_min, g_max)`` in S of an ``n``-MTJ cell at ``v_read``: ``n/R_AP(v_read)``, ``n/R_P``."""
    g_max = mtjs_per_cell / r_p
    g_min = mtjs_per_cell / (r_p * (1.0 + tmr(v_read, tmr0, v_h)))
    return g_min, g_max


def critical_current(alpha, delta, polarization, temperature):
    """Zero-temperature critical current ``I_c0 = 4 e α k_B T Δ / (ħ η)`` (A), ``η = P/(1+P²)``.

    Args:
        alpha: Gilbert damping, in (0, 1).
        delta: thermal stability factor ``Δ = E_b / (k_B T)`` at ``temperature``, > 0.
        polarization: spin polarisation ``P``, in (0, 1].
        temperature: K, > 0.
    Returns a float for scalar inputs, otherwise a tensor.
    """
    scalar = all(isinstance(x, (int, float)) for x in (alpha, delta, polarization, temperature))
    if scalar:
        check_real("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        check_real("delta", delta, low=0.0, low_open=True)
        check_real("polarization", polarization, low=0.0, high=1.0, low_open=True)
        check_real("temperature", temperature, low=0.0, low_open=True)
    eta = polarization / (1.0 + polarization ** 2)
    ic0 = 4.0 * E_CHARGE * alpha * K_B * temperature * delta / (HBAR * eta)
    return float(ic0) if scalar else ic0


def piecewise_switching_probability(i_ratio: Tensor, pulse_width: Tensor, delta: Tensor, tau0: float,
                                    tau_d: Tensor) -> Tensor:
    """Combined switching probability (see module docstring) from the normalised current
    ``i_ratio = I/I_c0``; ``pulse_width`` (s), ``delta``, ``tau_d`` (s) are broadcasting tensors."""
    barrier = delta * torch.clamp(1.0 - i_ratio, min=0.0)
    p_th = -torch.expm1(-torch.exp(torch.log(pulse_width) - math.log(tau0) - barrier))
    over = i_ratio - 1.0
    arg = torch.log(delta * (math.pi ** 2 / 4.0)) - 2.0 * torch.clamp(over, min=0.0) * pulse_width / tau_d
    p_pr = torch.exp(-torch.exp(arg))
    return torch.where(over > 0, torch.maximum(p_th, p_pr), p_th)


def critical_current_for(params: "STTMRAMParams", direction: str) -> float:
    """Nominal critical current (A) of ``params`` for ``direction`` ("ap_to_p" or "p_to_ap")."""
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    return params.ic0_ap_to_p if direction == "ap_to_p" else params.ic0_p_to_ap


def precession_time(params: "STTMRAMParams", ic0):
    """Precession time constant ``τ_D = e m (1+P²) / (μ_B P I_c0)`` (s), ``m = M_s V_FL``."""
    m = params.ms * params.free_layer_volume
    pol = params.polarization
    return E_CHARGE * m * (1.0 + pol ** 2) / (MU_B * pol * ic0)


def switching_probability(current, pulse_width, params: "STTMRAMParams", *, direction: str = "ap_to_p",
                          delta=None) -> Tensor:
    """Probability that one write pulse switches an MTJ (piecewise Néel–Brown / Sun model).

    Args:
        current: write-current magnitude (A), >= 0; tensor or float, broadcasts.
        pulse_width: pulse width (s), > 0; broadcasts.
        params: an :class:`STTMRAMParams` (Δ, τ0, α, P, M_s, V_FL, T, asymmetry).
        direction: ``"ap_to_p"`` (I_c0) or ``"p_to_ap"`` (``ic0_ratio_p_to_ap`` × I_c0).
        delta: optional per-MTJ thermal stability factors; ``I_c0`` scales as ``delta/params.delta``.
    Returns the probability tensor (float64 unless ``delta`` is a tensor of another dtype).
    """
    dtype = delta.dtype if isinstance(delta, Tensor) else torch.float64
    device = delta.device if isinstance(delta, Tensor) else (current.device if isinstance(current, Tensor) else "cpu")
    i = as_tensor("current", current, dtype=dtype, device=device)
    t_p = as_tensor("pulse_width", pulse_width, dtype=dtype, device=device)
    if bool((i < 0).any()):
        raise ValueError("current must be a finite magnitude >= 0 A (direction sets the polarity)")
    if bool((t_p <= 0).any()):
        raise ValueError("pulse_width must be finite and > 0 s")
    ic0 = critical_current_for(params, direction)
    d = torch.as_tensor(params.delta if delta is None else delta, dtype=dtype, device=device)
    ic0 = ic0 * d / params.delta
    return piecewise_switching_probability(i / ic0, t_p, d, params.tau0, precession_time(params, ic0))


def retention_failure_probability(t, params: "STTMRAMParams", *, delta=None) -> Tensor:
    """Probability ``(1 − exp(−2t/τ_ret))/2`` that an MTJ reads flipped ``t`` s after programming,
    ``τ_ret = τ0 exp(Δ)`` (``delta`` optionally per MTJ)."""
    t = check_real("t", t, low=0.0)
    d = torch.as_tensor(params.delta if delta is None else delta,
                        dtype=delta.dtype if isinstance(delta, Tensor) else torch.float64,
                        device=delta.device if isinstance(delta, Tensor) else "cpu")
    if t == 0.0:
        return torch.zeros_like(d)
    return -0.5 * torch.expm1(-2.0 * torch.exp(math.log(t) - math.log(params.tau0) - d))


