"""Volatile mean-metastable-switch memristor: the pure functional core (equations, exact update
and the check of per-device switch parameters). The model, its sources and the presets are
documented in :mod:`devices.volatile`."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["SwitchParameters", "volatile_conductance", "volatile_rates", "volatile_steady_state", "volatile_step",
           "validate_switch_parameters"]

Tensor = torch.Tensor


class SwitchParameters(NamedTuple):
    """Dynamical parameters of a volatile MSS switch (floats or broadcastable tensors).

    Defaults are the ``"mif_kang2021"`` preset.

    Attributes:
        r_on: ON resistance R_on (Ω).
        r_off: OFF resistance R_off (Ω).
        v_on: switch-ON threshold voltage v_on (V).
        v_off: relaxation (hold) voltage v_off (V), below which the device relaxes OFF.
        tau: relaxation (OFF) time constant τ (s).
        tau_on: switching-ON time constant τ_on (s).
        k_th: softness of both thresholds (V).
        bipolar: use |V| (symmetric threshold switch) instead of the signed V.
        c2c_sigma: lognormal cycle-to-cycle spread of both rates, per step (needs a generator).
        feedback: regenerative-switching strength ρ ∈ [0, 1] (0: pure MSS, exact update).
    """

    r_on: float | Tensor = 1e3
    r_off: float | Tensor = 1e5
    v_on: float | Tensor = 0.110
    v_off: float | Tensor = 0.005
    tau: float | Tensor = 1e-4
    tau_on: float | Tensor = 1e-4
    k_th: float | Tensor = 0.015
    bipolar: bool = False
    c2c_sigma: float = 0.0
    feedback: float = 0.0


def _log(t):
    return torch.log(t) if isinstance(t, Tensor) else math.log(t)


def volatile_conductance(x: Tensor, p: SwitchParameters) -> Tensor:
    """``G = x / R_on + (1 − x) / R_off`` (S)."""
    return x / p.r_on + (1.0 - x) / p.r_off


def _neg_log_rates(v: Tensor, p: SwitchParameters, x: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(−log a, −log b)``. ``−log σ(z) = softplus(−z)``, exact to rounding with threshold 50
    (log1p(e^−50) ≈ 2e−22); unlike ``F.logsigmoid`` it has no slow path for large |z|."""
    vv = v.abs() if p.bipolar else v
    th_on, th_off = p.v_on, p.v_off
    if p.feedback:
        window = p.v_on - p.v_off
        th_on = p.v_on if x is None else p.v_on - (p.feedback * window) * x
        th_off = th_on - (1.0 - p.feedback) * window
    na = F.softplus((th_on - vv) / p.k_th, threshold=50.0) + _log(p.tau_on)
    nb = F.softplus((vv - th_off) / p.k_th, threshold=50.0) + _log(p.tau)
    return na, nb


def volatile_rates(v: Tensor, p: SwitchParameters, x: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The ON and OFF rates ``a = σ((V' − v_on)/k_th)/τ_on`` and ``b = σ((v_off − V')/k_th)/τ`` (1/s)
    (with ``feedback`` > 0 the thresholds move with the state ``x``; x = None: x = 0)."""
    na, nb = _neg_log_rates(v, p, x)
    return torch.exp(-na), torch.exp(-nb)


def volatile_steady_state(v: Tensor, p: SwitchParameters, x: Tensor | None = None) -> Tensor:
    """``x∞(V) = a / (a + b)``, the state a device settles to under a constant voltage V (with
    ``feedback`` > 0: for the thresholds frozen at state ``x``; x = None: x = 0)."""
    na, nb = _neg_log_rates(v, p, x)
    return torch.sigmoid(nb - na)


def volatile_step(x: Tensor, v: Tensor, dt, p: SwitchParameters,
                  generator: torch.Generator | None = None) -> Tensor:
    r"""Exact state update over ``dt`` (s) under a voltage ``v`` (V) held constant.

    ``x ← x∞ + (x − x∞)·exp(−(a + b)·Δt)`` with ``x∞ = a/(a + b)`` (see the module docstring).
    Unconditionally stable and differentiable in ``x``, ``v`` and every parameter. With
    ``p.c2c_sigma > 0`` both rates get independent lognormal factors ``exp(σ ξ)`` drawn from
    ``generator`` (required then; the function never touches the global RNG). With
    ``p.feedback`` > 0 the thresholds are frozen at the starting ``x`` (stable, not exact).
    """
    na, nb = _neg_log_rates(v, p, x)
    if p.c2c_sigma > 0:
        if generator is None:
            raise ValueError("generator must be a torch.Generator when c2c_sigma > 0 (randomness is explicit)")
        shape = torch.broadcast_shapes(na.shape, nb.shape, x.shape)
        na = na + p.c2c_sigma * torch.randn(shape, generator=generator, dtype=na.dtype, device=na.device)
        nb = nb + p.c2c_sigma * torch.randn(shape, generator=generator, dtype=nb.dtype, device=nb.device)
    x_inf = torch.sigmoid(nb - na)
    # x + (x∞ − x)(1 − e^{−(a+b)Δt}) with expm1: exact at Δt = 0, accurate for tiny steps; the
    # clamp only removes rounding (the result is a convex combination of x and x∞).
    frac = -torch.expm1(-dt * (torch.exp(-na) + torch.exp(-nb)))
    return (x + (x_inf - x) * frac).clamp(0.0, 1.0)


def validate_switch_parameters(p: SwitchParameters, name: str = "switch") -> None:
    """Raise ``ValueError`` naming ``name.field`` if a (possibly per-device tensor) parameter of a
    :class:`SwitchParameters` is non-finite or out of range (r_on < r_off, v_off < v_on, τ, k_th > 0)."""
    def arr(field):
        value = getattr(p, field)
        if isinstance(value, (bool, str, bytes)):
            raise ValueError(f"{name}.{field} must be a real number or a tensor of them, got {value!r}")
        return torch.as_tensor(value, dtype=torch.float64, device=value.device if torch.is_tensor(value) else "cpu")

    for field in ("r_on", "r_off", "v_on", "v_off", "tau", "tau_on", "k_th", "c2c_sigma"):
        if not bool(torch.isfinite(arr(field)).all()):
            raise ValueError(f"{name}.{field} must be finite (no NaN/inf)")
    for field in ("r_on", "r_off", "tau", "tau_on", "k_th"):
        if not bool((arr(field) > 0).all()):
            raise ValueError(f"{name}.{field} must be in (0, inf), got min {float(arr(field).min()):g}")
    if not bool((arr("r_on") < arr("r_off")).all()):
        raise ValueError(f"{name}.r_on must be < {name}.r_off for every device")
    if not bool((arr("v_off") < arr("v_on")).all()):
        raise ValueError(f"{name}.v_off must be < {name}.v_on for every device")
    if not float(p.c2c_sigma) >= 0:
        raise ValueError(f"{name}.c2c_sigma must be in [0, inf), got {float(p.c2c_sigma):g}")
    if not 0.0 <= float(p.feedback) <= 1.0:
        raise ValueError(f"{name}.feedback must be in [0, 1], got {float(p.feedback):g}")
