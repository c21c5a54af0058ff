"""Input checks specific to device arrays: dtype, torch device, voltages, pulse counts.

The generic validators live in :mod:`devices.validation`; these add the device-array shapes
and the ``ValueError`` messages that name the parameter (never a torch ``RuntimeError`` or an
``OverflowError`` from deep inside).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["DTYPES", "check_dtype", "check_device", "checked_voltage", "pulse_counts"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def check_dtype(dtype) -> torch.dtype:
    """``torch.float32``/``torch.float64`` or their names ``"float32"``/``"float64"``."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    raise ValueError(f"dtype must be torch.float32 or torch.float64 (or 'float32'/'float64'), got {dtype!r}")


def check_device(device) -> torch.device:
    """A CPU or (available) CUDA torch device, given as a ``torch.device`` or a string."""
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None
    else:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} "
                         f"({type(device).__name__})")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {str(dev)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} is not available on this machine (torch.cuda.is_available() "
                             f"is False)")
        dev = torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
    return dev


def checked_voltage(voltage, *, shape: tuple, dtype: torch.dtype, device: torch.device, limit: float | None,
                    family: str, name: str = "voltage") -> Tensor:
    """``voltage`` (V) as a tensor of ``dtype``/``device`` broadcast to ``(*batch, *shape)``: finite,
    inside ``[-limit, limit]`` (the I-V law's validity range; None: no limit); keeps the autograd
    graph of a tensor input. Raises ``ValueError`` naming ``name``."""
    if isinstance(voltage, (str, bytes, bool, np.bool_)) or (torch.is_tensor(voltage) and voltage.dtype == torch.bool):
        raise ValueError(f"{name} must be a number or an array of numbers (V), got {voltage!r}")
    if torch.is_tensor(voltage):
        v = voltage.to(dtype=dtype, device=device)
    else:
        try:
            v = torch.as_tensor(voltage, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a number or an array of numbers (V), got {type(voltage).__name__}") \
                from None
    vd = v.detach()
    if not bool(torch.isfinite(vd).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf), in V")
    if limit is not None and vd.numel() and float(vd.abs().max()) > limit:
        raise ValueError(f"{name} must lie in [-{limit:g}, {limit:g}] V, the validity range of the {family} I-V law; "
                         f"got max |V| = {float(vd.abs().max()):g} V")
    n = len(shape)
    try:
        out = torch.broadcast_shapes(tuple(v.shape), tuple(shape))
    except RuntimeError:
        raise ValueError(f"{name} has shape {tuple(v.shape)}, which does not broadcast to the device array shape "
                         f"{tuple(shape)} (optionally with leading batch dimensions)") from None
    if tuple(out[len(out) - n:]) != tuple(shape):
        raise ValueError(f"{name} of shape {tuple(v.shape)} would change the array shape {tuple(shape)}")
    return v.expand(out)


def pulse_counts(pulses, shape: tuple, device: torch.device) -> torch.Tensor:
    """Signed integer pulse counts (int, numpy integer, integer tensor or integer array; not bool,
    not float) broadcast to ``shape`` as int64 on ``device``; |n| <= 2**62 (no overflow)."""
    if isinstance(pulses, (bool, np.bool_)) or (torch.is_tensor(pulses) and pulses.dtype == torch.bool):
        raise ValueError(f"pulses must be signed integer pulse counts, got a boolean {pulses!r}")
    if isinstance(pulses, (int, np.integer)):
        if abs(int(pulses)) > 2**62:
            raise ValueError(f"pulses must be in [-2**62, 2**62], got {int(pulses)}")
        n = torch.tensor(int(pulses), dtype=torch.long, device=device)
    elif torch.is_tensor(pulses):
        if pulses.is_floating_point() or pulses.is_complex():
            raise ValueError(f"pulses must be integers (signed pulse counts per device), got a {pulses.dtype} tensor")
        n = pulses.to(device=device, dtype=torch.long)
        if n.numel() and (int(n.min()) < -2**62 or int(n.max()) > 2**62):
            raise ValueError("pulses must be in [-2**62, 2**62]")
    else:
        try:
            arr = None if isinstance(pulses, (str, bytes)) else np.asarray(pulses)
        except (TypeError, ValueError, OverflowError):
            arr = None
        if arr is None or arr.dtype.kind not in "iu":
            raise ValueError(f"pulses must be signed integer pulse counts (int, int tensor or integer array), "
                             f"got {pulses!r}")
        if arr.size and (int(arr.max()) > 2**62 or int(arr.min()) < -2**62):
            raise ValueError("pulses must be in [-2**62, 2**62]")
        n = torch.as_tensor(arr.astype(np.int64), device=device)
    try:
        return torch.broadcast_to(n, shape)
    except RuntimeError:
        raise ValueError(f"pulses has shape {tuple(n.shape)}, expected {tuple(shape)} (or broadcastable)") from None
