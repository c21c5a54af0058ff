r"""Hardware options of a crossbar-backed layer and the device noise model used while training.

:class:`HardwareConfig` holds every option as a plain, serialisable value (a TOML/JSON table
maps 1:1 onto it; ``HardwareConfig.from_dict(cfg.to_dict()) == cfg``), so robustness sweeps
can vary any of them from a config file.

Weights and conductances. A weight ``w`` (clipped to ``[-w_max, w_max]``) is stored on a
differential pair (:class:`xbar.DifferentialMapping`)::

    G+ = g_min + s max(w, 0),   G- = g_min + s max(-w, 0),   s = (g_max - g_min) / w_max   (S per unit weight)

and read back as ``w = (G+ - G-)/s``. The window ``[g_min, g_max]`` defaults to the device
preset's.

Training noise model (``mode="noisy"`` and ``"circuit"`` while training). Re-programming real
devices at every step would be slow and is not what hardware-aware training does; instead the
device's *programming statistics* are measured once with its real ``program()`` (and
``read(t_train)``) on a calibration array — ``calibration_devices`` devices at each of
``calibration_levels`` targets evenly spaced in ``[g_min, g_max]`` — giving the mean error
``mu(G)`` and standard deviation ``sigma(G)`` (S) of the realised conductance per target,
interpolated linearly in between (:class:`DeviceNoiseModel`). Each training forward pass then
draws, independently for every device of the pair,

    G~ = G + train_noise (mu(G) + sigma(G) xi),   xi ~ N(0, 1),

and replaces a fraction ``p_stuck_on`` / ``p_stuck_off`` (the preset's fault rates) of the
devices by ``g_max`` / ``g_min``; draws below 0 S are clipped to 0 S. Stuck devices of the calibration array are left out of
``mu``/``sigma`` since they are injected separately. ``train_noise = 0`` turns injection off.

Deployment (evaluation) uses real devices: every tile is programmed once with the family's
``program()`` (write-verify optional) and read at each inference time ``t`` with drift, read
noise and faults; ``drift_compensation`` rescales each tile's output by the global factor
``alpha = sum G_ref / sum G(t)`` of a calibration read of the tile's weight cells (the
padding of partly used tiles is left out; aihwkit's ``GlobalDriftCompensation``;
Joshi et al., Nat. Commun. 11, 2473 (2020)).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import torch

import devices
from xbar import ADC, DAC, TIA, Crossbar, CrossbarConfig, DifferentialMapping

Tensor = torch.Tensor

MODES = ("ideal", "noisy", "circuit")
BACKWARDS = ("ste", "exact")
_ANALOG_FAMILIES = ("rram", "pcm", "stt_mram", "floating_gate")


def _int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")
    return value


def _real(name: str, value, low: float | None = None, low_open: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class HardwareConfig:
    """Every hardware option of a :class:`training.CrossbarLinear` (plain values, SI units).

    Forward / backward:
        mode: ``"ideal"`` (float matmul of the clipped weights, with DAC/ADC quantisation if
            set), ``"noisy"`` (matmul with device-realistic conductances: the training noise
            model while training, the programmed devices once deployed) or ``"circuit"`` (the
            exact IR-drop/sneak-path solution of every tile on top of the noisy conductances).
        backward: ``"ste"`` (gradient of the ideal matmul) or ``"exact"`` (through the circuit
            solver's adjoint; ``circuit`` mode only).
        circuit_refresh: in ``circuit`` mode while training, the tiles' exact transfer matrices
            are recomputed every ``circuit_refresh`` steps; in between, the last circuit
            correction ``A(G) - (G+ - G-)`` is reused on the current weights (first order in the
            weight change). 1 = exact every step. Evaluation is always exact.
    Devices:
        family: device family (``devices.FAMILIES``, non-volatile ones); preset: its preset
            (None = default); device_params: parameter overrides of the preset.
        g_min, g_max: conductance window (S); None = the device's.
        w_max: weight magnitude mapped to ``g_max - g_min``; weights are clipped to
            ``[-w_max, w_max]`` in the forward pass.
        program_verify, verify_tolerance (S, None = the family's default), max_pulses:
            deployment programming.
        drift_compensation: global drift compensation of every tile at inference time.
        seed: device-to-device variation, faults and the noise of programming/reads.
    Arrays and converters:
        tile_rows, tile_cols: cells per crossbar; a tile holds ``tile_cols/2`` outputs (pairs on
            adjacent columns); ``crossbar``: :class:`xbar.CrossbarConfig` fields (topology,
            wire/driver/sense resistances in Ohm, solver options).
        dac_bits: input DAC resolution (None = ideal inputs); x_max: input full scale (inputs
            saturate there); v_read: row voltage (V) at full-scale input.
        adc_bits: ADC resolution of every tile's partial output (None = ideal); adc_range:
            full scale of one tile's partial output in output units (weight x input); None =
            tracked per layer as ``adc_headroom`` x the running maximum |partial output| seen in
            training (a buffer saved with the model, frozen in evaluation).
        r_tia: transimpedance (Ohm) of the sense amplifiers.
    Training noise (module docstring):
        train_noise: multiplier of the calibrated device noise (0 = off); train_t_read: read
            time (s) of the calibration; calibration_levels, calibration_devices: size of the
            calibration array.
    """

    mode: str = "ideal"
    backward: str = "ste"
    circuit_refresh: int = 1
    family: str = "pcm"
    preset: str | None = None
    device_params: dict = field(default_factory=dict)
    g_min: float | None = None
    g_max: float | None = None
    w_max: float = 1.0
    program_verify: bool = False
    verify_tolerance: float | None = None
    max_pulses: int = 100
    drift_compensation: bool = True
    seed: int = 0
    tile_rows: int = 128
    tile_cols: int = 128
    crossbar: dict = field(default_factory=dict)
    dac_bits: int | None = 8
    x_max: float = 1.0
    v_read: float = 0.2
    adc_bits: int | None = 8
    adc_range: float | None = None
    adc_headroom: float = 1.25
    r_tia: float = 1e4
    train_noise: float = 1.0
    train_t_read: float = 0.0
    calibration_levels: int = 17
    calibration_devices: int = 256

    def __post_init__(self):
        self.validate()

    def validate(self) -> "HardwareConfig":
        """Raise ``ValueError`` naming the first bad option and its allowed values."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"backward must be one of {list(BACKWARDS)}, got {self.backward!r}")
        if self.backward == "exact" and self.mode != "circuit":
            raise ValueError("backward='exact' differentiates through the circuit solver and needs mode='circuit'")
        _int("circuit_refresh", self.circuit_refresh, 1)
        if self.family not in _ANALOG_FAMILIES:
            raise ValueError(f"family must be one of {list(_ANALOG_FAMILIES)} (non-volatile synapse devices), "
                             f"got {self.family!r}")
        presets = devices.presets()[self.family]
        if self.preset is not None and self.preset not in presets:
            raise ValueError(f"preset must be one of {presets} for family {self.family!r}, got {self.preset!r}")
        if not isinstance(self.device_params, dict):
            raise ValueError(f"device_params must be a table of preset overrides, got {self.device_params!r}")
        _real("g_min", self.g_min, 0.0, allow_none=True)
        _real("g_max", self.g_max, 0.0, low_open=True, allow_none=True)
        _real("w_max", self.w_max, 0.0, low_open=True)
        _real("verify_tolerance", self.verify_tolerance, 0.0, low_open=True, allow_none=True)
        _int("max_pulses", self.max_pulses, 1)
        _int("seed", self.seed, 0)
        _int("tile_rows", self.tile_rows, 1, 4096)
        _int("tile_cols", self.tile_cols, 2, 4096)
        if self.tile_cols % 2:
            raise ValueError(f"tile_cols must be even (each output uses a pair of columns), got {self.tile_cols}")
        if not isinstance(self.crossbar, dict):
            raise ValueError(f"crossbar must be a table of CrossbarConfig fields, got {self.crossbar!r}")
        xbar_cfg = self.crossbar_config()  # validates the fields
        if self.backward == "exact" and not Crossbar(torch.ones(1, 1, dtype=torch.float64), config=xbar_cfg).is_linear:
            raise ValueError("backward='exact' needs linear tiles (0T1R, or 1T1R with a linear transistor); "
                             f"topology {xbar_cfg.topology!r} with these options is nonlinear: use backward='ste'")
        if self.dac_bits is not None:
            _int("dac_bits", self.dac_bits, 1, 32)
        _real("x_max", self.x_max, 0.0, low_open=True)
        _real("v_read", self.v_read, 0.0, low_open=True)
        if self.adc_bits is not None:
            _int("adc_bits", self.adc_bits, 1, 32)
        _real("adc_range", self.adc_range, 0.0, low_open=True, allow_none=True)
        _real("adc_headroom", self.adc_headroom, 0.0, low_open=True)
        _real("r_tia", self.r_tia, 0.0, low_open=True)
        _real("train_noise", self.train_noise, 0.0)
        _real("train_t_read", self.train_t_read, 0.0)
        _int("calibration_levels", self.calibration_levels, 2, 1025)
        _int("calibration_devices", self.calibration_devices, 1, 1 << 20)
        if self.g_min is not None and self.g_max is not None:
            self.probe_device()  # unknown device_params raise here even when the window is explicit
        g_lo, g_hi = self.window()
        if not g_hi > g_lo:
            raise ValueError(f"g_max must be > g_min, got g_min={g_lo:g} S, g_max={g_hi:g} S")
        return self

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """Plain dict (JSON/TOML-ready)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "HardwareConfig":
        """Build from a table; unknown keys raise naming the allowed ones. TOML has no null: the
        string ``"none"`` stands for None (e.g. ``dac_bits = "none"``: ideal inputs)."""
        if not isinstance(values, dict):
            raise ValueError(f"[hardware] must be a table, got {values!r}")
        values = none_from_strings(values)
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown hardware option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**values)

    def replace(self, **changes) -> "HardwareConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ builders
    def probe_device(self, shape=(1,), seed: int | None = None):
        """A device array of the configured family/preset (``seed`` defaults to ``self.seed``)."""
        return devices.make(self.family, shape, seed=self.seed if seed is None else seed, preset=self.preset,
                            **self.device_params)

    def window(self) -> tuple[float, float]:
        """``(g_min, g_max)`` in S: the configured values or the device's."""
        if self.g_min is not None and self.g_max is not None:
            return float(self.g_min), float(self.g_max)
        dev = self.probe_device()
        return (float(dev.g_min) if self.g_min is None else float(self.g_min),
                float(dev.g_max) if self.g_max is None else float(self.g_max))

    def mapping(self) -> DifferentialMapping:
        g_lo, g_hi = self.window()
        return DifferentialMapping(g_min=g_lo, g_max=g_hi, w_max=self.w_max)

    def crossbar_config(self) -> CrossbarConfig:
        allowed = {f.name for f in dataclasses.fields(CrossbarConfig)}
        unknown = sorted(set(self.crossbar) - allowed)
        if unknown:
            raise ValueError(f"unknown crossbar option(s) {unknown}; allowed: {sorted(allowed)}")
        cfg = CrossbarConfig(**{**self.crossbar, "grad_mode": "exact" if self.backward == "exact" else "ideal"})
        cfg.validate()
        return cfg

    def dac(self) -> DAC:
        """Input DAC: ``x_max`` -> ``v_read`` volts, ``dac_bits`` (ideal when None)."""
        return DAC(bits=self.dac_bits or 8, v_max=self.v_read, x_max=self.x_max, signed=True,
                   ideal=self.dac_bits is None)

    def tia(self) -> TIA:
        return TIA(r_tia=self.r_tia)

    def adc(self, output_range: float) -> ADC | None:
        """ADC whose full scale equals ``output_range`` output units (None when ideal)."""
        if self.adc_bits is None:
            return None
        volts_per_unit = self.r_tia * (self.v_read / self.x_max) * self.mapping().scale
        return ADC(bits=self.adc_bits, v_range=output_range * volts_per_unit, signed=True)

    def device_spec(self, seed_offset: int = 0) -> dict:
        """Device spec of :class:`xbar.TiledCrossbar` (``cells=``) for deployment."""
        return {"family": self.family, "preset": self.preset, "seed": self.seed + seed_offset,
                "verify": self.program_verify, "tolerance": self.verify_tolerance,
                "max_pulses": self.max_pulses, "t_read": 0.0, "params": dict(self.device_params)}


def none_from_strings(values: dict) -> dict:
    """Map the string ``"none"`` (any case) to None in a config table (TOML has no null)."""
    return {k: (None if isinstance(v, str) and v.lower() == "none" else v) for k, v in values.items()}


# ====================================================================== training noise model
@dataclass
class DeviceNoiseModel:
    """Programming statistics of a device family on a grid of targets (module docstring).

    ``g_levels`` (S, increasing), ``mu`` and ``sigma`` (S) per level; ``p_stuck_on/off``.
    """

    g_levels: Tensor
    mu: Tensor
    sigma: Tensor
    p_stuck_on: float
    p_stuck_off: float
    g_min: float
    g_max: float

    def _interp(self, table: Tensor, g: Tensor) -> Tensor:
        x = self.g_levels.to(g)
        pos = ((g - x[0]) / (x[-1] - x[0]) * (len(x) - 1)).clamp(0, len(x) - 1 - 1e-9)
        k = pos.floor().long()
        frac = pos - k
        t = table.to(g)
        return t[k] * (1 - frac) + t[k + 1] * frac

    def sample(self, g: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
        """Noisy conductances (S) for targets ``g`` (S); the noise carries no gradient."""
        with torch.no_grad():
            xi = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
            noise = scale * (self._interp(self.mu, g) + self._interp(self.sigma, g) * xi)
            if self.p_stuck_on > 0 or self.p_stuck_off > 0:
                u = torch.rand(g.shape, generator=generator, dtype=g.dtype, device=g.device)
                stuck_on, stuck_off = u < self.p_stuck_on, (u >= self.p_stuck_on) & (u < self.p_stuck_on
                                                                                     + self.p_stuck_off)
                noise = torch.where(stuck_on, self.g_max - g, torch.where(stuck_off, self.g_min - g, noise))
        return (g + noise).clamp_min(0.0)  # a conductance cannot be negative (the device models clip too)


_NOISE_CACHE: dict[str, DeviceNoiseModel] = {}


def calibrate_noise(hw: HardwareConfig) -> DeviceNoiseModel:
    """Measure :class:`DeviceNoiseModel` of ``hw``'s device with its real ``program()``/``read()``.

    Deterministic for a given config (seeded by ``hw.seed``); results are memoised per
    configuration within the process (a pure function of the config, so no hidden state).
    """
    key = json.dumps({k: v for k, v in hw.to_dict().items()
                      if k in ("family", "preset", "device_params", "g_min", "g_max", "program_verify",
                               "verify_tolerance", "max_pulses", "seed", "train_t_read", "calibration_levels",
                               "calibration_devices")}, sort_keys=True)
    if key in _NOISE_CACHE:
        return _NOISE_CACHE[key]
    g_lo, g_hi = hw.window()
    levels = torch.linspace(g_lo, g_hi, hw.calibration_levels, dtype=torch.float64)
    dev = hw.probe_device((hw.calibration_levels, hw.calibration_devices), seed=hw.seed + 7919)
    target = levels[:, None].expand(-1, hw.calibration_devices).contiguous()
    dev.program(target.to(dev.dtype), verify=hw.program_verify, tolerance=hw.verify_tolerance,
                max_pulses=hw.max_pulses, clip=True)
    err = dev.read(hw.train_t_read).to(torch.float64) - target
    healthy = (dev.stuck == 0).to(torch.float64)
    count = healthy.sum(1).clamp_min(1.0)
    mu = (err * healthy).sum(1) / count
    sigma = (((err - mu[:, None]) ** 2 * healthy).sum(1) / (count - 1).clamp_min(1.0)).sqrt()
    params = dev.params
    model = DeviceNoiseModel(levels, mu, sigma, float(getattr(params, "p_stuck_on", 0.0)),
                             float(getattr(params, "p_stuck_off", 0.0)), g_lo, g_hi)
    _NOISE_CACHE[key] = model
    return model
