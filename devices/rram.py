"""Filamentary metal-oxide RRAM: Stanford–PKU gap dynamics + measured programming statistics.

Two layers, as device researchers use them:

* **Physics** (:mod:`devices.rram_physics`): the tunnelling-gap compact model gives the
  nonlinear I-V ``I = I0·exp(-g/g0)·sinh(V/V0)``, threshold-like SET/RESET dynamics with Joule
  heating, and therefore the pulse response (nonlinear, asymmetric potentiation/depression)
  and the pulse-level write-verify loop.
* **Statistics** (Wan et al., "A compute-in-memory chip based on resistive random-access
  memory", Nature 608, 504 (2022), as fitted in IBM aihwkit ``ReRamWan2022NoiseModel``):
  the conductance spread of programmed devices one second after their write-verify::

      σ_prog(G) = 1 µS · Σ_k c_k · (G / G_ref)^k,   G_ref = 40 µS
      c(1 s)   = (0.348, 16.030, -43.853, 45.393, -16.815)
      c(1 day) = (0.701, 22.086, -50.773, 47.095, -16.458)
      c(2 day) = (0.782, 20.274, -43.507, 37.062, -11.934)

  ``program(target)`` (no verify) draws ``G = target + σ_prog(target)·N(0, 1)``; this is the
  published outcome of the chip's own programming, so it is the default. ``program(...,
  verify=True)`` instead runs an explicit incremental-step write-verify loop on the gap model.

Retention / relaxation: the spread grows with time. Each device carries a standard normal
``z`` drawn when it is programmed; at ``t`` seconds after programming::

    G(t) = G_prog + z · sqrt(σ(t)² − σ(1 s)²)

with ``σ(t)`` the Wan fit interpolated linearly in log10(t) between 1 s, 1 day and 2 days and
extrapolated in log10(t) beyond 2 days (an assumption: the paper reports up to 2 days).

Variation and noise: device-to-device (D2D) spread of the current prefactor ``I0`` (lognormal,
``d2d_sigma``: a device's conductance at a given gap) and of the gap velocity prefactor
(lognormal, ``d2d_rate_sigma``: some devices switch faster); cycle-to-cycle (C2C) lognormal
factor on every pulse's gap change (``c2c_sigma``; a fluctuation of the migration barrier by
``c2c_sigma·kT``); read noise is Gaussian with σ = ``read_noise·g_max`` on every read (aihwkit's
recommendation for Wan's chip: about 1 % of G_max). Stuck-at rates default to 0; Chen et al.
(IEEE Trans. Comput. 64, 180 (2015)) measured about 1.75 % SA0 and 9.04 % SA1 on a test chip,
use ``RRAM(..., p_stuck_off=0.0175, p_stuck_on=0.0904)`` to reproduce that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .validation import check_scalar
from .base import STUCK_NONE, CommonParams, Device, ProgramResult, Tensor
from .rram_physics import (GapParams, gap_conductance, gap_current, gap_for_conductance, integrate_gap)

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class RRAMParams(CommonParams):
    """RRAM parameters (SI units; ``ea`` in eV). Defaults = preset ``wan2022_neurram``."""

    g_min: float = 1e-6  # S
    g_max: float = 40e-6  # S
    v_read: float = 0.2  # V
    # --- Stanford-PKU gap model (Guan et al. 2012 parameter set, Jiang et al. 2016)
    i0: float = 61.4e-6  # A
    g0: float = 0.275e-9  # m
    v0: float = 0.43  # V
    vel0: float = 150.0  # m/s
    ea: float = 1.501  # eV
    a0: float = 0.25e-9  # m
    t_ox: float = 5e-9  # m
    gamma0: float = 16.5
    beta_gamma: float = 1.25
    f_min: float = 1.4e9  # V/m
    r_th: float = 7.23e5  # K/W  (τ_th / C_th = 0.23 ns / 0.318 fJ/K)
    t_amb: float = 300.0  # K
    gap_min: float = 0.1e-9  # m
    gap_max: float = 1.7e-9  # m
    # --- pulses
    v_set: float = 1.8  # V, SET pulse amplitude
    i_compliance: float = 100e-6  # A, default SET current compliance of apply_pulses (1T1R gate)
    v_reset: float = -1.2  # V, default RESET pulse amplitude
    t_pulse: float = 100e-9  # s
    verify_i_start: float = 10e-6  # A, first SET compliance of the write-verify ladder
    verify_i_factor: float = 1.12  # compliance multiplier between consecutive SET pulses
    verify_i_max: float = 400e-6  # A
    verify_v_reset_start: float = -1.0  # V, first RESET amplitude of the ladder
    verify_v_step: float = 0.02  # V, RESET amplitude step between consecutive RESET pulses
    verify_v_max: float = 2.0  # V, largest |RESET amplitude|
    max_gap_step: float = 1e-11  # m, largest gap change per integration step
    verify_reads: int = 4  # reads averaged by each verify step (σ_verify = σ_read/sqrt(n))
    verify_margin: float = 2.0  # guard band of the verify test in σ_verify
    # --- statistics (µS polynomial in G/prog_g_ref)
    prog_g_ref: float = 40e-6  # S
    prog_sigma_1s: tuple = (0.348, 16.030, -43.853, 45.393, -16.815)
    prog_sigma_1d: tuple = (0.701, 22.086, -50.773, 47.095, -16.458)
    prog_sigma_2d: tuple = (0.782, 20.274, -43.507, 37.062, -11.934)
    d2d_sigma: float = 0.10
    d2d_rate_sigma: float = 0.2
    c2c_sigma: float = 0.3
    read_noise: float = 0.01

    def __post_init__(self):
        for name in ("prog_sigma_1s", "prog_sigma_1d", "prog_sigma_2d"):
            object.__setattr__(self, name, tuple(float(c) for c in getattr(self, name)))

    def validate(self) -> None:
        super().validate()
        for name in ("i0", "g0", "v0", "vel0", "ea", "a0", "t_ox", "gamma0", "f_min", "t_amb",
                     "gap_max", "t_pulse", "prog_g_ref", "verify_v_step", "verify_v_max", "v_set",
                     "i_compliance", "verify_i_start", "verify_i_max", "max_gap_step"):
            check_scalar(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("beta_gamma", "r_th", "gap_min", "d2d_sigma", "d2d_rate_sigma", "c2c_sigma", "read_noise"):
            check_scalar(name, getattr(self, name), low=0.0)
        for name in ("v_reset", "verify_v_reset_start"):
            check_scalar(name, getattr(self, name), high=0.0, high_open=True)
        check_scalar("verify_i_factor", self.verify_i_factor, low=1.0, low_open=True)
        check_scalar("verify_reads", self.verify_reads, low=1, high=1024)
        check_scalar("verify_margin", self.verify_margin, low=0.0, high=10.0)
        if not self.gap_max > self.gap_min:
            raise ValueError(f"gap_max must be > gap_min, got {self.gap_min:g} m, {self.gap_max:g} m")
        for name in ("prog_sigma_1s", "prog_sigma_1d", "prog_sigma_2d"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"{name} must hold at least one polynomial coefficient")
        p = self.gap_params()
        g_hi = float(gap_conductance(p, torch.tensor(self.gap_min, dtype=torch.float64), self.v_read))
        g_lo = float(gap_conductance(p, torch.tensor(self.gap_max, dtype=torch.float64), self.v_read))
        if not (g_lo <= self.g_min and self.g_max <= g_hi):
            raise ValueError(
                f"the window [g_min, g_max] = [{self.g_min:.3g}, {self.g_max:.3g}] S must lie inside the range the "
                f"gap model reaches between gap_max and gap_min, [{g_lo:.3g}, {g_hi:.3g}] S"
            )

    def gap_params(self) -> GapParams:
        return GapParams(self.i0, self.g0, self.v0, self.vel0, self.ea, self.a0, self.t_ox, self.gamma0,
                         self.beta_gamma, self.f_min, self.r_th, self.t_amb, self.gap_min, self.gap_max)


#: Wan et al., Nature 608, 504 (2022) NeuRRAM statistics (aihwkit ReRamWan2022NoiseModel fit,
#: G_max = 40 µS) on the Stanford-PKU gap model with the Guan/Jiang parameter set
#: (I0 = 61.4 µA, g0 = 0.275 nm, V0 = 0.43 V, v0 = 150 m/s, Ea = 1.501 eV, γ0 = 16.5, β = 1.25,
#: t_ox = 5 nm, gap 0.1–1.7 nm, R_th = τ_th/C_th = 0.23 ns / 0.318 fJ/K).
WAN2022_NEURRAM = RRAMParams()

#: The Stanford-PKU parameter set as shipped in MemTorch's ``Stanford_PKU`` model (I0 = 1 mA,
#: g0 = 0.25 nm, V0 = 0.25 V, v0 = 10 m/s, Ea = 0.6 eV, t_ox = 12 nm, γ0 = 16, β = 0.8,
#: R_th = 2.1 kK/W, r_on/r_off = 542 Ω / 218.6 kΩ read at 0.1 V). The window is 5 µS–1.8 mS; the
#: programming spread uses the *shape* of the Wan fit scaled to this window (an assumption:
#: no published fit exists for this parameter set), i.e. G_ref = g_max and σ scaled by g_max/40 µS.
STANFORD_PKU_MEMTORCH = replace(
    WAN2022_NEURRAM, g_min=1 / 218586.0, g_max=1 / 542.0, v_read=0.1, i0=1e-3, g0=0.25e-9, v0=0.25,
    vel0=10.0, ea=0.6, t_ox=12e-9, gamma0=16.0, beta_gamma=0.8, r_th=2.1e3, gap_min=0.2e-9, gap_max=1.7e-9,
    v_set=1.8, v_reset=-1.6, i_compliance=1e-3, verify_i_start=50e-6, verify_i_max=5e-3,
    verify_v_reset_start=-1.2, prog_g_ref=1 / 542.0,
    prog_sigma_1s=tuple(c * (1 / 542.0) / 40e-6 for c in WAN2022_NEURRAM.prog_sigma_1s),
    prog_sigma_1d=tuple(c * (1 / 542.0) / 40e-6 for c in WAN2022_NEURRAM.prog_sigma_1d),
    prog_sigma_2d=tuple(c * (1 / 542.0) / 40e-6 for c in WAN2022_NEURRAM.prog_sigma_2d),
)

PRESETS = {"wan2022_neurram": WAN2022_NEURRAM, "stanford_pku_memtorch": STANFORD_PKU_MEMTORCH}


def _poly(coeffs: tuple, x: Tensor) -> Tensor:
    out = torch.zeros_like(x)
    for c in reversed(coeffs):
        out = out * x + c
    return out


class RRAM(Device):
    """Filamentary RRAM array (see module docstring for the model and sources).

    State: the tunnelling gap ``gap`` (m) of every device. Extra attributes: ``i0_scale`` and
    ``rate_scale`` (D2D factors), ``relax_z`` (per-device relaxation draw, set by ``program``).
    """

    family = "rram"
    params_type = RRAMParams
    presets = PRESETS
    default_preset = "wan2022_neurram"

    # ---------------------------------------------------------------- construction
    def _init_variation(self) -> None:
        p = self.params
        self.i0_scale = torch.exp(p.d2d_sigma * self._randn())
        self.rate_scale = torch.exp(p.d2d_rate_sigma * self._randn())
        self._gp = p.gap_params()

    def _init_state(self) -> None:
        # As fabricated (after forming and a RESET): the high-resistance end of the window.
        self.gap = gap_for_conductance(self._gp, torch.full(self.shape, self.g_min, dtype=self.dtype,
                                                            device=self.device), self.params.v_read, self.i0_scale)
        self.gap = self.gap.clamp(self.params.gap_min, self.params.gap_max)
        self.relax_z = torch.zeros(self.shape, dtype=self.dtype, device=self.device)

    # ---------------------------------------------------------------- statistics
    def programming_sigma(self, g: Tensor, t: float = 1.0) -> Tensor:
        """σ (S) of programmed conductances around their target ``g`` at ``t`` s (Wan fit)."""
        p = self.params
        x = torch.as_tensor(g, dtype=self.dtype, device=self.device) / p.prog_g_ref
        s1, sd, s2 = (_poly(c, x).clamp_min(0.0) * 1e-6 for c in (p.prog_sigma_1s, p.prog_sigma_1d, p.prog_sigma_2d))
        if t <= 1.0:
            return s1
        lt = math.log10(t)
        l1, ld, l2 = 0.0, math.log10(SECONDS_PER_DAY), math.log10(2 * SECONDS_PER_DAY)
        if lt <= ld:
            w = lt / ld
            return (1 - w) * s1 + w * sd
        w = (lt - ld) / (l2 - ld)  # > 1 beyond two days: log-linear extrapolation
        return ((1 - w) * sd + w * s2).clamp_min(0.0)

    # ---------------------------------------------------------------- reading
    def conductance(self) -> Tensor:
        return self._apply_faults(gap_conductance(self._gp, self.gap, self.params.v_read, self.i0_scale))

    def read(self, t: float = 0.0) -> Tensor:
        t = self._check_time(t)
        g0 = gap_conductance(self._gp, self.gap, self.params.v_read, self.i0_scale)
        if t > 1.0:
            extra = (self.programming_sigma(g0, t) ** 2 - self.programming_sigma(g0, 1.0) ** 2).clamp_min(0.0)
            g0 = (g0 + self.relax_z * extra.sqrt()).clamp_min(0.0)
        g = g0 + self.params.read_noise * self.g_max * self._randn()
        return self._apply_faults(g.clamp_min(0.0))

    def current(self, voltage) -> Tensor:
        v = torch.as_tensor(voltage, dtype=self.dtype, device=self.device)
        i = gap_current(self._gp, self.gap, v, self.i0_scale)
        return self._apply_faults_current(v, i)

    # ---------------------------------------------------------------- writing
    def _pulse(self, voltage: Tensor, width: float, i_compliance: Tensor | float | None) -> None:
        """One pulse of per-device amplitude ``voltage`` (0 = not addressed) on all devices."""
        c2c = torch.exp(self.params.c2c_sigma * self._randn())
        new_gap = integrate_gap(self._gp, self.gap, voltage, width, max_gap_step=self.params.max_gap_step,
                                i0_scale=self.i0_scale, rate_scale=self.rate_scale, step_scale=c2c,
                                i_compliance=i_compliance)
        self.gap = torch.where(self.stuck == STUCK_NONE, new_gap, self.gap)

    def apply_pulses(self, pulses, *, amplitude=None, width: float | None = None,
                     i_compliance: float | None = None) -> Tensor:
        """Apply signed pulse counts: ``n > 0`` SET pulses at ``+amplitude`` (default ``v_set``)
        under the current compliance ``i_compliance`` (A, default the preset's; the 1T1R access
        transistor), ``n < 0`` RESET pulses at ``-|amplitude|`` (default ``v_reset``), each
        ``width`` s long.

        ``amplitude`` may also be a per-device tensor of *signed* voltages (V, broadcastable to
        the array shape): device ``d`` then receives ``|n[d]|`` pulses of exactly
        ``amplitude[d]`` volts (positive = SET polarity, negative = RESET, 0 = no effect), e.g.
        the voltage each cell of a crossbar actually sees during a V/2 write. The sign of
        ``pulses`` must then agree with the sign of ``amplitude`` wherever both are nonzero.
        A Python number or a 0-d tensor keeps the scalar meaning above.

        SET is abrupt (thermal runaway, stopped by the compliance) and RESET gradual — the
        asymmetry of filamentary oxide RRAM. Returns the noise-free conductance (S).
        """
        n = self._pulse_counts(pulses)
        p = self.params
        width = p.t_pulse if width is None else check_scalar("width", width, low=0.0, low_open=True)
        icc = p.i_compliance if i_compliance is None else check_scalar("i_compliance", i_compliance,
                                                                       low=0.0, low_open=True)
        per_device = torch.is_tensor(amplitude) and amplitude.dim() > 0
        if per_device:
            amp = self._tensor("amplitude", amplitude)
            if bool((n * torch.sign(amp) < 0).any()):
                raise ValueError("amplitude (per-device tensor, V) must have the sign of pulses where both are "
                                 "nonzero: positive = SET, negative = RESET")
        elif amplitude is None:
            v_set, v_reset = p.v_set, p.v_reset
        else:
            a = abs(check_scalar("amplitude", amplitude, low=0.0, low_open=True))
            v_set, v_reset = a, -a
        for k in range(int(n.abs().max()) if n.numel() else 0):
            if per_device:
                voltage = torch.where(n.abs() > k, amp, torch.zeros_like(amp))
            else:
                voltage = torch.where(n > k, v_set, torch.where(n < -k, v_reset, 0.0)).to(self.dtype)
            self._pulse(voltage, width, icc)
        return self.conductance()

    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Program every device to ``target_conductance`` (S).

        ``verify=False``: the Wan et al. (2022) distribution one second after programming,
        ``G = target + σ_prog(target)·N(0,1)`` (one programming event; ``pulses`` = 1).
        ``verify=True``: NeuRRAM-style incremental write-verify on the gap model. Each iteration
        reads every unfinished device (with read noise) and applies one pulse: a SET at
        ``v_set`` if it reads below ``target - tolerance``, with a current compliance that grows
        by ``verify_i_factor`` per consecutive SET (from ``verify_i_start``, or from 0.85× the
        last compliance after a RESET), or a RESET if it reads above ``target + tolerance``,
        with an amplitude that grows by ``verify_v_step`` per consecutive RESET (from
        ``verify_v_reset_start``). A verify step averages ``verify_reads`` reads and accepts a
        device when it reads within ``band = max(tolerance - verify_margin·σ_verify, tolerance/2)``
        of the target, a guard band that keeps the true conductance inside the tolerance despite
        read noise. ``tolerance`` defaults to 1 % of ``g_max - g_min``.

        Without verify the programmed conductance is limited to what the device's gap can
        reach, ``[G(gap_max), G(gap_min)]`` (a low target whose Wan draw falls below the HRS
        limit lands at the HRS limit).
        """
        target = self.check_target(target_conductance, clip)
        p = self.params
        self.relax_z = self._randn()
        if not verify:
            g = (target + self.programming_sigma(target, 1.0) * self._randn()).clamp_min(1e-30)
            # a device cannot leave the range its gap can reach: [G(gap_max), G(gap_min)]
            self.gap = gap_for_conductance(self._gp, g, p.v_read, self.i0_scale).clamp(p.gap_min, p.gap_max)
            pulses = (self.stuck == STUCK_NONE).long()
            return self._result(self.conductance(), target, pulses, None)

        tol, max_pulses = self._check_verify_args(tolerance, max_pulses)
        pulses = torch.zeros(self.shape, dtype=torch.long, device=self.device)
        zeros = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        i_cc = zeros + p.verify_i_start / p.verify_i_factor  # compliance of the next SET / factor
        v_res = zeros  # last RESET amplitude (<= 0), 0 after a SET
        last_set = torch.zeros(self.shape, dtype=torch.bool, device=self.device)
        healthy = self.stuck == STUCK_NONE
        sigma_verify = p.read_noise * self.g_max / math.sqrt(p.verify_reads)
        band = max(tol - p.verify_margin * sigma_verify, 0.5 * tol)
        for _ in range(max_pulses):
            g_meas = gap_conductance(self._gp, self.gap, p.v_read, self.i0_scale) + sigma_verify * self._randn()
            low = healthy & (g_meas < target - band)
            high = healthy & (g_meas > target + band)
            if not bool((low | high).any()):
                break
            restart = low & ~last_set
            i_cc = torch.where(restart, (0.85 * i_cc).clamp_min(p.verify_i_start / p.verify_i_factor), i_cc)
            i_cc = torch.where(low, (i_cc * p.verify_i_factor).clamp_max(p.verify_i_max), i_cc)
            v_res = torch.where(high, torch.where(v_res < 0, (v_res - p.verify_v_step).clamp_min(-p.verify_v_max),
                                                  zeros + p.verify_v_reset_start), zeros)
            voltage = torch.where(low, zeros + p.v_set, v_res)
            self._pulse(voltage, p.t_pulse, i_cc)
            last_set = torch.where(low | high, low, last_set)
            pulses += (low | high).long()
        return self._result(self.conductance(), target, pulses, tol)
