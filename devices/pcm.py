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

7. Write-verify (:meth:`PCM.program` with ``verify=True``), the IBM iterative scheme with a
   pulse budget it respects. Every step reads each unfinished device (relative Gaussian noise
   ``verify_read_noise``: an averaged verify read, 0.2 %) and accepts it when
   ``|G_read - G_T| <= band = max(tol - verify_margin * sigma_verify, 0)`` (a guard band of
   ``verify_margin = 3`` read-noise sigmas; 0 gives the plain ``|G_read - G_T| <= tol`` test).
   A device below the band gets a SET pulse; the only way down is a full RESET followed by a
   climb of SET pulses. With ``cycle = 1 + ceil(1.5 n_climb) + 3`` pulses, ``n_climb`` the
   nominal number of SET pulses from the RESET level to G_T (:meth:`PCM.climb_pulses`),
   the loop enforces, per device:

   (1) an accepted device is never pulsed again, and a device that starts within the band is
       not touched (``pulses`` = 0);
   (2) a RESET (and restart) is issued only when at least ``cycle + 2`` pulses are left, so the
       budget always covers the nominal climb back with 50 % margin and the first SET after the
       RESET is always applied: a device is not left near the RESET level by its budget;
   (3) once fewer than ``cycle`` pulses would remain after a SET (no RESET could undo an
       overshoot), a SET is applied only if, on the nominal step statistics, it is expected to
       end closer to the target than the present state; otherwise the device stops.

   ``result.converged`` is per device (true error within ``tol``) and ``result.initial_error``
   the error before the call. Outcome over 10^4 devices (tests/test_pcm.py): a fresh array is
   never left further from the target than it started; when an array is re-programmed, devices
   that start within about one SET step of the target can end further than they started after
   exhausting the budget (<= 0.2 % of devices, by < 1.5 uS): the pulse model cannot make
   corrections smaller than one SET step. Before this budget logic the loop RESET devices it
   could not climb back (rms 1.9 uS at 20 uS, some left at 0.1 uS); now 0.11 uS.

8. I-V (:meth:`PCM.current`). Sub-threshold conduction of amorphous GST is Poole-Frenkel
   like, ``I ~ sinh(V/V0)`` (Ielmini & Zhang, J. Appl. Phys. 102, 054517 (2007); V0 = 0.3 V
   is a typical value of that work), while crystalline GST is ohmic. With the amorphous
   fraction ``f_a = clip(1 - (G - g_min)/(g_max - g_min), 0, 1)`` of the drift-free state::

       h(V) = (1 - f_a) V + f_a V0 sinh(V/V0)
       I(V) = G * h(V) * v_read / h(v_read)          so that I(v_read) = G v_read exactly.

   The RESET state (G = g_min) is a poor conductor but not an insulator: g_min = 0.25 uS
   in both presets (CrossSim's window for Joshi's devices; the clipping bias it implies near
   g_min is documented in :mod:`devices.pcm_params`). The law is evaluated for |V| <= 10 V
   (``ValueError`` beyond): amorphous GST threshold-switches near 1 V, so it is a
   sub-threshold law; the crossbar write paths use it up to a few volts.

Snapshots (:meth:`Device.at_time`): drift is structural relaxation of the amorphous phase, so the
I-V at ``t`` keeps the shape of the programmed state and is scaled to the conductance read at t.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

from .base import STUCK_NONE, Device, ProgramResult
from .pcm_params import PRESETS, PROVENANCE, PCMParams
from .validation import as_tensor, check_bool

__all__ = ["PCM", "PCMParams", "global_drift_compensation"]

Tensor = torch.Tensor

_NU_G_FLOOR = 1e-7      # aihwkit's floor of g in the ln of the drift fit
_QS_DENOM_FLOOR = 1e-3  # aihwkit's floor of g^0.65 in the read-noise fit


def global_drift_compensation(g_reference, g_read) -> float:
    """Global drift-compensation factor ``alpha = sum(g_reference) / sum(g_read)``.

    ``g_reference`` is a calibration read (S) of the array taken right after programming
    and ``g_read`` the same read at inference time; multiplying the later outputs by
    ``alpha`` undoes the array-average drift (aihwkit ``GlobalDriftCompensation``).
    """
    ref = as_tensor("g_reference", g_reference, dtype=torch.float64,
                    device=g_reference.device if torch.is_tensor(g_reference) else "cpu")
    cur = as_tensor("g_read", g_read, dtype=torch.float64, device=ref.device)
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

    Presets (:mod:`devices.pcm_params`):
        ``"joshi2020_pcm"`` (default): IBM statistical model of Nandakumar et al., ICECS 2019
        and Joshi et al., Nat. Commun. 11, 2473 (2020) as in aihwkit ``PCMLikeNoiseModel``.
        ``"crosssim_pcm_joshi"``: CrossSim's quadratic fit to Fig. 3(b) of Joshi 2020 for the
        programming noise (CrossSim models no drift; the IBM drift and read-noise fits of the
        same devices are kept). Both use the window 0.25-25 uS. Pulse, verify and I-V fields
        are typical literature values (module docstring, items 6-8; provenance table).

    Attributes:
        d2d_factor: per-device window factor ``k_d`` (drawn at construction).
        drift_exponent: per-device drift exponent ``nu`` of the present programmed state.
    """

    family: ClassVar[str] = "pcm"
    params_type: ClassVar[type] = PCMParams
    presets: ClassVar[dict] = PRESETS
    provenance: ClassVar[dict] = PROVENANCE
    default_preset: ClassVar[str] = "joshi2020_pcm"
    iv_voltage_limit: ClassVar[float] = 10.0
    slot_seconds: ClassVar[float] = 3e-4

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
        g_t = as_tensor("target_conductance", target_conductance, dtype=self.dtype, device=self.device)
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
        t = self._check_read_time(t)
        return self._apply_faults(self._drift(t))

    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Same as :meth:`drifted_conductance`."""
        return self.drifted_conductance(t)

    def read_noise_sigma(self, t: float = 0.0) -> Tensor:
        """sigma_read (S) of the accumulated 1/f noise of a read at ``t`` s (before the clip at 0)."""
        t = self._check_read_time(t)
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
        t = self._check_read_time(t)
        compensate = check_bool("compensate", compensate)
        g = self._noisy_read(t)
        if compensate:
            cal = self._noisy_read(t)
            if float(cal.sum()) > 0.0:  # an all-zero calibration read carries no scale: alpha = 1
                g = g * global_drift_compensation(self._reference_read, cal)
        return g

    def _iv(self, g: Tensor, v: Tensor) -> Tensor:
        p = self.params
        f_a = (1.0 - (g - self.g_min) / (self.g_max - self.g_min)).clamp(0.0, 1.0)
        h = (1.0 - f_a) * v + f_a * p.v0 * torch.sinh(v / p.v0)
        h_read = (1.0 - f_a) * p.v_read + f_a * p.v0 * math.sinh(p.v_read / p.v0)
        return g * h * (p.v_read / h_read)

    def current(self, voltage) -> Tensor:
        """Current (A) of the drift-free state at ``voltage`` (V, finite, |V| <= 10 V);
        differentiable in voltage. Broadcasts against the array shape; leading batch dimensions
        are allowed."""
        v = self._voltage(voltage)
        return self._apply_faults_current(v, self._iv(self._g, v))

    def _iv_at(self, t: float):
        g, stuck = self._g.clone(), self.stuck.clone()
        g_max, g_min = self.g_max, self.g_min

        def iv(v):
            i = self._iv(g, v)
            s = stuck.expand(v.shape) if v.dim() > stuck.dim() else stuck
            return torch.where(s == 1, v * g_max, torch.where(s == -1, v * g_min, i))
        return iv

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

    def apply_pulses(self, pulses, *, max_steps: int | None = None, **pulse) -> Tensor:
        """Apply signed pulse counts: ``n > 0`` SET pulses, ``n < 0`` RESET pulses; return G (S).

        The pulse shape is fixed by the parameters (``set_dg0``, ``set_exponent``,
        ``c2c_sigma``, ``reset_sigma``), so no pulse overrides are accepted. Pulsed devices get
        a new drift exponent for their new state; stuck devices ignore pulses. At most
        ``max_steps`` (default 10 000) pulse slots per call.
        """
        if pulse:
            raise ValueError(f"PCM.apply_pulses accepts no pulse overrides (the pulse is fixed by the "
                             f"parameters set_dg0, set_exponent, c2c_sigma, reset_sigma); got {sorted(pulse)}")
        n = self._pulse_counts(pulses, max_steps)
        free = self.stuck == STUCK_NONE
        g = self._g.clone()
        n_max = max(int(n.max()), -int(n.min())) if n.numel() else 0
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
        (``pulses`` = 1). With ``verify=True``: the budgeted write-verify of the module
        docstring (item 7, with its guarantees); ``tolerance`` (S) defaults to 1 % of the
        window. ``result.converged`` is per device; ``result.initial_error`` is the error before.
        """
        verify, tol, max_pulses = self._program_args(verify, tolerance, max_pulses)
        target = self.check_target(target_conductance, clip)
        g_before = self.conductance()
        if verify:
            g, pulses = self._write_verify(target, tol, max_pulses)
        else:
            g = (self.d2d_factor * target + self.programming_sigma(target) * self._randn()).clamp(min=0.0)
            pulses = torch.ones(self.shape, dtype=torch.int64, device=self.device)
        free = self.stuck == STUCK_NONE
        pulses = torch.where(free, pulses, torch.zeros_like(pulses))
        self._g = torch.where(free, g, self._g)
        self._nu = self._draw_nu(target)
        self._calibrate()
        return self._result(self._g.clone(), target, pulses, tol, g_before)

    def climb_pulses(self, target) -> Tensor:
        """Nominal number of SET pulses from the RESET level ``g_min`` to ``target`` (S) on the
        mean pulse model (``k_d = 1``, no C2C noise); ``inf`` where the target is out of reach."""
        p = self.params
        width = p.g_sat_ratio * self.g_max - self.g_min
        x_t = ((torch.as_tensor(target, dtype=self.dtype, device=self.device) - self.g_min) / width).clamp(0.0, 1.0)
        scale = width / p.set_dg0
        if abs(p.set_exponent - 1.0) < 1e-12:
            n = scale * -torch.log1p(-x_t.clamp(max=1.0 - 1e-12))
        else:
            q = 1.0 - p.set_exponent
            n = scale * (1.0 - (1.0 - x_t) ** q) / q
        return torch.where(x_t >= 1.0, torch.full_like(n, math.inf), n)

    def _mean_step(self, g: Tensor) -> Tensor:
        """Nominal mean SET step (S) at conductance ``g`` (``k_d = 1``)."""
        p = self.params
        g_sat = p.g_sat_ratio * self.g_max
        x = ((g - self.g_min) / (g_sat - self.g_min)).clamp(0.0, 1.0)
        return p.set_dg0 * (1.0 - x) ** p.set_exponent

    def _expected_miss(self, e: Tensor, m: Tensor) -> Tensor:
        """``E|e - s|`` for a SET step ``s ~ N(m, (c2c m)^2)`` (S): the expected distance from the
        target after a SET from ``e`` below it."""
        sig = (self.params.c2c_sigma * m).clamp_min(1e-30)
        z = (e - m) / sig
        normal = torch.distributions.Normal(torch.zeros((), dtype=e.dtype, device=e.device),
                                            torch.ones((), dtype=e.dtype, device=e.device))
        return (e - m) * (2.0 * normal.cdf(z) - 1.0) + 2.0 * sig * normal.log_prob(z).exp()

    def _write_verify(self, target: Tensor, tol: float, max_pulses: int) -> tuple[Tensor, Tensor]:
        p = self.params
        free = self.stuck == STUCK_NONE
        g = self._g.clone()
        pulses = torch.zeros(self.shape, dtype=torch.int64, device=self.device)
        cycle = 1 + torch.ceil(1.5 * self.climb_pulses(target)) + 3  # a RESET and a climb back to the target
        done = ~free
        while True:
            meas = self._apply_faults(g) * (1.0 + p.verify_read_noise * self._randn())
            band = (tol - p.verify_margin * p.verify_read_noise * meas.abs()).clamp(min=0.0)
            err = meas - target
            done = done | (err.abs() <= band)
            left = max_pulses - pulses
            # above the band: the only way down is RESET + climb, started only when affordable (with
            # the first SET after the RESET still free to overshoot: two pulses beyond the cycle)
            over = ~done & (err > band) & (left >= cycle + 2)
            # below: SET while the budget could still undo an overshoot; after that (the last
            # climb) only while a SET is expected to end closer to the target than the present state
            under = ~done & (err < -band) & (left >= 1)
            last_climb = left - 1 < cycle
            better = self._expected_miss(-err, self._mean_step(meas)) < -err
            under = under & (~last_climb | better)
            if not bool((over | under).any()):
                break
            if bool(over.any()):
                g = torch.where(over, self._reset_level(), g)
            if bool(under.any()):
                g = torch.where(under, self._set_step(g), g)
            pulses = pulses + (over | under).long()
        return g, pulses
