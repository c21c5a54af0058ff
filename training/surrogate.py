r"""Surrogate spike functions: an exact Heaviside step forward, a smooth derivative backward.

A spiking neuron emits :math:`z = H(v - v_{th})`, whose derivative is zero almost everywhere.
Surrogate-gradient learning (Neftci, Mostafa & Zenke, IEEE Signal Process. Mag. 36, 51 (2019))
keeps the exact step in the forward pass and replaces :math:`H'(x)` by the derivative
:math:`\sigma'(x)` of a smooth sigmoid-like function in the backward pass. With
:math:`x = v - v_{th}` (dimensionless, in units of the membrane voltage) and slope :math:`k > 0`:

Forward (all surrogates)::

    H(x) = 1 if x >= 0 else 0            (H(0) = 1: a membrane exactly at threshold spikes)

Backward, normalised so that every surrogate has peak derivative 1 at the threshold and ``slope``
only sets the width (so learning rates are comparable when a sweep changes the surrogate name):

* ``fast_sigmoid``: derivative ``1/(k|x| + 1)^2``; smooth function ``x/(1 + k|x|)``.
* ``arctan``: derivative ``1/(1 + (pi/2 k x)^2)``; smooth function ``2/(pi k) atan(pi/2 k x)``.
* ``sigmoid``: derivative ``4 s(kx) (1 - s(kx))`` with ``s`` the logistic function; smooth
  function ``(4/k) s(kx)``.
* ``triangle``: derivative ``max(0, 1 - k|x|)``; smooth function ``x - (k/2) x|x|`` for
  ``|x| < 1/k`` and ``sign(x)/(2k)`` beyond (C¹).

Sources:

* ``fast_sigmoid``: SuperSpike, Zenke & Ganguli, Neural Comput. 30, 1514 (2018) — the
  derivative of the fast sigmoid :math:`x/(1+k|x|)`; also snnTorch's ``fast_sigmoid`` (default
  slope 25).
* ``arctan``: Fang et al., ICCV 2021 ("Incorporating learnable membrane time constant…"),
  SpikingJelly ``ATan``: :math:`g(x) = \arctan(\tfrac{\pi}{2}\alpha x)/\pi + \tfrac12`, whose
  derivative :math:`\tfrac{\alpha}{2}/(1 + (\tfrac{\pi}{2}\alpha x)^2)` equals ours times
  :math:`\alpha/2`; the two coincide at their default :math:`\alpha = 2`. Our smooth function is
  :math:`(2/\alpha)\,g(x)` up to an additive constant.
* ``sigmoid``: the logistic surrogate (e.g. Zenke & Vogels, Neural Comput. 33, 899 (2021)),
  scaled by :math:`4/k` to peak 1.
* ``triangle``: the piecewise-linear pseudo-derivative of Esser et al., PNAS 113, 11441 (2016)
  and Bellec et al., NeurIPS 2018 (there with a damping factor 0.3), with support
  :math:`|x| < 1/k`.

The smooth functions are exposed (``SMOOTH[name](x, slope)``) so tests can check that the
custom backward equals the autograd derivative of the smooth function (and ``gradcheck`` it).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch

__all__ = [
    "SURROGATES",
    "SMOOTH",
    "DERIVATIVES",
    "FastSigmoidSpike",
    "ArctanSpike",
    "SigmoidSpike",
    "TriangleSpike",
    "get_surrogate",
    "heaviside",
    "check_surrogate",
    "fast_sigmoid",
    "arctan",
    "sigmoid",
    "triangle",
    "fast_sigmoid_derivative",
    "arctan_derivative",
    "sigmoid_derivative",
    "triangle_derivative",
]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact step ``1[x >= 0]`` in the dtype of ``x`` (no gradient)."""
    return (x >= 0).to(x.dtype)


# ----------------------------------------------------------------------------- smooth functions
def fast_sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``x / (1 + slope*|x|)``: antiderivative of the fast-sigmoid surrogate."""
    return x / (slope * x.abs() + 1.0)


def arctan(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``2/(pi*slope) * atan(pi/2*slope*x)``: antiderivative of the arctan surrogate."""
    return torch.atan((math.pi / 2.0) * slope * x) * (2.0 / (math.pi * slope))


def sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``4/slope * logistic(slope*x)``: antiderivative of the sigmoid surrogate."""
    return torch.sigmoid(slope * x) * (4.0 / slope)


def triangle(x: torch.Tensor, slope: float) -> torch.Tensor:
    """C¹ antiderivative of ``max(0, 1 - slope*|x|)``: ``x - slope*x|x|/2`` inside, flat outside."""
    edge = 1.0 / slope
    inner = x - 0.5 * slope * x * x.abs()
    outer = torch.sign(x) * (0.5 * edge)
    return torch.where(x.abs() < edge, inner, outer)


# ----------------------------------------------------------------------------- derivatives
def fast_sigmoid_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``1 / (slope*|x| + 1)**2`` (SuperSpike)."""
    return (slope * x.abs() + 1.0).pow(-2)


def arctan_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``1 / (1 + (pi/2*slope*x)**2)`` (Fang et al. 2021, peak-normalised)."""
    return 1.0 / (1.0 + ((math.pi / 2.0) * slope * x).pow(2))


def sigmoid_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``4 * s(slope*x) * (1 - s(slope*x))`` with ``s`` the logistic function."""
    s = torch.sigmoid(slope * x)
    return 4.0 * s * (1.0 - s)


def triangle_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``max(0, 1 - slope*|x|)``."""
    return torch.clamp(1.0 - slope * x.abs(), min=0.0)


# ----------------------------------------------------------------------------- autograd functions
class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the subclass's ``derivative(x, slope)``."""

    derivative: Callable[[torch.Tensor, float], torch.Tensor]

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return heaviside(x)

    @classmethod
    def backward(cls, ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * cls.derivative(x, ctx.slope), None


class FastSigmoidSpike(_SpikeFunction):
    """Heaviside forward, SuperSpike fast-sigmoid derivative backward."""

    derivative = staticmethod(fast_sigmoid_derivative)


class ArctanSpike(_SpikeFunction):
    """Heaviside forward, arctan derivative backward."""

    derivative = staticmethod(arctan_derivative)


class SigmoidSpike(_SpikeFunction):
    """Heaviside forward, (peak-normalised) logistic derivative backward."""

    derivative = staticmethod(sigmoid_derivative)


class TriangleSpike(_SpikeFunction):
    """Heaviside forward, triangular (piecewise-linear) derivative backward."""

    derivative = staticmethod(triangle_derivative)


#: name -> autograd Function class
SURROGATES: dict[str, type[torch.autograd.Function]] = {
    "fast_sigmoid": FastSigmoidSpike,
    "arctan": ArctanSpike,
    "sigmoid": SigmoidSpike,
    "triangle": TriangleSpike,
}

#: name -> smooth function sigma(x, slope) whose derivative is the surrogate gradient
SMOOTH: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "sigmoid": sigmoid,
    "triangle": triangle,
}

#: name -> analytic surrogate derivative sigma'(x, slope)
DERIVATIVES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "fast_sigmoid": fast_sigmoid_derivative,
    "arctan": arctan_derivative,
    "sigmoid": sigmoid_derivative,
    "triangle": triangle_derivative,
}


def check_surrogate(name: str, slope: float) -> tuple[str, float]:
    """Validate a surrogate ``name`` and ``slope``; return them (slope as float)."""
    if not isinstance(name, str) or name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {name!r}")
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
        raise ValueError(f"slope must be a finite real number in (0, inf), got {slope!r}")
    slope = float(slope)
    if not (math.isfinite(slope) and slope > 0.0):
        raise ValueError(f"slope must be in (0, inf) and finite, got {slope!r}")
    return name, slope


def _apply(fn: type[torch.autograd.Function], slope: float, x: torch.Tensor) -> torch.Tensor:
    return fn.apply(x, slope)


def get_surrogate(name: str, slope: float = 25.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``spike(x)``: Heaviside forward and the ``name`` surrogate derivative backward.

    ``name`` is one of ``"fast_sigmoid"``, ``"arctan"``, ``"sigmoid"``, ``"triangle"``;
    ``slope`` (> 0, dimensionless, per unit of ``x``) sets the width of the derivative
    (half-maximum at ``|x| ≈ 0.41/slope`` for the fast sigmoid). The returned object is a
    picklable :func:`functools.partial`.
    """
    name, slope = check_surrogate(name, slope)
    return functools.partial(_apply, SURROGATES[name], slope)
