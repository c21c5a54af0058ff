"""Input checks shared by the device models.

Every check raises ``ValueError`` (or ``TypeError`` for wrong kinds) whose message names the
parameter and the allowed range, so that a sweep that feeds a bad configuration value fails
at once with a message the user can act on.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def check_shape(shape) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of positive ints, or raise naming ``shape``."""
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as exc:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from exc
    if len(shape) == 0 or any(s <= 0 for s in shape):
        raise ValueError(f"shape must be non-empty with every dimension >= 1, got {shape}")
    return shape


def check_scalar(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite float inside [low, high] (or open ends); raise naming ``name`` otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {value!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    lo_ok = True if low is None else (value > low if low_open else value >= low)
    hi_ok = True if high is None else (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "-inf" if low is None else f"{low:g}"
        hb = "inf" if high is None else f"{high:g}"
        lbr = "(" if (low is None or low_open) else "["
        hbr = ")" if (high is None or high_open) else "]"
        raise ValueError(f"{name} must be in {lbr}{lb}, {hb}{hbr}, got {value:g}")
    return value


def check_rate(name: str, value) -> float:
    """A probability in [0, 1]."""
    return check_scalar(name, value, low=0.0, high=1.0)


def as_tensor(name: str, value, *, dtype: torch.dtype, device, shape: Sequence[int] | None = None,
              broadcast: bool = True) -> torch.Tensor:
    """Convert ``value`` to a finite tensor; optionally check/broadcast it to ``shape``."""
    t = torch.as_tensor(value, dtype=dtype, device=device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    if shape is not None:
        shape = tuple(shape)
        if tuple(t.shape) != shape:
            if not broadcast:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
            try:
                t = torch.broadcast_to(t, shape)
            except RuntimeError as exc:
                raise ValueError(
                    f"{name} has shape {tuple(t.shape)}, which does not broadcast to the device array shape {shape}"
                ) from exc
    return t


def check_time(name: str, t) -> float:
    """A time in seconds, finite and >= 0."""
    return check_scalar(name, t, low=0.0)
