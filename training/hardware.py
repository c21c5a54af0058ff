r"""Hardware options of a crossbar-backed layer and the device noise model used while training.

:class:`HardwareConfig` holds every option as a plain, serialisable value (a TOML/JSON table
maps 1:1 onto it; ``HardwareConfig.from_dict(cfg.to_dict()) == cfg``), so robustness sweeps
can vary any of them from a config file.

Weights and conductances. A weight ``w`` (clipped to ``[-w_max, w_max]``) is stored on a
differential pair (:class:`xbar.DifferentialMapping`)::

    G+ = g_min + s max(w, 0),   G- = g_min + s max(-w, 0),   s = (g_max - g_min) / w_max   (S per unit weight)

and read back as ``w = (G+ - G-)/s``. The window ``[g_min, g_max]`` defaults to the device
preset's; an explicit window must lie inside what the device can be programmed to (a wider one
would be clipped at deployment and train to nonsense): change the device itself with
``device_params = {g_min = ..., g_max = ...}`` to go beyond the preset.

Training noise model (``mode="noisy"`` and ``"circuit"`` while training; :mod:`training.noise_model`).
Re-programming real devices at every step would be slow and is not what hardware-aware training
does; instead the device's *programming statistics* are measured once with its real ``program()``
(and ``read(train_t_read)``) on a calibration array — ``calibration_devices`` devices at each of
``calibration_levels`` targets evenly spaced in ``[g_min, g_max]`` (at the cell's discrete levels
for multi-level STT-MRAM cells) — and fitted by low-order polynomials ``mu(G)``, ``sigma(G)``
(S; the fit error is reported). A training forward pass then draws, for every weight of a pair
with independent device errors, in the working dtype and with one ``randn`` per weight::

    w~ = w + train_noise ((mu(G+) - mu(G-)) + sqrt(sigma(G+)^2 + sigma(G-)^2) xi) / s,   xi ~ N(0, 1)

and the preset's stuck-at faults (``p_stuck_on``/``p_stuck_off``) pin a sparse random set of
devices at ``g_max``/``g_min``. Circuit mode draws the same statistics per device (clipped at 0 S)
for the circuit solves. ``train_noise = 0`` turns injection off.

Deployment (evaluation) uses real devices: every tile is programmed once with the family's
``program()`` (write-verify optional) and read at each inference time ``t`` with drift, read
noise and faults; ``drift_compensation`` rescales each tile's output by the global factor
``alpha = sum G_ref / sum G(t)`` of a calibration read of the tile's weight cells (the
padding of partly used tiles is left out; aihwkit's ``GlobalDriftCompensation``;
Joshi et al., Nat. Commun. 11, 2473 (2020); :class:`xbar.drift_compensation.GlobalDriftCompensation`).
Tile ``(r, c)`` of layer ``l`` in deployment repeat ``k`` draws its devices from
``derive_seed(seed, "layer", l, "tile", r, c, "repeat", k)`` (:mod:`xbar.programming`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch

import devices
from devices.validation import (check_bool, check_choice, check_int, check_optional_real, check_real, check_seed,
                                check_time)
from xbar import ADC, DAC, TIA, Crossbar, CrossbarConfig, DifferentialMapping
from xbar.programming import SYNAPSE_FAMILIES, DeviceSpec
from xbar.tiles import TiledArray, TileLayout

Tensor = torch.Tensor

__all__ = ["HardwareConfig", "MODES", "BACKWARDS", "none_from_strings", "DeviceNoiseModel", "calibrate_noise"]

MODES = ("ideal", "noisy", "circuit")
BACKWARDS = ("ste", "exact")
_WINDOW_RTOL = 1e-9  # relative slack of the window check (rounding of derived windows)


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
            time (s) of the calibration (with ``drift_compensation``, the error left after the
            global compensation at that time; set it to the deployment's read time to train on
            the noise the chip will show then); calibration_levels, calibration_devices: size of
            the calibration array.
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
        check_choice("mode", self.mode, MODES)
        check_choice("backward", self.backward, BACKWARDS)
        if self.backward == "exact" and self.mode != "circuit":
            raise ValueError("backward='exact' differentiates through the circuit solver and needs mode='circuit'")
        check_int("circuit_refresh", self.circuit_refresh, low=1)
        check_choice("family (non-volatile synapse devices)", self.family, SYNAPSE_FAMILIES)
        if self.preset is not None:
            check_choice(f"preset (family {self.family!r})", self.preset, devices.presets()[self.family])
        if not isinstance(self.device_params, dict):
            raise ValueError(f"device_params must be a table of preset overrides, got {self.device_params!r}")
        check_optional_real("g_min", self.g_min, low=0.0)
        check_optional_real("g_max", self.g_max, low=0.0, low_open=True)
        check_real("w_max", self.w_max, low=0.0, low_open=True)
        check_bool("program_verify", self.program_verify)
        check_optional_real("verify_tolerance", self.verify_tolerance, low=0.0, low_open=True)
        check_int("max_pulses", self.max_pulses, low=1)
        check_bool("drift_compensation", self.drift_compensation)
        check_seed("seed", self.seed)
        check_int("tile_rows", self.tile_rows, low=1, high=4096)
        check_int("tile_cols", self.tile_cols, low=2, high=4096)
        if self.tile_cols % 2:
            raise ValueError(f"tile_cols must be even (each output uses a pair of columns), got {self.tile_cols}")
        if not isinstance(self.crossbar, dict):
            raise ValueError(f"crossbar must be a table of CrossbarConfig fields, got {self.crossbar!r}")
        xbar_cfg = self.crossbar_config()  # validates the fields
        if self.backward == "exact" and not Crossbar(torch.ones(1, 1, dtype=torch.float64), config=xbar_cfg).is_linear:
            raise ValueError("backward='exact' needs linear tiles (0T1R, or 1T1R with a linear transistor); "
                             f"topology {xbar_cfg.topology!r} with these options is nonlinear: use backward='ste'")
        if self.dac_bits is not None:
            check_int("dac_bits", self.dac_bits, low=1, high=32)
        check_real("x_max", self.x_max, low=0.0, low_open=True)
        check_real("v_read", self.v_read, low=0.0, low_open=True)
        if self.adc_bits is not None:
            check_int("adc_bits", self.adc_bits, low=1, high=32)
        check_optional_real("adc_range", self.adc_range, low=0.0, low_open=True)
        check_real("adc_headroom", self.adc_headroom, low=0.0, low_open=True)
        check_real("r_tia", self.r_tia, low=0.0, low_open=True)
        check_real("train_noise", self.train_noise, low=0.0)
        check_time("train_t_read", self.train_t_read)
        check_int("calibration_levels", self.calibration_levels, low=2, high=1025)
        check_int("calibration_devices", self.calibration_devices, low=1, high=1 << 20)
        self._check_window()
        return self

    def _check_window(self) -> None:
        """The window must be ordered and inside the device's programmable range (module docstring)."""
        dev = self.probe_device()  # unknown device_params raise here, naming the parameter
        lo, hi = float(dev.g_min), float(dev.g_max)
        g_lo, g_hi = self.window(dev)
        if not g_hi > g_lo:
            raise ValueError(f"g_max must be > g_min, got g_min={g_lo:g} S, g_max={g_hi:g} S")
        for name, value, ok in (("g_min", self.g_min, self.g_min is None or self.g_min >= lo * (1 - _WINDOW_RTOL)),
                                ("g_max", self.g_max, self.g_max is None or self.g_max <= hi * (1 + _WINDOW_RTOL))):
            if not ok:
                raise ValueError(f"{name} = {value:g} S lies outside the programmable window [{lo:g}, {hi:g}] S of "
                                 f"the {self.family} devices (preset {self.preset or 'default'}): such weights cannot "
                                 f"be programmed; choose {name} in that window, or change the device itself with "
                                 f"device_params = {{{name} = ...}}")

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
    def probe_device(self, shape=(1,), seed: int | None = None, device="cpu"):
        """A device array of the configured family/preset (``seed`` defaults to ``self.seed``)."""
        return devices.make(self.family, shape, seed=self.seed if seed is None else seed, preset=self.preset,
                            device=device, **self.device_params)

    def window(self, probe=None) -> tuple[float, float]:
        """``(g_min, g_max)`` in S: the configured values or the device's."""
        if self.g_min is not None and self.g_max is not None:
            return float(self.g_min), float(self.g_max)
        dev = self.probe_device() if probe is None else probe
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

    def volts_per_output(self) -> float:
        """Sense-amplifier output (V) per output unit (weight x input) of one tile."""
        return self.r_tia * (self.v_read / self.x_max) * self.mapping().scale

    def adc(self, output_range: float) -> ADC | None:
        """ADC whose full scale equals ``output_range`` output units (None when ideal)."""
        if self.adc_bits is None:
            return None
        return ADC(bits=self.adc_bits, v_range=output_range * self.volts_per_output(), signed=True)

    def tiled_array(self, rows: int, outs: int) -> TiledArray:
        """The :class:`xbar.tiles.TiledArray` of a ``rows x outs`` weight matrix with these options:
        no DAC when ``dac_bits`` is None (inputs used as given), an ADC of ``adc_bits`` whose full
        scale is ``adc_range`` output units (a tracked range is passed per call when None)."""
        adc = self.adc(self.adc_range if self.adc_range is not None else 1.0)
        return TiledArray(TileLayout(rows, outs, self.tile_rows, self.tile_cols), self.mapping(),
                          self.crossbar_config(), dac=None if self.dac_bits is None else self.dac(), adc=adc,
                          tia=self.tia(), v_scale=self.v_read / self.x_max)

    def device_spec(self) -> DeviceSpec:
        """How deployment programs the devices (:class:`xbar.programming.DeviceSpec`)."""
        return DeviceSpec(family=self.family, preset=self.preset, seed=self.seed, verify=self.program_verify,
                          tolerance=self.verify_tolerance, max_pulses=self.max_pulses, t_read=0.0,
                          params=dict(self.device_params))


def none_from_strings(values: dict) -> dict:
    """Map the string ``"none"`` (any case) to None in a config table (TOML has no null)."""
    return {k: (None if isinstance(v, str) and v.lower() == "none" else v) for k, v in values.items()}


# the training noise model lives in its own module; re-exported here for ``training.hardware`` users
from .noise_model import DeviceNoiseModel, calibrate_noise  # noqa: E402
