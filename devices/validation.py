"""The input checks of every memxbar package (``devices``, ``xbar``, ``circuits``, ``training``).

One rule for every public parameter: a bad value raises ``ValueError`` whose message names the
parameter, the allowed kind and range, and the value received, so that a sweep feeding a bad
configuration value fails at once with a message the user can act on. Nothing is coerced
silently:

* an integer parameter takes a Python ``int`` (or a numpy integer), never a ``bool``, a float
  (``2.9`` or ``2.0``) or a string;
* a real parameter takes an ``int``/``float`` (or numpy scalar), never a ``bool`` or a string,
  and must be finite unless the parameter allows ``inf``;
* a flag takes ``True``/``False`` only (``"no"`` is not false);
* a choice takes one of the listed values exactly.

The checks return the normalised value (``int``, ``float``, ``bool``, tuple), so callers write
``self.n = check_int("n", n, low=1)``.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence

import numpy as np
import torch

__all__ = ["check_int", "check_real", "check_choice", "check_bool", "check_shape", "check_seed",
           "check_rate", "check_time", "check_scalar", "check_optional_real", "as_tensor", "SEED_MAX"]

#: largest seed accepted anywhere (seeds are hashed to 63-bit generator seeds, see
#: :mod:`devices.seeding`)
SEED_MAX = 2**63 - 1


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    lb = "-inf" if low is None else f"{low:g}"
    hb = "inf" if high is None else f"{high:g}"
    lbr = "(" if (low is None or low_open) else "["
    hbr = ")" if (high is None or high_open) else "]"
    return f"{lbr}{lb}, {hb}{hbr}"


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (not bool, not float, not str) in ``[low, high]``; returns a Python int."""
    rng = _range_text(low, high, False, False)
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer in {rng}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {rng}, got {value}")
    return value


def check_real(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
               high_open: bool = False, allow_inf: bool = False) -> float:
    """A real number (int or float, not bool, not str), finite unless ``allow_inf``, inside the
    interval ``low``..``high`` (closed ends unless ``low_open``/``high_open``); returns a float."""
    rng = _range_text(low, high, low_open, high_open)
    # "a real number in (-inf, inf)" says nothing: unbounded values are just "a real number"
    what = "a real number" if low is None and high is None else f"a real number in {rng}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite ({what}{' or inf' if allow_inf else ''}), got {value}")
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        raise ValueError(f"{name} must be in {rng}, got {value:g}")
    return value


def check_optional_real(name: str, value, **bounds) -> float | None:
    """``None`` or :func:`check_real`."""
    return None if value is None else check_real(name, value, **bounds)


def check_scalar(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real number inside the interval (the devices' historical name of :func:`check_real`)."""
    return check_real(name, value, low=low, high=high, low_open=low_open, high_open=high_open)


def check_choice(name: str, value, allowed: Iterable):
    """``value`` exactly one of ``allowed`` (compared with ``==``, types must match: ``1`` is not ``"1"``)."""
    allowed = list(allowed)
    for option in allowed:
        if type(value) is type(option) and value == option:
            return value
    raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` only (strings such as ``"no"`` and numbers are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false (a boolean), got {value!r} ({type(value).__name__})")
    return bool(value)


def check_shape(shape, name: str = "shape") -> tuple[int, ...]:
    """An int or a non-empty sequence (tuple/list/torch.Size) of ints >= 1; strings, floats and
    bools are refused (``"64"`` is not ``(6, 4)``, ``2.7`` is not ``2``)."""
    if _is_int(shape):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list, torch.Size)):
        raise ValueError(f"{name} must be an integer or a sequence of integers >= 1, got {shape!r}")
    if len(shape) == 0 or not all(_is_int(s) for s in shape):
        raise ValueError(f"{name} must be a non-empty sequence of integers >= 1, got {shape!r}")
    out = tuple(int(s) for s in shape)
    if any(s < 1 for s in out):
        raise ValueError(f"{name} must have every dimension >= 1, got {out}")
    return out


def check_seed(name: str, value) -> int:
    """A seed: an integer in ``[0, 2**63 - 1]`` (``1.9`` is not ``1``)."""
    return check_int(name, value, low=0, high=SEED_MAX)


def check_rate(name: str, value) -> float:
    """A probability in [0, 1]."""
    return check_real(name, value, low=0.0, high=1.0)


def check_time(name: str, t) -> float:
    """A time in seconds, finite and >= 0."""
    return check_real(name, t, low=0.0)


def as_tensor(name: str, value, *, dtype: torch.dtype, device, shape: Sequence[int] | None = None,
              broadcast: bool = True) -> torch.Tensor:
    """Convert ``value`` (numbers, arrays, tensors; not strings or bools) to a finite tensor;
    optionally check/broadcast it to ``shape``."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be numeric, got the string {value!r}")
    if torch.is_tensor(value) and value.dtype == torch.bool or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be numeric, got a boolean")
    try:
        t = torch.as_tensor(value, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be a number or an array of numbers, got {type(value).__name__}: {exc}") \
            from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    if shape is not None:
        shape = tuple(shape)
        if tuple(t.shape) != shape:
            if not broadcast:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
            try:
                t = torch.broadcast_to(t, shape)
            except RuntimeError:
                raise ValueError(
                    f"{name} has shape {tuple(t.shape)}, which does not broadcast to the device array shape {shape}"
                ) from None
    return t
