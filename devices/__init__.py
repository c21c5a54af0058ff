"""memxbar device models.

Families (one class each, a common interface in :class:`devices.base.Device`):

* :class:`RRAM` — filamentary oxide RRAM (Stanford–PKU gap model + Wan 2022 statistics)
* :class:`PCM` — phase-change memory (IBM statistical model: Nandakumar 2019, Joshi 2020)
* :class:`STTMRAM` — spin-transfer-torque MTJs (Néel–Brown / Sun switching, retention)
* :class:`FloatingGate` — floating-gate transistor (subthreshold read, FN tunnelling, injection)
* :class:`VolatileMemristor` — volatile threshold switch (mean metastable switch) for neurons

``make(family, shape, seed=..., preset=..., **overrides)`` builds any of them from plain config
values, which is how sweeps and the training loop create devices. ``dev.at_time(t)`` gives the
array read at ``t`` with its nonlinear I-V (:class:`DeviceSnapshot`, usable as crossbar cells);
``dev.to(device)`` moves it to a GPU; ``dev.to_config()["provenance"]`` says which parameter
values are measured (with their source) and which are assumed.
"""
from .base import CommonParams, Device, ProgramResult
from .floating_gate import FloatingGate
from .provenance import provenance_table
from .snapshot import DeviceSnapshot
from .pcm import PCM
from .rram import RRAM
from .stt_mram import STTMRAM
from .volatile import SwitchParameters, VolatileMemristor, VolatileParams, volatile_conductance, volatile_step

FAMILIES = {cls.family: cls for cls in (RRAM, PCM, STTMRAM, FloatingGate, VolatileMemristor)}


def make(family: str, shape=(1,), *, seed: int = 0, preset: str | None = None, **overrides) -> Device:
    """Construct a device array of ``family`` (one of ``FAMILIES``) from plain values."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ValueError(f"unknown device family {family!r}; allowed: {sorted(FAMILIES)}")
    return FAMILIES[family](shape, preset=preset, seed=seed, **overrides)


def presets() -> dict[str, list[str]]:
    """Names of the presets of every family."""
    return {name: sorted(cls.presets) for name, cls in FAMILIES.items()}


__all__ = ["Device", "CommonParams", "ProgramResult", "DeviceSnapshot", "RRAM", "PCM", "STTMRAM", "FloatingGate",
           "VolatileMemristor", "VolatileParams", "SwitchParameters", "volatile_step", "volatile_conductance",
           "FAMILIES", "make", "presets", "provenance_table"]
