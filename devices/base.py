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
    snap = dev.at_time(86400.0)              # the array read at t, with its nonlinear I-V
    dev.apply_pulses(n)                      # pulse-level update, C2C noise per pulse
    dev.to("cuda")                           # state, parameters and generator on the GPU

Conventions
-----------
* Units are SI: conductance in S, voltage in V, current in A, time in s.
* ``g_min``/``g_max`` are the programmable window (S) of the preset; targets outside it are
  an error unless ``clip=True`` is passed to :meth:`Device.program`.
* Stuck-at faults: a stuck-on device reads ``g_max`` and a stuck-off device ``g_min``
  whatever is programmed; their I-V is ohmic at that conductance. They ignore programming
  and pulses (write-verify reports them as not converged).
* Parameters live in a frozen dataclass (``Device.params``); every field is a plain float,
  int, bool, str or tuple of floats, checked by type (``validate``: an integer field takes an
  ``int``, a real field a finite real, never a bool or a string), so ``to_config()`` is
  JSON/TOML serialisable and ``from_config`` rebuilds the same object (same seed ⇒ same
  numbers). ``to_config()`` also carries the provenance of every parameter
  (:mod:`devices.provenance`); it does not record the torch device (a config moved to another
  machine must still load), see :meth:`Device.to`.
* Work is bounded: :meth:`apply_pulses` refuses more than ``max_steps`` (default
  :data:`DEFAULT_MAX_STEPS`) elementary update steps per call, with the estimated cost in the
  message; pass a larger ``max_steps`` to run it anyway. ``program(max_pulses=...)`` is at most
  :data:`MAX_PROGRAM_PULSES`.

Devices on an accelerator (:meth:`Device.to`)
---------------------------------------------
``dev.to(device)`` moves every state and per-device parameter tensor; the random stream moves
too, but a ``torch.Generator`` cannot be carried between device types (CPU and CUDA use
different algorithms), so the generator is re-created on the new device with the seed
``derive_seed(seed, "device", <type>, "move", k)`` (:func:`devices.seeding.derive_seed`), ``k`` =
the number of moves so far (1 for the first). Same seed and the same sequence of calls
(including the ``to`` calls) therefore give the same numbers on the same device type; a move to
the device the array is already on changes nothing. Construction draws (faults, D2D
variation) come from the generator of the construction device: ``RRAM(..., device="cuda")``
and ``RRAM(...).to("cuda")`` are equally distributed but not the same chip.
"""
from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from .device_checks import check_device, check_dtype, checked_voltage, pulse_counts
from .provenance import provenance_of
from .seeding import make_generator
from .validation import (as_tensor, check_bool, check_choice, check_int, check_optional_real, check_rate,
                         check_real, check_seed, check_shape, check_time)

Tensor = torch.Tensor

STUCK_NONE = 0
STUCK_ON = 1
STUCK_OFF = -1

#: default cap on the elementary update steps (pulse slots; RK4 steps for floating gates) of
#: one ``apply_pulses`` call
DEFAULT_MAX_STEPS = 10_000
#: largest ``max_pulses`` of a write-verify loop
MAX_PROGRAM_PULSES = 100_000
#: what a read beyond the time range of a family's retention data does
RETENTION_CHOICES = ("refuse", "hold", "extend")
CONFIG_KEYS = ("family", "shape", "seed", "dtype", "params", "preset", "provenance", "device")


@dataclass(frozen=True)
class CommonParams:
    """Fields every family's parameter dataclass carries.

    Attributes:
        g_min: lower end of the programmable conductance window (S).
        g_max: upper end of the programmable conductance window (S).
        v_read: read voltage (V) at which conductance is defined, ``G = I(v_read)/v_read``.
        p_stuck_on: probability that a device is stuck at ``g_max`` (drawn at construction).
        p_stuck_off: probability that a device is stuck at ``g_min``.
        retention_beyond_data: what ``read(t)`` does for ``t`` beyond the time range of the
            family's measured retention data (:meth:`Device.retention_data_limit`):
            ``"refuse"`` (a ``ValueError``, as aihwkit does), ``"hold"`` (the spread stays at its
            value at the end of the data) or ``"extend"`` (the family's documented monotone
            extension). Only RRAM has such a limit (Wan et al. 2022 measured up to 2 days); the
            time laws of the other families are physical laws or fits their authors define for
            all t, so the choice never applies to them.
    """

    g_min: float = 1e-6
    g_max: float = 1e-4
    v_read: float = 0.2
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0
    retention_beyond_data: str = "refuse"

    #: allowed values of the ``str`` fields
    choices: ClassVar[dict] = {"retention_beyond_data": RETENTION_CHOICES}
    #: physical range ``(low, high)`` (closed; ``low_open`` with a third item True) of real fields;
    #: every real field of every family is bounded, so no finite but absurd value reaches the
    #: model (e.g. a 1e300 V voltage that overflows an exponential)
    bounds: ClassVar[dict] = {"v_read": (0.0, 100.0, True)}

    def validate(self) -> None:
        """Type of every field first (messages name the user-facing field), then the family's
        ranges, then the window; raises ``ValueError``."""
        self._check_types()
        self._validate_family()
        self._validate_common()

    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            if kind == "float":
                check_real(f.name, value)
                if f.name in self.bounds:
                    lo, hi, *open_low = self.bounds[f.name]
                    check_real(f.name, value, low=lo, high=hi, low_open=bool(open_low and open_low[0]))
            elif kind == "int":
                check_int(f.name, value)
            elif kind == "bool":
                check_bool(f.name, value)
            elif kind == "str":
                check_choice(f.name, value, self.choices[f.name])
            elif kind == "tuple":
                if not isinstance(value, tuple) or len(value) == 0:
                    raise ValueError(f"{f.name} must be a non-empty sequence of real numbers, got {value!r}")
                for k, c in enumerate(value):
                    check_real(f"{f.name}[{k}]", c)
            else:  # pragma: no cover - a programming error in a params class
                raise TypeError(f"field {f.name} has unsupported type {kind!r}")

    def _validate_family(self) -> None:
        """Ranges of the family's own fields (overridden by every family)."""

    def _validate_common(self) -> None:
        check_real("g_min", self.g_min, low=0.0)
        check_real("g_max", self.g_max, low=0.0, low_open=True)
        if not self.g_max > self.g_min:
            raise ValueError(f"g_max must be > g_min, got g_min={self.g_min:g} S, g_max={self.g_max:g} S")
        check_real("v_read", self.v_read, low=0.0, low_open=True)
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
        converged: per device, True where ``|error| <= tolerance`` (without verify: always
            True unless the device is stuck; stuck devices are never converged).
        initial_error: ``conductance - target`` (S) of the state before the call (noise-free).
    """

    conductance: Tensor
    pulses: Tensor
    error: Tensor
    converged: Tensor
    initial_error: Tensor | None = None


class Device(ABC):
    """Abstract base of the device families (see module docstring for the contract)."""

    family: ClassVar[str]
    params_type: ClassVar[type]
    presets: ClassVar[Mapping[str, Any]]
    provenance: ClassVar[Mapping[str, Mapping]] = {}
    default_preset: ClassVar[str]
    #: |V| (V) up to which ``current`` evaluates the I-V law (None: every finite voltage)
    iv_voltage_limit: ClassVar[float | None] = None
    #: measured seconds per pulse slot of ``apply_pulses`` on a 64x64 array (2-core CPU), for
    #: the cost estimate of the step cap
    slot_seconds: ClassVar[float] = 1e-4

    def __init__(self, shape=(1,), *, preset: str | None = None, params=None, seed: int = 0,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", **overrides):
        self.shape = check_shape(shape)
        self.dtype = check_dtype(dtype)
        self.device = check_device(device)
        self.seed = check_seed("seed", seed)
        self.preset = (preset or self.default_preset) if params is None else None
        self.params = self.resolve_params(preset=preset, params=params, **overrides)
        self._moves = 0
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
            if not isinstance(name, str) or name not in cls.presets:
                raise ValueError(
                    f"unknown {cls.family} preset {name!r}; available presets: {sorted(cls.presets)}"
                )
            params = cls.presets[name]
        elif not isinstance(params, cls.params_type):
            raise ValueError(f"params must be a {cls.params_type.__name__}, got {type(params).__name__}")
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

    def parameter_provenance(self) -> dict[str, dict]:
        """``{field: {"status", "source"}}``: measured / derived / setting / assumed per the preset
        table (:mod:`devices.provenance`), ``"user"`` for values that differ from the preset."""
        name = self.preset or self.default_preset
        return provenance_of(self.params, self.presets[name], self.provenance.get(name))

    def to_config(self) -> dict:
        """Plain, serialisable description; ``from_config`` rebuilds an identical object. Carries
        the preset name and every parameter's provenance; the torch device is not recorded."""
        return {
            "family": self.family,
            "shape": list(self.shape),
            "seed": self.seed,
            "dtype": str(self.dtype).removeprefix("torch."),
            "preset": self.preset,
            "params": dataclasses.asdict(self.params),
            "provenance": self.parameter_provenance(),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, device: str | torch.device | None = None):
        """Rebuild from :meth:`to_config` output (``provenance`` is recomputed, not read);
        ``device`` (or a ``"device"`` key) picks where the arrays live (default CPU)."""
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a mapping (a to_config() dict), got {type(config).__name__}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; allowed: {list(CONFIG_KEYS)}")
        family = config.get("family", cls.family)
        if family != cls.family:
            raise ValueError(f"config is for family {family!r}, not {cls.family!r}")
        if "shape" not in config or "params" not in config:
            raise ValueError("config must hold 'shape' and 'params' (the output of to_config())")
        values = config["params"]
        if not isinstance(values, Mapping):
            raise ValueError(f"params must be a mapping of {cls.family} parameters, got {type(values).__name__}")
        fields = {f.name for f in dataclasses.fields(cls.params_type)}
        bad = sorted(set(values) - fields)
        if bad:
            raise ValueError(f"unknown {cls.family} parameter(s) {bad}; allowed: {sorted(fields)}")
        preset = config.get("preset")
        if preset is not None and (not isinstance(preset, str) or preset not in cls.presets):
            raise ValueError(f"preset must be one of {sorted(cls.presets)} or None, got {preset!r}")
        params = cls.params_type(**values)
        where = device if device is not None else config.get("device", "cpu")
        obj = cls(config["shape"], params=params, seed=config.get("seed", 0), dtype=config.get("dtype", "float64"),
                  device=where)
        obj.preset = preset
        return obj

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

    def to(self, device) -> "Device":
        """Move the array to ``device`` (``"cpu"``, ``"cuda"``, ``torch.device``); returns ``self``.

        Every tensor attribute (state, D2D parameters, faults) moves; the generator is re-created
        on the new device (module docstring: seeded from ``derive_seed(seed, "device", type,
        "move", k)``). A move to the present device is a no-op."""
        dev = check_device(device)
        if dev == self.device:
            return self
        for name, value in list(vars(self).items()):
            if torch.is_tensor(value):
                setattr(self, name, value.to(dev))
        self._moves += 1
        self.generator = make_generator(self.seed, "device", dev.type, "move", self._moves, device=dev)
        self.device = dev
        return self

    def _randn(self, shape=None) -> Tensor:
        return torch.randn(self.shape if shape is None else shape, generator=self.generator,
                           dtype=self.dtype, device=self.device)

    def _rand(self, shape=None) -> Tensor:
        return torch.rand(self.shape if shape is None else shape, generator=self.generator,
                          dtype=self.dtype, device=self.device)

    def _full(self, value: float, shape=None, dtype=None) -> Tensor:
        return torch.full(self.shape if shape is None else shape, value, dtype=self.dtype if dtype is None else dtype,
                          device=self.device)

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

    # ------------------------------------------------------------------ input checks
    def _voltage(self, voltage, name: str = "voltage") -> Tensor:
        """``voltage`` (V) checked by :func:`checked_voltage` for this array."""
        return checked_voltage(voltage, shape=self.shape, dtype=self.dtype, device=self.device,
                               limit=self.iv_voltage_limit, family=self.family, name=name)

    def check_target(self, target, clip: bool) -> Tensor:
        """Validate a target conductance tensor (S) against the programmable window."""
        clip = check_bool("clip", clip)
        if isinstance(target, (str, bytes, bool, np.bool_)) or (torch.is_tensor(target)
                                                               and target.dtype == torch.bool):
            raise ValueError(f"target_conductance must be a number or an array of numbers (S), got {target!r}")
        try:
            t = torch.as_tensor(target, dtype=self.dtype, device=self.device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"target_conductance must be a number or an array of numbers (S), "
                             f"got {type(target).__name__}") from None
        if torch.isnan(t).any():
            raise ValueError("target_conductance contains NaN")
        if torch.isinf(t).any():
            raise ValueError("target_conductance must be finite (got inf), in S")
        try:
            t = torch.broadcast_to(t, self.shape).clone()
        except RuntimeError:
            raise ValueError(
                f"target_conductance has shape {tuple(t.shape)}, expected {self.shape} (or broadcastable)"
            ) from None
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

    def _program_args(self, verify, tolerance, max_pulses) -> tuple[bool, float | None, int]:
        """Checked ``(verify, tolerance, max_pulses)``; ``tolerance`` (S) defaults to 1 % of the
        window with verify and stays None without (then it only sets ``converged``)."""
        verify = check_bool("verify", verify)
        tolerance = check_optional_real("tolerance", tolerance, low=0.0, low_open=True)
        if verify and tolerance is None:
            tolerance = 0.01 * (self.g_max - self.g_min)
        max_pulses = check_int("max_pulses", max_pulses, low=1, high=MAX_PROGRAM_PULSES)
        return verify, tolerance, max_pulses

    def _check_verify_args(self, tolerance, max_pulses) -> tuple[float, int]:
        return self._program_args(True, tolerance, max_pulses)[1:]

    def _result(self, g: Tensor, target: Tensor, pulses: Tensor, tolerance: float | None,
                g_before: Tensor | None = None) -> ProgramResult:
        g = self._apply_faults(g)
        err = g - target
        if tolerance is None:
            conv = torch.ones(self.shape, dtype=torch.bool, device=self.device)
        else:
            conv = err.abs() <= tolerance
        conv = conv & (self.stuck == STUCK_NONE)
        initial = None if g_before is None else g_before - target
        return ProgramResult(conductance=g, pulses=pulses, error=err, converged=conv, initial_error=initial)

    def _pulse_counts(self, pulses, max_steps=None, steps_per_slot: int = 1) -> Tensor:
        """Signed integer pulse counts broadcast to the array shape (int64), at most ``max_steps``
        elementary steps (``slots x steps_per_slot``; default :data:`DEFAULT_MAX_STEPS`); see
        :func:`devices.device_checks.pulse_counts`."""
        n = pulse_counts(pulses, self.shape, self.device)
        max_steps = DEFAULT_MAX_STEPS if max_steps is None else check_int("max_steps", max_steps, low=1)
        slots = max(int(n.max()), -int(n.min())) if n.numel() else 0
        steps = slots * steps_per_slot
        if steps > max_steps:
            est = slots * self.slot_seconds * max(1.0, self.numel / 4096) * steps_per_slot / self._base_steps()
            raise ValueError(f"pulses asks for {slots} pulse slots ({steps} update steps) on {self.numel} devices, "
                             f"estimated {est:.3g} s of compute; the cap is max_steps={max_steps}: pass "
                             f"max_steps={steps} (or more) to run it")
        return n

    def _base_steps(self) -> int:
        """Steps per pulse slot at the default pulse width (floating gates: RK4 substeps)."""
        return 1

    @staticmethod
    def _check_time(t) -> float:
        return check_time("t", t)

    def retention_data_limit(self) -> float:
        """Largest ``t`` (s) covered by the family's retention data (``inf``: no limit)."""
        return math.inf

    def _check_read_time(self, t) -> float:
        """``t`` (s) checked and, beyond :meth:`retention_data_limit`, handled by
        ``params.retention_beyond_data`` (``"refuse"`` raises)."""
        t = check_time("t", t)
        limit = self.retention_data_limit()
        if t > limit and self.params.retention_beyond_data == "refuse":
            raise ValueError(
                f"t = {t:g} s lies beyond the {self.family} retention data (up to {limit:g} s); choose "
                f"retention_beyond_data = 'hold' (spread frozen at its last measured value) or 'extend' "
                f"(monotone extension, see the {type(self).__name__} docstring) to read there")
        return t

    def __repr__(self) -> str:
        name = self.preset or "custom"
        return f"{type(self).__name__}(shape={self.shape}, preset={name!r}, seed={self.seed})"

    # ------------------------------------------------------------------ devices read at a time
    def at_time(self, t: float = 0.0):
        """The array as read ``t`` s after programming, with its nonlinear I-V (a
        :class:`devices.snapshot.DeviceSnapshot`, usable as ``xbar.Crossbar`` cells).

        ``conductance()`` is one :meth:`read` at ``t`` (drift/retention and read noise drawn once,
        now); ``current(v)`` is the family's I-V of the state at ``t`` scaled per device so that
        ``current(v_read) = conductance() · v_read``. Later changes of the device do not affect
        the snapshot."""
        from .snapshot import DeviceSnapshot

        t = self._check_read_time(t)
        iv = self._iv_at(t)
        g = self.read(t).detach().clone()
        return DeviceSnapshot(self, t, g, iv)

    def _iv_at(self, t: float):
        """A function ``v -> I`` (A) of the noise-free state at ``t`` (faults applied) that no
        later change of the device affects; default: ohmic at :meth:`conductance_at`."""
        g = self.conductance_at(t).clone()
        return lambda v: g * v

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
    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Noise-free conductance (S) ``t`` s after programming (drift/retention, no read noise)."""

    @abstractmethod
    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) read ``t`` s after programming: drift/retention + read noise."""

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
