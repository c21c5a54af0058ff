r"""Input encoders: static values ``x`` → time-major spike trains or currents ``(T, *x.shape)``.

* :func:`rate_encode` — Poisson-like (Bernoulli) rate code. At every step and for every input,
  independently, ``s[t] ~ Bernoulli(p)`` with ``p = clip(x, 0, 1)``: the expected spike count
  over ``T`` steps is ``T·p`` with binomial variance ``T·p(1 − p)``. Values outside [0, 1] are
  *clipped* (x < 0 never spikes, x > 1 spikes at every step); NaN raises.
* :func:`latency_encode` — time-to-first-spike code: each input spikes at most once, larger
  inputs earlier, inputs ``x <= threshold`` never. ``x`` is clipped to [0, 1] first.

  - ``method="log"`` (RC charging): the input ``x`` drives an RC membrane with time constant
    ``tau`` (s) from rest, ``v(t) = x (1 − e^(−t/tau))``, which reaches ``threshold`` at
    ``t* = tau · ln(x / (x − threshold))`` s; the spike is emitted at step ``floor(t*/dt)``
    (``dt`` in s) and dropped if that is ``>= T`` (no spike inside the window).
  - ``method="linear"``: the interval ``(threshold, 1]`` is mapped linearly onto the window,
    step ``floor(T (1 − x)/(1 − threshold))`` ∈ [0, T − 1] (x = 1 → step 0).

  Latency codes are not differentiable with respect to ``x`` (the output carries no gradient).
* :func:`direct_encode` — current injection: the analog value is repeated at every step
  (``out[t] = x``), differentiable; the first layer's neurons do the encoding.

All encoders return floating tensors (``x``'s dtype if floating, else float32) on ``x``'s device.
Randomness comes only from the explicit ``generator`` (a :class:`torch.Generator` or an int seed).
"""
from __future__ import annotations

import math

import torch

__all__ = ["rate_encode", "latency_encode", "direct_encode", "LATENCY_METHODS"]

#: allowed ``method`` values of :func:`latency_encode`
LATENCY_METHODS = ("log", "linear")


def _check_steps(T) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T (number of time steps) must be an int in [1, inf), got {T!r}")
    return T


def _as_float(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"x must be a tensor or array of real numbers, got {type(x).__name__}") from exc
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    if bool(torch.isnan(x).any()):
        raise ValueError("x must not contain NaN")
    return x


def _positive(name: str, value, *, low: float = 0.0, high: float | None = None, low_open: bool = True,
              high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    ok_lo = value > low if low_open else value >= low
    ok_hi = True if high is None else (value < high if high_open else value <= high)
    if not (ok_lo and ok_hi):
        lb = "(" if low_open else "["
        hb = "inf)" if high is None else (f"{high:g})" if high_open else f"{high:g}]")
        raise ValueError(f"{name} must be in {lb}{low:g}, {hb}, got {value:g}")
    return value


def _generator(generator) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int) or not 0 <= generator < 2**63:
        raise ValueError(f"generator must be a torch.Generator or an int seed in [0, 2**63), got {generator!r}")
    return torch.Generator().manual_seed(generator)


def rate_encode(x, T: int, generator) -> torch.Tensor:
    """Bernoulli rate code: ``out[t] ~ Bernoulli(clip(x, 0, 1))`` i.i.d. over steps and inputs.

    ``x``: intensities (any shape; clipped to [0, 1]; NaN raises). ``T``: number of steps >= 1.
    ``generator``: a :class:`torch.Generator` (its device is used for the draw) or an int seed.
    Returns ``(T, *x.shape)`` spikes in {0, 1}, same seed ⇒ identical output.
    """
    T = _check_steps(T)
    x = _as_float(x)
    gen = _generator(generator)
    p = torch.clamp(x.detach(), 0.0, 1.0)
    u = torch.rand((T, *x.shape), generator=gen, device=gen.device, dtype=x.dtype).to(x.device)
    return (u < p).to(x.dtype)


def latency_encode(x, T: int, *, method: str = "log", tau: float = 5e-3, dt: float = 1e-3,
                   threshold: float = 0.01) -> torch.Tensor:
    """Time-to-first-spike code: at most one spike per input, larger ``x`` earlier.

    ``method``: ``"log"`` (RC charging time ``tau·ln(x/(x − threshold))``, ``tau`` and ``dt`` in s)
    or ``"linear"`` (``(threshold, 1]`` mapped onto steps ``T−1 … 0``; ``tau``/``dt`` unused).
    ``threshold``: inputs ``x <= threshold`` never spike; in (0, 1) for ``"log"``, [0, 1) for
    ``"linear"``. ``x`` is clipped to [0, 1]; NaN raises. Returns ``(T, *x.shape)``.
    """
    T = _check_steps(T)
    x = _as_float(x)
    if method not in LATENCY_METHODS:
        raise ValueError(f"method must be one of {list(LATENCY_METHODS)}, got {method!r}")
    xc = torch.clamp(x.detach(), 0.0, 1.0).to(torch.float64)
    if method == "log":
        threshold = _positive("threshold", threshold, low=0.0, high=1.0)
        tau = _positive("tau", tau)
        dt = _positive("dt", dt)
        fires = xc > threshold
        safe = torch.where(fires, xc, torch.ones_like(xc))
        t_cross = tau * torch.log(safe / (safe - threshold))
        step = torch.floor(t_cross / dt)
    else:
        threshold = _positive("threshold", threshold, low=0.0, high=1.0, low_open=False)
        fires = xc > threshold
        step = torch.floor(T * (1.0 - xc) / (1.0 - threshold))
    fires = fires & (step < T)
    step = torch.where(fires, step, torch.full_like(step, -1.0)).to(torch.int64)
    times = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return (times == step.unsqueeze(0)).to(x.dtype)


def direct_encode(x, T: int) -> torch.Tensor:
    """Current injection: ``out[t] = x`` for every step (a contiguous copy, differentiable).

    ``x``: analog values (any shape; NaN raises). Returns ``(T, *x.shape)``.
    """
    T = _check_steps(T)
    x = _as_float(x)
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()
