"""The common interface of every memxbar device family.

A :class:`Device` holds the state of an array of devices of any shape (typically
``(rows, cols)``) as torch tensors (float64 by default). All randomness comes from the
object's own ``torch.Generator`` seeded at construction, so the same seed and the same
sequence of calls give bit-identical tensors.

Life cycle and the random draws it makes::

    dev = RRAM(shape=(64, 64), seed=0)       # D2D parameters and stuck-at faults drawn here
    res = dev.program(target)                # C2C / programming error drawn per event
    g = dev.read(t=3600.0)                   # drift/retention at t seconds after programming,
                                             # fresh read noise on every call
    i = dev.current(v)                       # I-V of the present state (no noise)
    dev.apply_pulses(n)                      # pulse-level update, C2C noise per pulse

Conventions
-----------
* Units are SI: conductance in S, voltage in V, current in A, time in s.
* ``g_min``/``g_max`` are the programmable window (S) of the preset; targets outside it are
  an error unless ``clip=True`` is passed to :meth:`Device.program`.
* Stuck-at faults: a stuck-on device reads ``g_max`` and a stuck-off device ``g_min``
  whatever is programmed; their I-V is ohmic at that conductance. They ignore programming
  and pulses (write-verify reports them as not converged).
* Parameters live in a frozen dataclass (``Device.params``); every field is a plain float,
  int or bool, so ``to_config()`` is JSON/TOML serialisable and ``from_config`` rebuilds the
  same object (same seed ⇒ same numbers).
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from .validation import as_tensor, check_rate, check_scalar, check_shape, check_time

Tensor = torch.Tensor

STUCK_NONE = 0
STUCK_ON = 1
STUCK_OFF = -1


@dataclass(frozen=True)
class CommonParams:
    """Fields every family's parameter dataclass carries.

    Attributes:
        g_min: lower end of the programmable conductance window (S).
        g_max: upper end of the programmable conductance window (S).
        v_read: read voltage (V) at which conductance is defined, ``G = I(v_read)/v_read``.
        p_stuck_on: probability that a device is stuck at ``g_max`` (drawn at construction).
        p_stuck_off: probability that a device is stuck at ``g_min``.
    """

    g_min: float = 1e-6
    g_max: float = 1e-4
    v_read: float = 0.2
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0

    def validate(self) -> None:
        check_scalar("g_min", self.g_min, low=0.0)
        check_scalar("g_max", self.g_max, low=0.0, low_open=True)
        if not self.g_max > self.g_min:
            raise ValueError(f"g_max must be > g_min, got g_min={self.g_min:g} S, g_max={self.g_max:g} S")
        check_scalar("v_read", self.v_read, low=0.0, low_open=True)
        check_rate("p_stuck_on", self.p_stuck_on)
        check_rate("p_stuck_off", self.p_stuck_off)
        if self.p_stuck_on + self.p_stuck_off > 1.0:
            raise ValueError(
                f"p_stuck_on + p_stuck_off must be <= 1, got {self.p_stuck_on:g} + {self.p_stuck_off:g}"
            )


@dataclass(frozen=True)
class ProgramResult:
    """Outcome of :meth:`Device.program`.

    Attributes:
        conductance: programmed conductance (S) right after programming, without read noise.
        pulses: number of programming pulses each device received (int64).
        error: ``conductance - target`` (S).
        converged: True where ``|error| <= tolerance`` (always True without verify unless the
            device is stuck; stuck devices are never converged).
    """

    conductance: Tensor
    pulses: Tensor
    error: Tensor
    converged: Tensor


class Device(ABC):
    """Abstract base of the device families (see module docstring for the contract)."""

    family: ClassVar[str]
    params_type: ClassVar[type]
    presets: ClassVar[Mapping[str, Any]]
    default_preset: ClassVar[str]

    def __init__(self, shape=(1,), *, preset: str | None = None, params=None, seed: int = 0,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", **overrides):
        self.shape = check_shape(shape)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.device = torch.device(device)
        self.seed = int(seed)
        self.preset = (preset or self.default_preset) if params is None else None
        self.params = self.resolve_params(preset=preset, params=params, **overrides)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.stuck = self._draw_faults()
        self._init_variation()
        self._init_state()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def resolve_params(cls, preset: str | None = None, params=None, **overrides):
        """Parameters from a preset name or an explicit dataclass, with field overrides."""
        if params is not None and preset is not None:
            raise ValueError("give either preset or params, not both")
        if params is None:
            name = cls.default_preset if preset is None else preset
            if name not in cls.presets:
                raise ValueError(
                    f"unknown {cls.family} preset {name!r}; available presets: {sorted(cls.presets)}"
                )
            params = cls.presets[name]
        elif not isinstance(params, cls.params_type):
            raise TypeError(f"params must be a {cls.params_type.__name__}, got {type(params).__name__}")
        if overrides:
            fields = {f.name for f in dataclasses.fields(cls.params_type)}
            unknown = sorted(set(overrides) - fields)
            if unknown:
                raise ValueError(
                    f"unknown {cls.family} parameter(s) {unknown}; allowed: {sorted(fields)}"
                )
            params = dataclasses.replace(params, **overrides)
        params.validate()
        return params

    @classmethod
    def from_preset(cls, name: str, shape=(1,), *, seed: int = 0, **kwargs):
        """Construct from a named preset (see ``cls.presets``)."""
        return cls(shape, preset=name, seed=seed, **kwargs)

    def to_config(self) -> dict:
        """Plain, serialisable description; ``from_config`` rebuilds an identical object."""
        return {
            "family": self.family,
            "shape": list(self.shape),
            "seed": self.seed,
            "dtype": str(self.dtype).removeprefix("torch."),
            "params": dataclasses.asdict(self.params),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        config = dict(config)
        family = config.pop("family", cls.family)
        if family != cls.family:
            raise ValueError(f"config is for family {family!r}, not {cls.family!r}")
        params = cls.params_type(**config.pop("params"))
        dtype = getattr(torch, config.pop("dtype", "float64"))
        return cls(tuple(config.pop("shape")), params=params, seed=config.pop("seed", 0), dtype=dtype, **config)

    # ------------------------------------------------------------------ conveniences
    @property
    def g_min(self) -> float:
        """Lower end of the programmable window (S)."""
        return float(self.params.g_min)

    @property
    def g_max(self) -> float:
        """Upper end of the programmable window (S)."""
        return float(self.params.g_max)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def _randn(self, shape=None) -> Tensor:
        return torch.randn(self.shape if shape is None else shape, generator=self.generator,
                           dtype=self.dtype, device=self.device)

    def _rand(self, shape=None) -> Tensor:
        return torch.rand(self.shape if shape is None else shape, generator=self.generator,
                          dtype=self.dtype, device=self.device)

    def _tensor(self, name: str, value, shape=None) -> Tensor:
        return as_tensor(name, value, dtype=self.dtype, device=self.device,
                         shape=self.shape if shape is None else shape)

    def _draw_faults(self) -> Tensor:
        p_on, p_off = self.params.p_stuck_on, self.params.p_stuck_off
        u = self._rand()
        stuck = torch.zeros(self.shape, dtype=torch.int8, device=self.device)
        stuck[u < p_on] = STUCK_ON
        stuck[(u >= p_on) & (u < p_on + p_off)] = STUCK_OFF
        return stuck

    def _apply_faults(self, g: Tensor) -> Tensor:
        if not bool((self.stuck != STUCK_NONE).any()):
            return g
        g = torch.where(self.stuck == STUCK_ON, torch.as_tensor(self.g_max, dtype=g.dtype, device=g.device), g)
        return torch.where(self.stuck == STUCK_OFF, torch.as_tensor(self.g_min, dtype=g.dtype, device=g.device), g)

    def _apply_faults_current(self, voltage: Tensor, current: Tensor) -> Tensor:
        if not bool((self.stuck != STUCK_NONE).any()):
            return current
        stuck = self.stuck
        if voltage.dim() > len(self.shape):
            stuck = stuck.expand(voltage.shape)
        on = voltage * self.g_max
        off = voltage * self.g_min
        current = torch.where(stuck == STUCK_ON, on, current)
        return torch.where(stuck == STUCK_OFF, off, current)

    def check_target(self, target, clip: bool) -> Tensor:
        """Validate a target conductance tensor (S) against the programmable window."""
        t = torch.as_tensor(target, dtype=self.dtype, device=self.device)
        if torch.isnan(t).any():
            raise ValueError("target_conductance contains NaN")
        try:
            t = torch.broadcast_to(t, self.shape).clone()
        except RuntimeError as exc:
            raise ValueError(
                f"target_conductance has shape {tuple(t.shape)}, expected {self.shape} (or broadcastable)"
            ) from exc
        if (t < 0).any():
            raise ValueError("target_conductance must be >= 0 S (got negative values)")
        lo, hi = self.g_min, self.g_max
        if clip:
            return t.clamp(lo, hi)
        tol = max(1e-12, 8 * torch.finfo(t.dtype).eps) * hi
        if (t < lo - tol).any() or (t > hi + tol).any():
            raise ValueError(
                f"target_conductance must lie in [g_min, g_max] = [{lo:.4g}, {hi:.4g}] S "
                f"(got range [{float(t.min()):.4g}, {float(t.max()):.4g}] S); pass clip=True to clip"
            )
        return t.clamp(lo, hi)

    def _check_verify_args(self, tolerance, max_pulses) -> tuple[float, int]:
        if tolerance is None:
            tolerance = 0.01 * (self.g_max - self.g_min)
        tolerance = check_scalar("tolerance", tolerance, low=0.0, low_open=True)
        max_pulses = int(check_scalar("max_pulses", max_pulses, low=1))
        return tolerance, max_pulses

    def _result(self, g: Tensor, target: Tensor, pulses: Tensor, tolerance: float | None) -> ProgramResult:
        g = self._apply_faults(g)
        err = g - target
        if tolerance is None:
            conv = torch.ones(self.shape, dtype=torch.bool, device=self.device)
        else:
            conv = err.abs() <= tolerance
        conv = conv & (self.stuck == STUCK_NONE)
        return ProgramResult(conductance=g, pulses=pulses, error=err, converged=conv)

    def _pulse_counts(self, pulses) -> Tensor:
        n = torch.as_tensor(pulses, device=self.device)
        if n.is_floating_point():
            if not bool(torch.isfinite(n).all()) or not bool((n == n.round()).all()):
                raise ValueError("pulses must be whole numbers (signed pulse counts per device)")
            n = n.long()
        try:
            return torch.broadcast_to(n.long(), self.shape)
        except RuntimeError as exc:
            raise ValueError(f"pulses has shape {tuple(n.shape)}, expected {self.shape} (or broadcastable)") from exc

    @staticmethod
    def _check_time(t) -> float:
        return check_time("t", t)

    def __repr__(self) -> str:
        name = self.preset or "custom"
        return f"{type(self).__name__}(shape={self.shape}, preset={name!r}, seed={self.seed})"

    # ------------------------------------------------------------------ family interface
    @abstractmethod
    def _init_variation(self) -> None:
        """Draw device-to-device parameters (called once at construction)."""

    @abstractmethod
    def _init_state(self) -> None:
        """Set the as-fabricated state."""

    @abstractmethod
    def conductance(self) -> Tensor:
        """Noise-free conductance (S) of the present state at ``v_read``, faults applied."""

    @abstractmethod
    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) read ``t`` seconds after programming: drift/retention + read noise."""

    @abstractmethod
    def current(self, voltage) -> Tensor:
        """Device current (A) at ``voltage`` (V); voltage broadcasts against the array shape
        (a leading batch dimension is allowed)."""

    @abstractmethod
    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Drive every device toward ``target_conductance`` (S)."""

    @abstractmethod
    def apply_pulses(self, pulses, **pulse) -> Tensor:
        """Apply signed pulse counts (``>0`` potentiate/SET, ``<0`` depress/RESET); return G (S)."""
