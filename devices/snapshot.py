"""A device array frozen at a read time ``t``: its drifted conductance *and* its nonlinear I-V.

``xbar.Crossbar(dev)`` uses a device's present (as-programmed) state with its I-V, and
``xbar.Crossbar(dev.read(t))`` its state at ``t`` as plain conductances (ohmic). A
:class:`DeviceSnapshot` (``dev.at_time(t)``) combines both::

    conductance()  = G_t        one read at t: drift/retention + read noise, drawn once
    current(v)     = I_t(v) · G_t / (I_t(v_read) / v_read)

with ``I_t`` the family's noise-free I-V of the state at ``t`` (the sinh of RRAM, the partly
amorphous Poole-Frenkel law of PCM, the bias-dependent TMR of the MTJs in their state at ``t``,
the subthreshold law of a floating gate, ohmic volatile switches). Each device's I-V is thus
scaled so that ``current(v_read) = conductance() · v_read`` exactly; a device whose noise-free
state at ``t`` conducts nothing (``I_t(v_read) = 0``) is ohmic at ``G_t``. The snapshot copies
everything it needs, so reprogramming or pulsing the device afterwards does not change it, and
it is read-only (no ``program``/``apply_pulses``). It has the duck type ``xbar.Crossbar``
accepts as cells: ``shape``, ``conductance()``, ``current(v)`` (differentiable in ``v``).
"""
from __future__ import annotations

from typing import Callable

import torch

from .device_checks import checked_voltage

Tensor = torch.Tensor

__all__ = ["DeviceSnapshot"]


class DeviceSnapshot:
    """Read-only view of a device array at ``t`` s after programming (module docstring).

    Attributes: ``shape``, ``t`` (s), ``source_family``, ``g_min``/``g_max``/``v_read`` (of the
    device's parameters), ``dtype``, ``device``.
    """

    def __init__(self, dev, t: float, g_read: Tensor, iv: Callable[[Tensor], Tensor]):
        self._limit = dev.iv_voltage_limit
        self.shape = dev.shape
        self.t = float(t)
        self.source_family = dev.family
        self.g_min, self.g_max, self.v_read = dev.g_min, dev.g_max, float(dev.params.v_read)
        self.dtype, self.device = dev.dtype, dev.device
        self._g = g_read
        self._iv = iv
        v_read = torch.full(self.shape, self.v_read, dtype=self.dtype, device=self.device)
        g_ref = (iv(v_read) / self.v_read).detach()
        ok = g_ref > 0
        self._ok = ok
        self._scale = torch.where(ok, g_read / torch.where(ok, g_ref, torch.ones_like(g_ref)), torch.zeros_like(g_ref))

    def conductance(self) -> Tensor:
        """The conductance (S) read at ``t`` (the same tensor on every call)."""
        return self._g.clone()

    def current(self, voltage) -> Tensor:
        """Current (A) at ``voltage`` (V) of the state at ``t``, scaled to ``conductance()`` at
        ``v_read``; broadcasts (leading batch dims allowed), differentiable in ``voltage``."""
        v = checked_voltage(voltage, shape=self.shape, dtype=self.dtype, device=self.device, limit=self._limit,
                            family=self.source_family)
        scaled = self._iv(v) * self._scale
        return torch.where(self._ok, scaled, self._g * v)

    def __repr__(self) -> str:
        return f"DeviceSnapshot({self.source_family}, shape={self.shape}, t={self.t:g} s)"
