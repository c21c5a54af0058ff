r"""Phase-change memory (PCM): IBM statistical model with a cumulative-SET pulse model.

Physics
-------
A PCM cell stores its state as the size of an amorphous plug over the heater of a
mushroom cell. A RESET pulse melts the plug and quenches it into the amorphous (low-G)
phase; moderate SET pulses crystallise it step by step (partial crystallisation), so the
conductance rises cumulatively and saturates at the fully crystalline state. The amorphous
phase relaxes structurally after programming, so the conductance drifts down as a power
law, and it shows 1/f read noise.

All quantities are SI: conductance G in S, time t in s, voltage V in V. ``g = G/g_max`` is
the normalised conductance.

1. Programming noise (single-shot :meth:`PCM.program`). Nandakumar et al., ICECS 2019
   and Joshi et al., Nat. Commun. 11, 2473 (2020), as implemented in IBM aihwkit
   ``PCMLikeNoiseModel``::

       G_prog = k_d * G_T + sigma_prog(G_T) * N(0, 1),        G_prog clipped to >= 0
       sigma_prog = (c0 + c1 x + c2 x^2) * s,  sigma_prog floored at 0

   * ``prog_fit_normalised = True`` (aihwkit): ``x = G_T/g_max``, ``s = g_max/prog_g_ref``
     with ``(c0, c1, c2) = (0.26348, 1.9650, -1.1731) uS`` and ``prog_g_ref = 25 uS``
     (about 1.06 uS at g = 1).
   * ``prog_fit_normalised = False`` (Sandia CrossSim ``PCM_Joshi``, quadratic fit to
     Fig. 3(b) of Joshi 2020): ``x = G_T`` in S, ``s = 1``, with
     ``c0 = 0.28638599 uS``, ``c1 = 0.07585724`` (dimensionless) and
     ``c2 = -0.00178767 uS^-1 = -1787.67 S^-1``.

   The clip at 0 follows aihwkit (no negative conductance); there is no upper clip, as in
   the published fit. ``k_d`` is the device-to-device factor below (1 in both presets).

2. Drift (aihwkit; t counts from the end of programming, t0 = 20 s is the first read of
   the fit)::

       G_drift(t) = G_prog * ((t + t0)/t0)^(-nu)        (no drift at t = 0)
       nu ~ |N(mu_nu(g_T), sigma_nu(g_T))|, drawn once per device at programming
       mu_nu(g)    = clip(-0.0155 ln g + 0.0244, 0.049, 0.1)
       sigma_nu(g) = clip(-0.0125 ln g - 0.0059, 0.008, 0.045),   g clipped to >= 1e-7

   ``nu`` is indexed by the target level for :meth:`PCM.program` (as aihwkit) and by the
   reached conductance after :meth:`PCM.apply_pulses`; it is stored (``drift_exponent``),
   so ``G_drift(t)`` is a deterministic function of t per device.

3. Accumulated 1/f read noise (aihwkit, t_read = 250 ns), fresh on every read::

       Q_s(g) = min(0.0088 / max(g_prog^0.65, 1e-3), 0.2),      g_prog = G_prog/g_max
       sigma_read = |G_drift| * Q_s * sqrt(max(ln((t + t0 + t_read)/(2 t_read)), 0))
       G_read = max(G_drift + sigma_read * N(0, 1), 0)

   As in aihwkit the noise time is ``t + t0`` (the accumulated 1/f noise since programming
   ended, with the fit's own time origin), so a read at t = 0 already carries
   ``sqrt(ln(20 s / 0.5 us)) = 4.18`` times Q_s. The formula holds for t >> t_read; the
   ``max(., 0)`` only matters if ``t0`` is set below ``t_read`` and then gives zero noise.

4. Global drift compensation (aihwkit ``GlobalDriftCompensation``): right after every
   programming operation the chip stores a calibration read of the whole array (an
   all-ones input); at inference time t it reads the array again and scales every output
   by ``alpha = sum(G_ref)/sum(G_read(t))`` (:func:`global_drift_compensation`). The
   array-wide sums need no per-device knowledge.

5. Device-to-device variation: a per-device multiplicative factor of the effective window,
   ``k_d = exp(d2d_sigma * N(0, 1))`` (lognormal, median 1). It scales the single-shot
   result, the SET step and the saturation conductance. ``d2d_sigma = 0`` in both presets
   because the programming-noise fit already contains all measured variability. Stuck-at
   faults come from :class:`devices.base.CommonParams`.

6. Pulses (:meth:`PCM.apply_pulses`), after the cumulative-SET / abrupt-RESET picture of
   Nandakumar et al., "A phase-change memory model for neuromorphic computing",
   J. Appl. Phys. 124, 152135 (2018)::

       SET:   x = clip((G - g_min)/(G_sat - g_min), 0, 1),   G_sat = g_sat_ratio * g_max * k_d
              dG = set_dg0 * k_d * (1 - x)^set_exponent * (1 + c2c_sigma * N(0, 1))
              G <- clip(G + dG, 0, g_sat_ratio * g_max)
       RESET: G <- max(g_min * (1 + reset_sigma * N(0, 1)), 0)   (any previous state)

   The step is stochastic and can be negative, as measured. The fully crystalline state
   ``G_sat`` lies slightly above the programmable window (``g_sat_ratio = 1.05``), so
   ``g_max`` is reachable by pulses; G is clipped to ``[0, g_sat_ratio * g_max]``.
   Typical literature values (not a fit of one paper): ``set_dg0 = 1.5 uS`` per 50-ns SET
   pulse from the RESET state, linear saturation (``set_exponent = 1``), about 50 pulses
   from RESET to g_max; ``c2c_sigma = 0.6`` is the relative cycle-to-cycle step noise of
   aihwkit's ``PCMPresetDevice`` (Nandakumar et al., Front. Neurosci. 14, 406 (2020));
   ``reset_sigma = 0.1``. Pulses are treated as applied in a time short compared with t0:
   ``t`` of a later read counts from the last programming call for the whole array.

7. Write-verify (:meth:`PCM.program` with ``verify=True``), the IBM iterative scheme: one
   RESET, then SET pulses with a verify read after each pulse; an overshoot
   (``G_read > G_T + band``) triggers a RESET and a restart. The verify read has a relative
   Gaussian noise ``verify_read_noise`` (an averaged verify read, 0.2 %), and a read is
   accepted when ``|G_read - G_T| <= band = max(tol - verify_margin * sigma_verify, 0)``:
   a guard band of ``verify_margin = 3`` read-noise sigmas keeps the true conductance inside
   ``tol`` (``verify_margin = 0`` gives the plain ``|G_read - G_T| <= tol`` test).

8. I-V (:meth:`PCM.current`). Sub-threshold conduction of amorphous GST is Poole-Frenkel
   like, ``I ~ sinh(V/V0)`` (Ielmini & Zhang, J. Appl. Phys. 102, 054517 (2007); V0 = 0.3 V
   is a typical value of that work), while crystalline GST is ohmic. With the amorphous
   fraction ``f_a = clip(1 - (G - g_min)/(g_max - g_min), 0, 1)`` of the drift-free state::

       h(V) = (1 - f_a) V + f_a V0 sinh(V/V0)
       I(V) = G * h(V) * v_read / h(v_read)          so that I(v_read) = G v_read exactly.

   The RESET state (G = g_min) is a poor conductor but not an insulator: g_min = 0.1 uS
   in the Joshi preset (CrossSim's suggested window, 0.25-25 uS, in the other).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .validation import check_rate, check_scalar
from .base import STUCK_NONE, CommonParams, Device, ProgramResult

Tensor = torch.Tensor

_NU_G_FLOOR = 1e-7      # aihwkit's floor of g in the ln of the drift fit
_QS_DENOM_FLOOR = 1e-3  # aihwkit's floor of g^0.65 in the read-noise fit


@dataclass(frozen=True)
class PCMParams(CommonParams):
    """Parameters of :class:`PCM` (SI units; see the module docstring for the equations).

    Attributes:
        g_min, g_max, v_read, p_stuck_on, p_stuck_off: see :class:`devices.base.CommonParams`.
        prog_c0, prog_c1, prog_c2: programming-noise polynomial ``sigma = c0 + c1 x + c2 x^2``.
            c0 in S; with ``prog_fit_normalised`` c1, c2 in S too, else c1 dimensionless and
            c2 in 1/S.
        prog_fit_normalised: True: ``x = G_T/g_max`` and sigma is scaled by
            ``g_max/prog_g_ref`` (aihwkit); False: ``x = G_T`` in S, unscaled (CrossSim).
        prog_g_ref: g_max (S) at which the normalised polynomial was fitted.
        t0: time (s) of the first read of the drift fit, after the end of programming.
        nu_mu_slope, nu_mu_offset, nu_mu_min, nu_mu_max: ``mu_nu = clip(slope ln g + offset, min, max)``.
        nu_sigma_slope, nu_sigma_offset, nu_sigma_min, nu_sigma_max: same for ``sigma_nu``.
        t_read: read integration time (s) of the 1/f noise fit.
        read_q_coeff, read_q_exponent, read_q_max: ``Q_s = min(coeff / g^exponent, max)``.
        d2d_sigma: lognormal sigma of the per-device window factor ``k_d``.
        set_dg0: mean SET step (S) from the RESET state.
        set_exponent: saturation exponent p of the SET step ``(1 - x)^p``.
        c2c_sigma: relative cycle-to-cycle sigma of a SET step.
        g_sat_ratio: fully crystalline conductance and upper clip, in units of g_max.
        reset_sigma: relative sigma of the RESET level around g_min.
        verify_read_noise: relative sigma of a write-verify read.
        verify_margin: write-verify guard band in verify-read sigmas.
        v0: Poole-Frenkel voltage scale (V) of the amorphous I-V.
    """

    g_min: float = 0.1e-6
    g_max: float = 25e-6
    v_read: float = 0.2
    prog_c0: float = 0.26348e-6
    prog_c1: float = 1.9650e-6
    prog_c2: float = -1.1731e-6
    prog_fit_normalised: bool = True
    prog_g_ref: float = 25e-6
    t0: float = 20.0
    nu_mu_slope: float = -0.0155
    nu_mu_offset: float = 0.0244
    nu_mu_min: float = 0.049
    nu_mu_max: float = 0.1
    nu_sigma_slope: float = -0.0125
    nu_sigma_offset: float = -0.0059
    nu_sigma_min: float = 0.008
    nu_sigma_max: float = 0.045
    t_read: float = 250e-9
    read_q_coeff: float = 0.0088
    read_q_exponent: float = 0.65
    read_q_max: float = 0.2
    d2d_sigma: float = 0.0
    set_dg0: float = 1.5e-6
    set_exponent: float = 1.0
    c2c_sigma: float = 0.6
    g_sat_ratio: float = 1.05
    reset_sigma: float = 0.1
    verify_read_noise: float = 0.002
    verify_margin: float = 3.0
    v0: float = 0.3

    def validate(self) -> None:
        super().validate()
        for name in ("prog_c0", "prog_c1", "prog_c2", "nu_mu_slope", "nu_mu_offset",
                     "nu_sigma_slope", "nu_sigma_offset"):
            check_scalar(name, getattr(self, name))
        if not isinstance(self.prog_fit_normalised, (bool, int)) or self.prog_fit_normalised not in (0, 1):
            raise ValueError(f"prog_fit_normalised must be a bool (True or False), got {self.prog_fit_normalised!r}")
        check_scalar("prog_g_ref", self.prog_g_ref, low=0.0, low_open=True)
        check_scalar("t0", self.t0, low=0.0, low_open=True)
        check_scalar("t_read", self.t_read, low=0.0, low_open=True)
        for lo, hi in (("nu_mu_min", "nu_mu_max"), ("nu_sigma_min", "nu_sigma_max")):
            check_scalar(lo, getattr(self, lo), low=0.0, high=1.0)
            check_scalar(hi, getattr(self, hi), low=getattr(self, lo), high=1.0)
        check_scalar("read_q_coeff", self.read_q_coeff, low=0.0, high=1.0)
        check_scalar("read_q_exponent", self.read_q_exponent, low=0.0, high=5.0)
        check_scalar("read_q_max", self.read_q_max, low=0.0, high=1.0)
        check_scalar("d2d_sigma", self.d2d_sigma, low=0.0, high=1.0)
        check_scalar("set_dg0", self.set_dg0, low=0.0, high=self.g_max, low_open=True)
        check_scalar("set_exponent", self.set_exponent, low=0.0, high=10.0)
        check_scalar("c2c_sigma", self.c2c_sigma, low=0.0, high=5.0)
        check_scalar("g_sat_ratio", self.g_sat_ratio, low=1.0, high=2.0)
        check_rate("reset_sigma", self.reset_sigma)
        check_scalar("verify_read_noise", self.verify_read_noise, low=0.0, high=0.5)
        check_scalar("verify_margin", self.verify_margin, low=0.0, high=10.0)
        check_scalar("v0", self.v0, low=0.0, high=10.0, low_open=True)


def global_drift_compensation(g_reference, g_read) -> float:
    """Global drift-compensation factor ``alpha = sum(g_reference) / sum(g_read)``.

    ``g_reference`` is a calibration read (S) of the array taken right after programming
    and ``g_read`` the same read at inference time; multiplying the later outputs by
    ``alpha`` undoes the array-average drift (aihwkit ``GlobalDriftCompensation``).
    """
    ref = torch.as_tensor(g_reference, dtype=torch.float64)
    cur = torch.as_tensor(g_read, dtype=torch.float64)
    if ref.shape != cur.shape:
        raise ValueError(f"g_reference and g_read must have the same shape, got {tuple(ref.shape)} "
                         f"and {tuple(cur.shape)}")
    for name, x in (("g_reference", ref), ("g_read", cur)):
        if not bool(torch.isfinite(x).all()) or bool((x < 0).any()):
            raise ValueError(f"{name} must be finite conductances >= 0 S")
    s_read = float(cur.sum())
    if not s_read > 0.0:
        raise ValueError("g_read must have a positive sum (got sum 0 S)")
    return float(ref.sum()) / s_read


class PCM(Device):
    """Array of PCM devices (see the module docstring for the model and its sources).

    Presets:
        ``"joshi2020_pcm"`` (default): IBM statistical model of Nandakumar et al., ICECS 2019
        and Joshi et al., Nat. Commun. 11, 2473 (2020) as in aihwkit ``PCMLikeNoiseModel``;
        window 0.1-25 uS. ``"crosssim_pcm_joshi"``: CrossSim's quadratic fit to Fig. 3(b) of
        Joshi 2020 for the programming noise, window 0.25-25 uS (CrossSim models no drift;
        the IBM drift and read-noise fits of the same devices are kept). Pulse, verify and
        I-V fields in both are typical literature values (module docstring, items 6-8).

    Attributes:
        d2d_factor: per-device window factor ``k_d`` (drawn at construction).
        drift_exponent: per-device drift exponent ``nu`` of the present programmed state.
    """

    family: ClassVar[str] = "pcm"
    params_type: ClassVar[type] = PCMParams
    presets: ClassVar[dict] = {
        "joshi2020_pcm": PCMParams(),
        "crosssim_pcm_joshi": PCMParams(
            g_min=0.25e-6, g_max=25e-6, prog_fit_normalised=False,
            prog_c0=0.28638599e-6, prog_c1=0.07585724, prog_c2=-0.00178767e6,
        ),
    }
    default_preset: ClassVar[str] = "joshi2020_pcm"

    # ------------------------------------------------------------------ state
    def _init_variation(self) -> None:
        self.d2d_factor = torch.exp(self.params.d2d_sigma * self._randn())

    def _init_state(self) -> None:
        # As-fabricated PCM is crystalline (the back-end thermal budget anneals the GST).
        self._g = (self.g_max * self.d2d_factor).clamp(0.0, self.params.g_sat_ratio * self.g_max)
        self._nu = self._draw_nu(self._g)
        self._calibrate()

    @property
    def drift_exponent(self) -> Tensor:
        """Per-device drift exponent nu (dimensionless) of the present programmed state."""
        return self._nu.clone()

    def conductance(self) -> Tensor:
        return self._apply_faults(self._g.clone())

    # ------------------------------------------------------------------ statistical fits
    def programming_sigma(self, target_conductance) -> Tensor:
        """sigma_prog (S) of single-shot programming at ``target_conductance`` (S)."""
        p = self.params
        g_t = torch.as_tensor(target_conductance, dtype=self.dtype, device=self.device)
        if p.prog_fit_normalised:
            x = g_t / self.g_max
            sig = (p.prog_c0 + p.prog_c1 * x + p.prog_c2 * x * x) * (self.g_max / p.prog_g_ref)
        else:
            sig = p.prog_c0 + p.prog_c1 * g_t + p.prog_c2 * g_t * g_t
        return sig.clamp(min=0.0)

    def drift_statistics(self, g_normalised) -> tuple[Tensor, Tensor]:
        """``(mu_nu, sigma_nu)`` of the drift-exponent fit at normalised conductance g."""
        p = self.params
        g = torch.as_tensor(g_normalised, dtype=self.dtype, device=self.device)
        ln_g = torch.log(g.abs().clamp(min=_NU_G_FLOOR))
        mu = (p.nu_mu_slope * ln_g + p.nu_mu_offset).clamp(p.nu_mu_min, p.nu_mu_max)
        sig = (p.nu_sigma_slope * ln_g + p.nu_sigma_offset).clamp(p.nu_sigma_min, p.nu_sigma_max)
        return mu, sig

    def _draw_nu(self, g: Tensor) -> Tensor:
        mu, sig = self.drift_statistics(g / self.g_max)
        return (mu + sig * self._randn()).abs()

    def drifted_conductance(self, t: float = 0.0) -> Tensor:
        """Noise-free conductance (S) at ``t`` s after programming: ``G_prog ((t+t0)/t0)^-nu``."""
        t = self._check_time(t)
        t0 = self.params.t0
        g = self._g * torch.pow(torch.as_tensor((t + t0) / t0, dtype=self.dtype, device=self.device), -self._nu)
        return self._apply_faults(g)

    def read_noise_sigma(self, t: float = 0.0) -> Tensor:
        """sigma_read (S) of the accumulated 1/f noise of a read at ``t`` s (before the clip at 0)."""
        t = self._check_time(t)
        return self._read_sigma(self._drift(t), t)

    def _drift(self, t: float) -> Tensor:
        t0 = self.params.t0
        return self._g * torch.pow(torch.as_tensor((t + t0) / t0, dtype=self.dtype, device=self.device), -self._nu)

    def _read_sigma(self, g_drift: Tensor, t: float) -> Tensor:
        p = self.params
        g_prog = (self._g / self.g_max).abs()
        q_s = (p.read_q_coeff / (g_prog ** p.read_q_exponent).clamp(min=_QS_DENOM_FLOOR)).clamp(max=p.read_q_max)
        log_term = max(math.log((t + p.t0 + p.t_read) / (2.0 * p.t_read)), 0.0)
        return g_drift.abs() * q_s * math.sqrt(log_term)

    def _noisy_read(self, t: float) -> Tensor:
        g_d = self._drift(t)
        g = (g_d + self._read_sigma(g_d, t) * self._randn()).clamp(min=0.0)
        return self._apply_faults(g)

    def _calibrate(self) -> None:
        """Calibration read of the whole array right after programming (drift compensation)."""
        self._reference_read = self._noisy_read(0.0)

    # ------------------------------------------------------------------ read / I-V
    def read(self, t: float = 0.0, compensate: bool = False) -> Tensor:
        """Conductance (S) read ``t`` s after programming: drift plus fresh 1/f read noise.

        With ``compensate=True`` the result is multiplied by the global drift-compensation
        factor estimated from the stored post-programming calibration read and a fresh
        calibration read of the array at ``t`` (:func:`global_drift_compensation`); if that
        read sums to 0 S (every device read as 0) no factor can be formed and alpha = 1.
        """
        t = self._check_time(t)
        g = self._noisy_read(t)
        if compensate:
            cal = self._noisy_read(t)
            if float(cal.sum()) > 0.0:  # an all-zero calibration read carries no scale: alpha = 1
                g = g * global_drift_compensation(self._reference_read, cal)
        return g

    def current(self, voltage) -> Tensor:
        """Current (A) of the drift-free state at ``voltage`` (V); differentiable in voltage.

        ``voltage`` broadcasts against the array shape; leading batch dimensions are allowed.
        """
        v = voltage if isinstance(voltage, Tensor) else torch.as_tensor(voltage, dtype=self.dtype)
        v = v.to(dtype=self.dtype, device=self.device)
        if not bool(torch.isfinite(v.detach()).all()):
            raise ValueError("voltage must be finite (no NaN/inf)")
        n = len(self.shape)
        try:
            out = torch.broadcast_shapes(tuple(v.shape), self.shape)
        except RuntimeError as exc:
            raise ValueError(f"voltage has shape {tuple(v.shape)}, which does not broadcast to the device "
                             f"array shape {self.shape} (optionally with leading batch dimensions)") from exc
        if tuple(out[len(out) - n:]) != self.shape:
            raise ValueError(f"voltage of shape {tuple(v.shape)} would change the array shape {self.shape}")
        v = v.expand(out)
        p = self.params
        g = self._g
        f_a = (1.0 - (g - self.g_min) / (self.g_max - self.g_min)).clamp(0.0, 1.0)
        h = (1.0 - f_a) * v + f_a * p.v0 * torch.sinh(v / p.v0)
        h_read = (1.0 - f_a) * p.v_read + f_a * p.v0 * math.sinh(p.v_read / p.v0)
        i = g * h * (p.v_read / h_read)
        return self._apply_faults_current(v, i)

    # ------------------------------------------------------------------ pulses
    def _set_step(self, g: Tensor) -> Tensor:
        p = self.params
        g_sat = p.g_sat_ratio * self.g_max * self.d2d_factor
        x = ((g - self.g_min) / (g_sat - self.g_min)).clamp(0.0, 1.0)
        mean = p.set_dg0 * self.d2d_factor * (1.0 - x) ** p.set_exponent
        dg = mean * (1.0 + p.c2c_sigma * self._randn())
        return (g + dg).clamp(0.0, p.g_sat_ratio * self.g_max)

    def _reset_level(self) -> Tensor:
        return (self.g_min * (1.0 + self.params.reset_sigma * self._randn())).clamp(min=0.0)

    def apply_pulses(self, pulses, **pulse) -> Tensor:
        """Apply signed pulse counts: ``n > 0`` SET pulses, ``n < 0`` RESET pulses; return G (S).

        The pulse shape is fixed by the parameters (``set_dg0``, ``set_exponent``,
        ``c2c_sigma``, ``reset_sigma``), so no pulse overrides are accepted. Pulsed devices get
        a new drift exponent for their new state; stuck devices ignore pulses.
        """
        if pulse:
            raise ValueError(f"PCM.apply_pulses accepts no pulse overrides (the pulse is fixed by the "
                             f"parameters set_dg0, set_exponent, c2c_sigma, reset_sigma); got {sorted(pulse)}")
        n = self._pulse_counts(pulses)
        free = self.stuck == STUCK_NONE
        g = self._g.clone()
        n_max = int(n.abs().max()) if n.numel() else 0
        for k in range(n_max):
            set_mask = free & (n > k)
            reset_mask = free & (-n > k)
            if bool(set_mask.any()):
                g = torch.where(set_mask, self._set_step(g), g)
            if bool(reset_mask.any()):
                g = torch.where(reset_mask, self._reset_level(), g)
        pulsed = free & (n != 0)
        if bool(pulsed.any()):
            self._g = g
            self._nu = torch.where(pulsed, self._draw_nu(g), self._nu)
            self._calibrate()
        return self.conductance()

    # ------------------------------------------------------------------ programming
    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Program every device to ``target_conductance`` (S).

        Without verify: one programming event with the published error statistics
        (``pulses`` = 1). With ``verify=True``: RESET then SET pulses with verify reads,
        RESET-and-restart on overshoot, until ``|G_read - G_T| <= band`` or ``max_pulses``
        pulses (the RESET pulses included); ``tolerance`` (S) defaults to 1 % of the window.
        """
        target = self.check_target(target_conductance, clip)
        if verify:
            tol, max_pulses = self._check_verify_args(tolerance, max_pulses)
            g, pulses = self._write_verify(target, tol, max_pulses)
        else:
            if tolerance is not None:
                self._check_verify_args(tolerance, max_pulses)
            tol = None
            g = (self.d2d_factor * target + self.programming_sigma(target) * self._randn()).clamp(min=0.0)
            pulses = torch.ones(self.shape, dtype=torch.int64, device=self.device)
        free = self.stuck == STUCK_NONE
        self._g = torch.where(free, g, self._g)
        self._nu = self._draw_nu(target)
        self._calibrate()
        return self._result(self._g.clone(), target, pulses, tol)

    def _write_verify(self, target: Tensor, tol: float, max_pulses: int) -> tuple[Tensor, Tensor]:
        p = self.params
        free = self.stuck == STUCK_NONE
        g = torch.where(free, self._reset_level(), self._g)
        pulses = torch.ones(self.shape, dtype=torch.int64, device=self.device)
        active = torch.ones(self.shape, dtype=torch.bool, device=self.device)
        while True:
            g_f = self._apply_faults(g)
            meas = g_f * (1.0 + p.verify_read_noise * self._randn())
            band = (tol - p.verify_margin * p.verify_read_noise * meas.abs()).clamp(min=0.0)
            err = meas - target
            active = active & (err.abs() > band) & (pulses < max_pulses)
            if not bool(active.any()):
                break
            over = active & free & (err > band)
            under = active & free & (err < -band)
            if bool(over.any()):
                g = torch.where(over, self._reset_level(), g)
            if bool(under.any()):
                g = torch.where(under, self._set_step(g), g)
            pulses = pulses + active.long()
        return g, pulses
