"""Filamentary metal-oxide RRAM: Stanford–PKU gap dynamics + measured programming statistics.

Two layers, as device researchers use them:

* **Physics** (:mod:`devices.rram_physics`): the tunnelling-gap compact model gives the
  nonlinear I-V ``I = I0·exp(-g/g0)·sinh(V/V0)``, SET/RESET dynamics with Joule heating
  (each preset with the rate law of its own parameter set), and therefore the pulse response
  (nonlinear, asymmetric potentiation/depression) and the pulse-level write-verify loop.
* **Statistics** (Wan et al., "A compute-in-memory chip based on resistive random-access
  memory", Nature 608, 504 (2022)): the conductance spread of programmed devices one second
  after their write-verify, ``σ_prog(G) = 1 µS · Σ_k c_k (G/G_ref)^k``, in two independent
  digitisations of the same figures (presets ``wan2022_neurram``: aihwkit; ``wan2022_crosssim``:
  CrossSim; :mod:`devices.rram_params`). ``program(target)`` (no verify) draws
  ``G = target + σ_prog(target)·N(0, 1)``: the published outcome of the chip's own programming,
  so it is the default. ``program(..., verify=True)`` instead runs an explicit write-verify
  loop on the gap model (below).

Retention / relaxation. The spread grows with time after programming. aihwkit's Wan fits give
σ at 1 s, 1 day and 2 days; at some conductances the 2-day fit lies *below* the 1-day one (at
10 µS: 3.72 µS → 3.66 µS), which read literally would pull devices back toward their targets.
A spread cannot shrink, so the model uses the running maximum (monotone envelope) of the fits::

    e(1 s) = σ_1s,   e(1 d) = max(σ_1s, σ_1d),   e(2 d) = max(e(1 d), σ_2d)

interpolated linearly in log10(t) between the nodes (it differs from the fits by ≤ 0.06 µS).
Each device carries a standard normal ``z`` drawn when it is programmed, and at ``t`` seconds
after programming::

    G(t) = G_prog + z · sqrt(e(t)² − e(1 s)²)          (per device, deterministic in t)

so ``|G(t) − G_prog|`` never decreases. Beyond 2 days there is no data;
``retention_beyond_data`` chooses (and a study's results record the choice): ``"refuse"``
(default, as aihwkit: ``ValueError``), ``"hold"`` (e(t) = e(2 d): no further relaxation) or
``"extend"`` (the variance keeps growing linearly in log10(t) at the mean rate of the data,
``e(t)² = e(2 d)² + k·log10(t/2 d)``, ``k = (e(2 d)² − e(1 s)²)/log10(2 d/1 s)``).

Write-verify (``program(verify=True)``; NeuRRAM-style incremental SET/RESET). Every
iteration averages ``verify_reads`` noisy reads of each unfinished device (σ_verify =
``read_noise·g_max/sqrt(verify_reads)``) and applies one pulse: a SET at ``v_set`` under a
current compliance that grows by ``verify_i_factor`` per consecutive SET, or a gradual RESET
whose amplitude grows by ``verify_v_step`` per consecutive RESET. After a SET overshoot the
next SET ladder restarts below the compliance that overshot; after a RESET undershoot the
RESET ladder restarts at ``verify_v_reset_start``. A device is accepted when its averaged read
lies within ``band = max(tolerance − verify_margin·σ_verify, tolerance/2)`` of the target.
Guarantees (tested over 10⁴ devices): (1) a device stops only when accepted or out of budget;
(2) an accepted device's true conductance is within ``tolerance`` unless a verify read was
wrong by more than ``verify_margin`` σ_verify (the guard band); (3) a device never ends
further from the target than it started: the loop remembers the best verified state's error
and, when the budget runs out, reports ``converged=False`` (``result.pulses`` counts every
pulse). ``tolerance`` defaults to 1 % of ``g_max − g_min``.

Variation and noise: device-to-device (D2D) spread of the current prefactor ``I0`` (lognormal,
``d2d_sigma``: a device's conductance at a given gap) and of the gap velocity prefactor
(lognormal, ``d2d_rate_sigma``: some devices switch faster); cycle-to-cycle (C2C) lognormal
factor on every pulse's gap change (``c2c_sigma``); read noise is Gaussian with σ = ``read_noise·g_max``
on every read (aihwkit's recommendation for Wan's chip: about 1 % of G_max). Stuck-at rates
default to 0; Chen et al. (IEEE Trans. Comput. 64, 180 (2015)) measured about 1.75 % SA0 and
9.04 % SA1 on a test chip, use ``RRAM(..., p_stuck_off=0.0175, p_stuck_on=0.0904)``.
"""
from __future__ import annotations

import math

import torch

from .base import STUCK_NONE, Device, ProgramResult, Tensor
from .rram_params import PRESETS, PROVENANCE, RRAMParams
from .rram_physics import gap_conductance, gap_current, gap_for_conductance, integrate_gap
from .validation import check_real

__all__ = ["RRAM", "RRAMParams", "SECONDS_PER_DAY"]

SECONDS_PER_DAY = 86400.0
_L1D, _L2D = math.log10(SECONDS_PER_DAY), math.log10(2 * SECONDS_PER_DAY)


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
    provenance = PROVENANCE
    default_preset = "wan2022_neurram"
    iv_voltage_limit = 10.0  # V: a low-field tunnelling law; a nm-thin oxide breaks down long before
    slot_seconds = 3e-2

    # ---------------------------------------------------------------- construction
    def _init_variation(self) -> None:
        p = self.params
        self.i0_scale = torch.exp(p.d2d_sigma * self._randn())
        self.rate_scale = torch.exp(p.d2d_rate_sigma * self._randn())
        self._gp = p.gap_params()

    def _init_state(self) -> None:
        # As fabricated (after forming and a RESET): the high-resistance end of the window.
        self.gap = gap_for_conductance(self._gp, self._full(self.g_min), self.params.v_read, self.i0_scale)
        self.gap = self.gap.clamp(self.params.gap_min, self.params.gap_max)
        self.relax_z = torch.zeros(self.shape, dtype=self.dtype, device=self.device)

    # ---------------------------------------------------------------- statistics
    def retention_data_limit(self) -> float:
        """Wan et al. (2022) measured the spread up to 2 days (s)."""
        return 2 * SECONDS_PER_DAY

    def _fit_sigmas(self, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p = self.params
        x = g / p.prog_g_ref
        s1, sd, s2 = (_poly(c, x).clamp_min(0.0) * 1e-6 for c in (p.relax_sigma_1s, p.prog_sigma_1d, p.prog_sigma_2d))
        e_d = torch.maximum(s1, sd)
        return s1, e_d, torch.maximum(e_d, s2)

    def relaxation_variance(self, g, t: float) -> Tensor:
        """Variance (S²) added to the 1 s spread by relaxation until ``t`` s (module docstring);
        non-decreasing in ``t``."""
        t = self._check_read_time(t)
        g = torch.as_tensor(g, dtype=self.dtype, device=self.device)
        if t <= 1.0:
            return torch.zeros_like(g)
        e1, e_d, e_2 = self._fit_sigmas(g)
        lt = math.log10(t)
        if lt <= _L1D:
            e = e1 + (e_d - e1) * (lt / _L1D)
        elif lt <= _L2D:
            e = e_d + (e_2 - e_d) * ((lt - _L1D) / (_L2D - _L1D))
        elif self.params.retention_beyond_data == "extend":
            k = (e_2 ** 2 - e1 ** 2) / _L2D
            return e_2 ** 2 + k * (lt - _L2D) - e1 ** 2
        else:
            e = e_2
        return e ** 2 - e1 ** 2

    def programming_sigma(self, g, t: float = 1.0) -> Tensor:
        """σ (S) of programmed conductances around their target ``g`` (S) at ``t`` s: the preset's
        1 s programming spread plus the relaxation variance (module docstring)."""
        g = torch.as_tensor(g, dtype=self.dtype, device=self.device)
        s_prog = _poly(self.params.prog_sigma_1s, g / self.params.prog_g_ref).clamp_min(0.0) * 1e-6
        return (s_prog ** 2 + self.relaxation_variance(g, max(float(t), 0.0))).sqrt()

    # ---------------------------------------------------------------- reading
    def _g_gap(self) -> Tensor:
        return gap_conductance(self._gp, self.gap, self.params.v_read, self.i0_scale)

    def conductance(self) -> Tensor:
        return self._apply_faults(self._g_gap())

    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Noise-free conductance (S) ``t`` s after programming: as programmed plus the
        device's relaxation draw (module docstring)."""
        t = self._check_read_time(t)
        g0 = self._g_gap()
        if t > 1.0:
            g0 = (g0 + self.relax_z * self.relaxation_variance(g0, t).clamp_min(0.0).sqrt()).clamp_min(0.0)
        return self._apply_faults(g0)

    def read(self, t: float = 0.0) -> Tensor:
        t = self._check_read_time(t)
        g = self.conductance_at(t)
        g = (g + self.params.read_noise * self.g_max * self._randn()).clamp_min(0.0)
        return self._apply_faults(g)

    def current(self, voltage) -> Tensor:
        """Current (A) at ``voltage`` (V, finite, |V| ≤ 10 V): the sinh I-V of the present gap."""
        v = self._voltage(voltage)
        i = gap_current(self._gp, self.gap, v, self.i0_scale)
        return self._apply_faults_current(v, i)

    def _iv_at(self, t: float):
        p, i0_scale = self._gp, self.i0_scale.clone()
        gap = gap_for_conductance(p, self.conductance_at(t).clamp_min(1e-30), self.params.v_read, i0_scale)
        stuck = self.stuck.clone()
        g_max, g_min = self.g_max, self.g_min

        def iv(v):
            i = gap_current(p, gap, v, i0_scale)
            s = stuck.expand(v.shape) if v.dim() > stuck.dim() else stuck
            return torch.where(s == 1, v * g_max, torch.where(s == -1, v * g_min, i))
        return iv

    # ---------------------------------------------------------------- writing
    def _pulse(self, voltage: Tensor, width: float, i_compliance: Tensor | float | None) -> None:
        """One pulse of per-device amplitude ``voltage`` (0 = not addressed) on all devices."""
        c2c = torch.exp(self.params.c2c_sigma * self._randn())
        new_gap = integrate_gap(self._gp, self.gap, voltage, width, max_gap_step=self.params.max_gap_step,
                                i0_scale=self.i0_scale, rate_scale=self.rate_scale, step_scale=c2c,
                                i_compliance=i_compliance)
        self.gap = torch.where((self.stuck == STUCK_NONE) & (voltage != 0), new_gap, self.gap)

    def apply_pulses(self, pulses, *, amplitude=None, width: float | None = None,
                     i_compliance: float | None = None, max_steps: int | None = None) -> Tensor:
        """Apply signed pulse counts: ``n > 0`` SET pulses at ``+amplitude`` (default ``v_set``)
        under the current compliance ``i_compliance`` (A, default the preset's; the 1T1R access
        transistor), ``n < 0`` RESET pulses at ``-|amplitude|`` (default ``v_reset``), each
        ``width`` s long (0 < width ≤ 1 s).

        ``amplitude`` may also be a per-device tensor of *signed* voltages (V, broadcastable to
        the array shape): device ``d`` then receives ``|n[d]|`` pulses of exactly
        ``amplitude[d]`` volts (positive = SET polarity, negative = RESET, 0 = no effect), e.g.
        the voltage each cell of a crossbar actually sees during a V/2 write. The sign of
        ``pulses`` must then agree with the sign of ``amplitude`` wherever both are nonzero.
        A Python number or a 0-d tensor keeps the scalar meaning above. At most ``max_steps``
        (default 10 000) pulse slots per call.

        SET is abrupt (thermal runaway, stopped by the compliance) and RESET gradual — the
        asymmetry of filamentary oxide RRAM. Returns the noise-free conductance (S).
        """
        n = self._pulse_counts(pulses, max_steps)
        p = self.params
        width = p.t_pulse if width is None else check_real("width", width, low=0.0, high=1.0, low_open=True)
        icc = p.i_compliance if i_compliance is None else check_real("i_compliance", i_compliance,
                                                                     low=0.0, high=1.0, low_open=True)
        per_device = torch.is_tensor(amplitude) and amplitude.dim() > 0
        if per_device:
            amp = self._tensor("amplitude", amplitude)
            if float(amp.abs().max()) > self.iv_voltage_limit:
                raise ValueError(f"amplitude must lie in [-{self.iv_voltage_limit:g}, {self.iv_voltage_limit:g}] V, "
                                 f"got max |amplitude| = {float(amp.abs().max()):g} V")
            if bool((n * torch.sign(amp) < 0).any()):
                raise ValueError("amplitude (per-device tensor, V) must have the sign of pulses where both are "
                                 "nonzero: positive = SET, negative = RESET")
        elif amplitude is None:
            v_set, v_reset = p.v_set, p.v_reset
        else:
            if torch.is_tensor(amplitude):
                amplitude = amplitude.item() if not amplitude.dtype == torch.bool else amplitude
            a = abs(check_real("amplitude", amplitude, low=0.0, high=self.iv_voltage_limit, low_open=True))
            v_set, v_reset = a, -a
        zero = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        for k in range(max(int(n.max()), -int(n.min())) if n.numel() else 0):
            if per_device:
                voltage = torch.where(n.abs() > k, amp, zero)
            else:
                voltage = torch.where(n > k, zero + v_set, torch.where(n < -k, zero + v_reset, zero))
            self._pulse(voltage, width, icc)
        return self.conductance()

    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Program every device to ``target_conductance`` (S).

        ``verify=False``: the Wan et al. (2022) distribution one second after programming,
        ``G = target + σ_prog(target)·N(0,1)`` (one programming event; ``pulses`` = 1), limited
        to what the device's gap can reach, ``[G(gap_max), G(gap_min)]``.
        ``verify=True``: the write-verify loop of the module docstring (its guarantees are
        listed there); ``tolerance`` (S) defaults to 1 % of ``g_max - g_min``.
        """
        verify, tol, max_pulses = self._program_args(verify, tolerance, max_pulses)
        target = self.check_target(target_conductance, clip)
        p = self.params
        g_before = self.conductance()
        self.relax_z = self._randn()
        if not verify:
            g = (target + self.programming_sigma(target, 1.0) * self._randn()).clamp_min(1e-30)
            new_gap = gap_for_conductance(self._gp, g, p.v_read, self.i0_scale).clamp(p.gap_min, p.gap_max)
            self.gap = torch.where(self.stuck == STUCK_NONE, new_gap, self.gap)
            pulses = (self.stuck == STUCK_NONE).long()
            return self._result(self.conductance(), target, pulses, tol, g_before)
        pulses = self._write_verify(target, tol, max_pulses)
        return self._result(self.conductance(), target, pulses, tol, g_before)

    def verify_statistics(self, tolerance: float) -> tuple[float, float]:
        """``(σ_verify, band)`` (S) of a verify step at ``tolerance`` (S): the loop averages
        ``n = max(verify_reads, ceil((2·verify_margin·σ_read/tolerance)²))`` reads (at most
        1024), so that ``σ_verify = σ_read/sqrt(n)`` and ``band = tolerance − verify_margin·σ_verify
        ≥ tolerance/2``. A tolerance too small for 1024 reads is refused."""
        p = self.params
        tolerance = check_real("tolerance", tolerance, low=0.0, low_open=True)
        sigma_read = p.read_noise * self.g_max
        n = max(p.verify_reads, math.ceil((2.0 * p.verify_margin * sigma_read / tolerance) ** 2))
        if n > 1024:
            t_min = 2.0 * p.verify_margin * sigma_read / 32.0
            raise ValueError(f"tolerance must be >= {t_min:.3g} S to be verifiable with read noise "
                             f"{sigma_read:.3g} S and verify_margin {p.verify_margin:g} (1024 averaged reads), "
                             f"got {tolerance:.3g} S")
        sigma_verify = sigma_read / math.sqrt(n)
        return sigma_verify, tolerance - p.verify_margin * sigma_verify

    def _write_verify(self, target: Tensor, tol: float, max_pulses: int) -> Tensor:
        p = self.params
        zeros = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        pulses = torch.zeros(self.shape, dtype=torch.long, device=self.device)
        i_cc = zeros + p.verify_i_start  # compliance of the last SET (A)
        v_move = zeros + p.verify_v_reset_start + 2 * p.verify_v_step  # RESET amplitude that last moved the device
        v_res = zeros  # amplitude of the present RESET sequence (<= 0)
        last = torch.zeros(self.shape, dtype=torch.long, device=self.device)  # +1 SET, -1 RESET, 0 none
        set_used = torch.zeros(self.shape, dtype=torch.bool, device=self.device)
        g_prev = zeros
        sigma_verify, band = self.verify_statistics(tol)
        progress = max(sigma_verify, 0.25 * band)  # a RESET step smaller than this counts as no progress
        done = self.stuck != STUCK_NONE  # stuck devices are never pulsed
        while True:
            g_meas = self._g_gap() + sigma_verify * self._randn()
            done = done | ((g_meas - target).abs() <= band)  # accepted devices are never pulsed again
            active = ~done & (pulses < max_pulses)
            if not bool(active.any()):
                break
            low = active & (g_meas < target - band)
            high = active & (g_meas > target + band)
            # SET: abrupt, its level set by the compliance; consecutive SETs raise the compliance by
            # verify_i_factor, the first SET of a sequence reuses the last compliance
            again = low & (last > 0)
            i_cc = torch.where(again, (i_cc * p.verify_i_factor).clamp_max(p.verify_i_max), i_cc)
            i_cc = torch.where(low & ~set_used, zeros + p.verify_i_start, i_cc)
            # RESET: gradual; a sequence starts two steps below the amplitude that last moved the
            # device, raises |V| by verify_v_step while a pulse moves it by less than
            # max(sigma_verify, band/4),
            # holds it while it moves, and lowers it when the last step was larger than the
            # remaining error (the next one would overshoot)
            drop = g_prev - g_meas
            cont = high & (last < 0)
            moved = cont & (drop > progress)
            v_move = torch.where(moved, v_res, v_move)
            step = torch.where(cont & (drop <= progress), -p.verify_v_step,
                               torch.where(moved & (drop > g_meas - target), p.verify_v_step, 0.0))
            v_new = torch.where(cont, v_res + step, v_move + 2 * p.verify_v_step)
            v_res = torch.where(high, v_new.clamp(-p.verify_v_max, -1e-3), v_res)
            voltage = torch.where(low, zeros + p.v_set, torch.where(high, v_res, zeros))
            self._pulse(voltage, p.t_pulse, i_cc)
            set_used = set_used | low
            last = torch.where(low, 1, torch.where(high, -1, last))
            g_prev = g_meas
            pulses += active.long()
        return pulses
