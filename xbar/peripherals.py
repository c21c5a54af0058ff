"""Crossbar peripherals: DAC, TIA, ADC, differential weight mapping, energy per MVM.

Signal chain of one analog matrix-vector multiply (MVM)::

    x (digital, [-x_max, x_max]) --DAC--> v_in (V) --crossbar--> i_out (A)
        --TIA (v = i·r_tia)--> v_out (V) --ADC--> y (digital)

* DAC: ``bits`` bits over ``[-v_max, v_max]`` (or ``[0, v_max]`` when ``signed=False``),
  mid-tread uniform levels, step ``Δ = v_max / (2^(bits-1) - 1)`` (signed) or
  ``v_max / (2^bits - 1)``; inputs outside the range saturate (documented clipping).
* TIA: ideal transimpedance ``v_out = r_tia · i_out`` (Ω); the virtual ground is the
  crossbar's ``r_sense`` node.
* ADC: ``bits`` bits over ``[-v_range, v_range]``, mid-tread; saturation at the rails is
  counted (``ADC.saturation_fraction``) because a saturating ADC silently distorts accuracy.

All quantisers are differentiable with the straight-through estimator (the forward pass
quantises, the backward pass is the identity inside the range and zero where clipped), so
they can sit inside hardware-aware training. The tiled arrays (:mod:`xbar.tiles`) work in
digital units: ``DAC.digital(x)`` is the realised input in input units (``dac(x)/v_unit``) and
``ADC.convert(y, full_scale)`` quantises a partial output in output units whose full scale is
``full_scale`` (a number, or a 0-d tensor such as a range tracked on the device with
:func:`running_peak_`, so no host synchronisation is needed).

Differential weights: a signed weight ``w ∈ [-w_max, w_max]`` maps to a pair
``G+ = g_min + (g_max - g_min)·max(w, 0)/w_max``, ``G- = g_min + (g_max - g_min)·max(-w, 0)/w_max``
so that ``G+ - G- = w·(g_max - g_min)/w_max`` exactly; the common ``g_min`` cancels in the
difference of the two column currents.

Energy per MVM: ``E = Σ_rows v_in·i_in·t_read + n_dac·e_dac + n_adc·e_adc`` (J), with the
row currents from the circuit solution (so sneak paths and wire losses are included). The
cited default figures (ADC figure of merit, DAC, sense amplifier, neuron), the cells/wires split
and the row admittance of a tile are in :mod:`xbar.energy`; energy per inference of a network
from its spike counts in ``training.energy``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from devices.validation import check_bool, check_int, check_scalar

Tensor = torch.Tensor


def inside_mask(x: Tensor, lo, hi) -> Tensor:
    """``1.0`` where ``lo <= x <= hi`` (inclusive), else ``0.0``, in ``x``'s dtype. Comparisons are
    written into float outputs: on the CPU a float-valued comparison is vectorised, while bool masks
    and ``torch.where`` are an order of magnitude slower on weight-sized tensors."""
    if not torch.is_tensor(lo) and not torch.is_tensor(hi) and lo == -hi:
        mask = x.abs()
        return torch.le(mask, hi, out=mask)
    mask = torch.ge(x, lo, out=torch.empty_like(x))
    return mask.mul_(torch.le(x, hi, out=torch.empty_like(x)))


class _STEQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, lo, hi):
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return torch.round(x.clamp(lo, hi) / step) * step

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return inside_mask(x, *ctx.bounds).mul_(grad), None, None, None


class _STEQuantizeScaled(torch.autograd.Function):
    """Quantisation to ``levels`` steps per full scale ``fs`` (a 0-d tensor): ``y/fs`` is clamped to
    ``[lo, 1]`` with Python bounds (clamping to tensor bounds is several times slower)."""

    @staticmethod
    def forward(ctx, y, fs, levels, lo):
        z = (y * (1.0 / fs)).clamp_(lo, 1.0)
        ctx.save_for_backward(y, fs)
        ctx.lo = lo
        return torch.round(z.mul_(levels)).mul_(fs / levels)

    @staticmethod
    def backward(ctx, grad):
        y, fs = ctx.saved_tensors
        return inside_mask(y * (1.0 / fs), ctx.lo, 1.0).mul_(grad), None, None, None


def quantize(x: Tensor, step, lo, hi) -> Tensor:
    """Uniform mid-tread quantisation to multiples of ``step`` inside ``[lo, hi]`` (saturating),
    with a straight-through gradient (identity inside the range, inclusive, zero where clipped).

    ``step``, ``lo`` and ``hi`` are Python numbers (or 0-d tensors). Without a gradient to
    propagate no autograd node is built.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _STEQuantize.apply(x, step, lo, hi)
    return torch.round(x.clamp(lo, hi) / step) * step


def quantize_scaled(y: Tensor, full_scale: Tensor, levels: int, signed: bool = True) -> Tensor:
    """``levels`` steps from 0 to ``full_scale`` (a positive 0-d tensor on ``y``'s device, e.g. a
    range tracked without host synchronisation), saturating at ``±full_scale`` (``[0, full_scale]``
    unsigned), straight-through gradient inside the range."""
    lo = -1.0 if signed else 0.0
    if torch.is_grad_enabled() and y.requires_grad:
        return _STEQuantizeScaled.apply(y, full_scale, levels, lo)
    z = (y * (1.0 / full_scale)).clamp_(lo, 1.0)
    return torch.round(z.mul_(levels)).mul_(full_scale / levels)


class _Clip(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp(-bound, bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return inside_mask(x, -ctx.bound, ctx.bound).mul_(grad), None


def clip(x: Tensor, bound: float) -> Tensor:
    """``x.clamp(-bound, bound)`` with clamp's gradient (1 inside the closed range, 0 outside),
    computed with a float mask (see :func:`inside_mask`)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _Clip.apply(x, bound)
    return x.clamp(-bound, bound)


def _check_bits(name: str, bits) -> int:
    return check_int(name, bits, low=1, high=32)


def _levels(bits: int, signed: bool) -> int:
    """Number of steps from 0 to full scale: ``2^(bits-1) - 1`` (signed, mid-tread) or ``2^bits - 1``."""
    return max(2 ** (bits - 1) - 1 if signed else 2**bits - 1, 1)


@dataclass(frozen=True)
class DAC:
    """Input digital-to-analog converter.

    Attributes:
        bits: resolution (1..32); ``ideal=True`` turns quantisation off.
        v_max: full-scale voltage (V).
        signed: bipolar output ``[-v_max, v_max]`` (True) or unipolar ``[0, v_max]``.
        x_max: digital full scale that maps to ``v_max``.
        ideal: skip quantisation (still scales and saturates).
        energy_per_conversion: J per converted input (for energy estimates).
    """

    bits: int = 8
    v_max: float = 0.2
    signed: bool = True
    x_max: float = 1.0
    ideal: bool = False
    energy_per_conversion: float = 0.0

    def __post_init__(self):
        _check_bits("DAC.bits", self.bits)
        check_scalar("DAC.v_max", self.v_max, low=0.0, low_open=True)
        check_bool("DAC.signed", self.signed)
        check_scalar("DAC.x_max", self.x_max, low=0.0, low_open=True)
        check_bool("DAC.ideal", self.ideal)
        check_scalar("DAC.energy_per_conversion", self.energy_per_conversion, low=0.0)

    @property
    def levels(self) -> int:
        """Codes from 0 to full scale."""
        return _levels(self.bits, self.signed)

    @property
    def step(self) -> float:
        """Voltage step (V) between adjacent levels."""
        return self.v_max / self.levels

    @property
    def v_unit(self) -> float:
        """Volts per unit of digital input (``v_max / x_max``)."""
        return self.v_max / self.x_max

    def __call__(self, x: Tensor) -> Tensor:
        """Digital inputs → voltages (V)."""
        v = x * (self.v_max / self.x_max)
        lo = -self.v_max if self.signed else 0.0
        if self.ideal:
            return v.clamp(lo, self.v_max)
        return quantize(v, self.step, lo, self.v_max)

    def digital(self, x: Tensor) -> Tensor:
        """The input the DAC realises, in input units: ``x`` saturated at the full scale and
        rounded to the ``x_max/levels`` grid (``dac(x) / v_unit`` without the two scalings;
        straight-through gradient)."""
        lo = -self.x_max if self.signed else 0.0
        if self.ideal:
            return x.clamp(lo, self.x_max)
        return quantize(x, self.x_max / self.levels, lo, self.x_max)


@dataclass(frozen=True)
class ADC:
    """Output analog-to-digital converter acting on the TIA output voltage.

    Attributes:
        bits: resolution (1..32).
        v_range: full scale (V); codes span ``[-v_range, v_range]`` (signed) or ``[0, v_range]``.
        signed: bipolar conversion.
        ideal: no quantisation and no saturation.
        energy_per_conversion: J per conversion.
    """

    bits: int = 8
    v_range: float = 1.0
    signed: bool = True
    ideal: bool = False
    energy_per_conversion: float = 0.0

    def __post_init__(self):
        _check_bits("ADC.bits", self.bits)
        check_scalar("ADC.v_range", self.v_range, low=0.0, low_open=True)
        check_bool("ADC.signed", self.signed)
        check_bool("ADC.ideal", self.ideal)
        check_scalar("ADC.energy_per_conversion", self.energy_per_conversion, low=0.0)

    @property
    def levels(self) -> int:
        """Codes from 0 to full scale."""
        return _levels(self.bits, self.signed)

    @property
    def step(self) -> float:
        return self.v_range / self.levels

    def __call__(self, v: Tensor) -> Tensor:
        """Voltages (V) → quantised voltages (V) (the code times the step)."""
        if self.ideal:
            return v
        lo = -self.v_range if self.signed else 0.0
        return quantize(v, self.step, lo, self.v_range)

    def convert(self, y: Tensor, full_scale) -> Tensor:
        """Quantise ``y`` given in any unit in which the ADC's full scale (``v_range`` volts) is
        ``full_scale`` (a positive number or a 0-d tensor, e.g. a range tracked on the device):
        the result is the code times ``full_scale/levels``, saturating at the rails, with a
        straight-through gradient. A 0-d tensor ``full_scale`` of 0 (a tracked range that has seen only
        zeros) maps everything to 0. Equals ``adc(y·k)/k`` with ``k = v_range/full_scale`` up to rounding."""
        if self.ideal:
            return y
        if not torch.is_tensor(full_scale):
            full_scale = check_scalar("full_scale", full_scale, low=0.0, low_open=True)
            lo = -full_scale if self.signed else 0.0
            return quantize(y, full_scale / self.levels, lo, full_scale)
        # a zero full scale (a tracked range that has seen only zeros) maps everything to 0
        full_scale = full_scale.to(y.dtype).clamp_min(torch.finfo(y.dtype).tiny * self.levels)
        return quantize_scaled(y, full_scale, self.levels, self.signed)

    def saturation_fraction(self, v: Tensor) -> float:
        """Fraction of conversions that hit a rail (0 for an ideal ADC)."""
        if self.ideal:
            return 0.0
        lo = -self.v_range if self.signed else 0.0
        return float(((v > self.v_range) | (v < lo)).double().mean())


def running_peak_(peak: Tensor, value: Tensor, momentum: float = 0.1) -> Tensor:
    """Track a converter range in place, on the device (no host synchronisation): ``peak`` (0-d)
    becomes ``value`` the first time (while it is 0), then ``(1 - momentum)·peak + momentum·value``.
    Returns ``peak``."""
    value = value.to(peak.dtype)
    with torch.no_grad():
        peak.copy_(torch.where(peak == 0, value, torch.lerp(peak, value, momentum)))
    return peak


@dataclass(frozen=True)
class TIA:
    """Transimpedance amplifier: ``v_out = r_tia · i_in`` (r_tia in Ω)."""

    r_tia: float = 1e4

    def __post_init__(self):
        check_scalar("TIA.r_tia", self.r_tia, low=0.0, low_open=True)

    def __call__(self, i: Tensor) -> Tensor:
        return i * self.r_tia


@dataclass(frozen=True)
class DifferentialMapping:
    """Signed weights ↔ differential conductance pairs (see module docstring).

    Attributes:
        g_min, g_max: device window (S).
        w_max: weight magnitude mapped to ``g_max - g_min``.
    """

    g_min: float
    g_max: float
    w_max: float = 1.0

    def __post_init__(self):
        check_scalar("g_min", self.g_min, low=0.0)
        check_scalar("g_max", self.g_max, low=0.0, low_open=True)
        if not self.g_max > self.g_min:
            raise ValueError(f"g_max must be > g_min, got {self.g_min:g} S, {self.g_max:g} S")
        check_scalar("w_max", self.w_max, low=0.0, low_open=True)

    @property
    def scale(self) -> float:
        """Siemens per unit weight."""
        return (self.g_max - self.g_min) / self.w_max

    def to_conductances(self, w: Tensor, clip: bool = False) -> tuple[Tensor, Tensor]:
        """``(G+, G-)`` for weights ``w``; |w| > w_max raises unless ``clip``."""
        if torch.isnan(w).any():
            raise ValueError("weights contain NaN")
        if not clip and bool((w.abs() > self.w_max * (1 + 1e-12)).any()):
            raise ValueError(f"|weight| must be <= w_max = {self.w_max:g} (got {float(w.abs().max()):g}); "
                             "pass clip=True to clip")
        w = w.clamp(-self.w_max, self.w_max)
        g_pos = self.g_min + self.scale * w.clamp_min(0.0)
        g_neg = self.g_min + self.scale * (-w).clamp_min(0.0)
        return g_pos, g_neg

    def to_weights(self, g_pos: Tensor, g_neg: Tensor) -> Tensor:
        """Weights represented by a pair (inverse of :meth:`to_conductances`)."""
        return (g_pos - g_neg) / self.scale


def mvm_energy(v_in: Tensor, i_in: Tensor, t_read: float, dac: DAC | None = None, adc: ADC | None = None,
               n_outputs: int | None = None) -> Tensor:
    """Energy (J) of each MVM in a batch.

    Args:
        v_in: (batch, rows) applied row voltages (V).
        i_in: (batch, rows) currents drawn from the row sources (A), from the circuit solution.
        t_read: read (integration) time (s).
        dac, adc: converters whose ``energy_per_conversion`` is added per row / per output.
        n_outputs: number of ADC conversions per MVM (default: none counted).
    """
    check_scalar("t_read", t_read, low=0.0, low_open=True)
    energy = (v_in * i_in).sum(dim=-1) * t_read
    if dac is not None:
        energy = energy + v_in.shape[-1] * dac.energy_per_conversion
    if adc is not None and n_outputs is not None:
        energy = energy + n_outputs * adc.energy_per_conversion
    return energy
