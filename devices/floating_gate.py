r"""Floating-gate (FG) pFET synapse: charge storage, FN tunnelling, hot-electron injection.

Physics
-------
The weight is the charge ``Q_fg`` (C) stored on the electrically isolated polysilicon gate of a
pFET (the single-transistor synapse of the Hasler/Diorio/Minch/Mead line of work; one device
type for reading *and* for the injection law, which is the pFET form). The gate couples to a
control gate (``C_g``) and a tunnelling junction (``C_tun``); ``C_T`` (F) is the total
capacitance, so with the tunnelling node at 0 V::

    V_fg = (C_g V_g + Q_fg)/C_T                                             (V)

Read (subthreshold pFET; source and well at ``v_well``, control gate at ``v_g_read``), as a
two-terminal element with ``V = V_sd`` across it (symmetric source/drain, so the I-V is odd)::

    I(V) = sign(V) I_0 exp(kappa (v_well - V_fg - V_T0 - dV_T)/U_T) (1 - exp(-|V|/U_T)),  U_T = k_B T/q
    G    = I(v_read)/v_read                                                    (S)

(``V_T0`` is the magnitude of the pFET threshold), so ``G`` falls exponentially with the
stored charge, ``G ∝ exp(-kappa Q_fg/(C_T U_T))``: adding electrons (``Q_fg`` down) raises the
weight. One e-fold of ``G`` takes ``C_T U_T/kappa`` of charge (0.74 fC = 4.6k electrons for
``C_T = 20 fF``, ``kappa = 0.7``). ``dV_T ~ N(0, sigma_vt)`` is the per-device threshold
mismatch (drawn at construction); it shifts ``ln G`` by ``-kappa dV_T/U_T``. The stored charge is
capped *from below* at the value that puts the read bias at threshold (``v_well - V_fg = V_T0 +
dV_T``, current ``I_0``): above threshold the device is no longer an exponential synapse.

The programmable window ``[g_min, g_max]`` is the primary parameter; the charge window
``[Q(g_max), Q(g_min)]`` is derived from it with the mismatch-free read law
(:meth:`FloatingGateParams.charge_window`). :meth:`FloatingGateParams.from_charge_window` builds
parameters the other way round. Validation requires ``g_max`` to stay below the subthreshold
limit ``I_0 (1 - e^{-v_read/U_T})/v_read``.

Programming: the charge obeys ``dQ_fg/dt = I_tun - I_inj`` during a pulse (laws and constants
in :mod:`devices.floating_gate_physics`):

* Potentiation (G up), hot-electron injection in the pFET (Hasler-group form,
  ``I_inj = beta I_s exp(-V_beta/(V_sd + V_delta)^2)``): the drain is pulsed ``V_inj`` below the
  source/well with the control gate at ``v_g_inj``; holes of the channel current ``I_s`` (EKV,
  overdrive ``v_well - V_fg - V_T0 - dV_T``) impact-ionise near the drain and the hot electrons
  are injected onto the floating gate, lowering ``Q_fg`` and ``V_fg``; that raises the channel
  current and with it the injection rate (the mild positive feedback of pFET injection).
* Depression (G down), Fowler-Nordheim tunnelling (Lenzlinger & Snow, J. Appl. Phys. 40, 278
  (1969)): a pulse of amplitude ``V_tun`` on the tunnelling electrode (control gate at
  ``v_g_tun``) gives ``V_fg = (C_g v_g_tun + C_tun V_tun + Q_fg)/C_T`` and
  ``I_tun = a_tun A E^2 exp(-B/E)``, ``E = (V_tun - V_fg)/t_ox``; ``C_tun = eps_ox a_tun/t_ox``.
  Removing electrons raises ``V_fg``, which lowers the field: each pulse moves less charge than
  the one before (self-limiting).

A pulse integrates the ODE with classical RK4, ``n_substeps`` steps per ``t_pulse`` of pulse
width (agreement with ``scipy`` ``solve_ivp`` ~1e-7 relative on the transferred charge at the
preset amplitudes). Cycle-to-cycle (C2C) noise multiplies the transferred charge by a
mean-one lognormal ``exp(c2c_sigma z - c2c_sigma^2/2)`` and, if ``shot_noise``, adds electron
number noise ``q sqrt(N)`` (Gaussian limit of Poisson, ``N = |dQ|/q``). Work is bounded: one
``apply_pulses`` call runs at most ``max_steps`` (default 10 000) RK4 steps in total, and an
open-loop ``program`` at most ``max_pulses`` pulses of at most ``max_pulses`` t_pulse each; beyond,
``ValueError`` with the estimated cost.

``program(target)`` without verify is open loop: the mismatch-free model gives the injection or
tunnelling time ``T = int dQ / |dQ/dt|`` from the present charge to the charge of the target
(Gauss-Legendre quadrature); it is applied as ``n = ceil(T/t_pulse)`` equal pulses
(at most ``max_pulses``, then longer) at the nominal amplitude. The controller is assumed to
know the present charge, so the error comes from ``dV_T`` and the C2C noise. With
``verify=True`` it runs ISPP (incremental step pulse programming): the amplitude starts at
``ispp_v_inj_start``/``ispp_v_tun_start`` and rises by ``ispp_dv_inj``/``ispp_dv_tun`` per pulse
(capped at ``v_inj_max``/``v_tun_max``); a noisy verify read follows every pulse; a device stops
when ``|G_read - target| <= tolerance - verify_guard * read_noise * target`` (a guard band, at
least ``tolerance/2``); an overshoot switches to the other mechanism and resets the ladder.

Retention (charge loss toward the neutral charge ``q_neutral``), stretched exponential with an
Arrhenius time constant and a per-device lognormal spread (``sigma_ln_tau``, D2D)::

    Q(t) = Q_n + (Q_0 - Q_n) exp(-(t/tau_i)^beta_ret),
    tau_i = tau_ret_a exp(E_a/(k_B T)) exp(sigma_ln_tau z_i)

``read(t)`` evaluates ``G`` at ``Q(t)`` and adds fresh relative Gaussian read noise ``read_noise``.

Presets (every value's provenance: ``FloatingGate.provenance``)
---------------------------------------------------------------
``"hasler_fg_synapse"`` (default): subthreshold analog pFET FG synapse after Diorio, Hasler,
Minch & Mead and later Hasler-group arrays: ``kappa = 0.7``, ``C_T = 20 fF``, ``C_g = 15 fF``,
nA currents, ``G`` in ``[1 nS, 100 nS]`` at ``v_read = 0.1 V`` (charge window -1.66 to +1.74 fC
around the neutral charge), source/well at 2.5 V, 10 nm tunnel oxide of 0.25 um^2
(``C_tun = 0.86 fF``), 300 K. These are typical literature values, not a fit of one paper's
figure (assumed). The FN constants (``phi_B = 3.2 eV``, ``m* = 0.42 m0``) are Lenzlinger & Snow's
Si/SiO2 values. ``sigma_vt = 10 mV`` (5-30 mV is the usual pre-verify range), the retention
activation energy ``E_a = 1.4 eV`` (the intrinsic charge-loss value usually attributed to
Shiner et al., IRPS 1980), ``beta_ret = 0.5`` and ``tau_ret_a`` (chosen so that
``(10 y/tau)^beta_ret = 0.05`` at 85 C) are assumed; so are the injection constants
(``beta_inj = 5e-4``, ``V_beta = 200 V^2``, ``V_delta = 0.5 V``), pulse amplitudes, the 20 us
pulse width and the ISPP ladders: a nominal pulse moves ~0.05-0.08 fC (~0.1 in ln G; ~50
pulses across the window), the ISPP start amplitudes ~0.005 fC, each ladder step ~1.3x more.

``"hasler_fg_350nm_85c"``: the same synapse in a 0.35 um-class process (7 nm tunnel oxide of
0.1 um^2, ``C_T = 10 fF``, ``kappa = 0.75``, ``V_T0 = 0.55 V``, ``sigma_vt = 15 mV``) operated at
85 C (``U_T = 30.9 mV``), with lower tunnelling (~7.4 V) and injection (~4.3 V) voltages; a scaled
variant built from typical values (assumed), not a reproduction of one paper.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import STUCK_NONE, Device, ProgramResult
from .floating_gate_params import PRESETS, PROVENANCE, FloatingGateParams
from .floating_gate_physics import Q_E as Q_E_CHARGE
from .floating_gate_physics import (
    SECONDS_PER_YEAR, channel_current, ekv_current, fn_density, fowler_nordheim_coefficients,
    fowler_nordheim_current_density, injection_current, injection_efficiency, thermal_voltage, tunnelling_current,
)

__all__ = [
    "FloatingGate", "FloatingGateParams", "fowler_nordheim_coefficients",
    "fowler_nordheim_current_density", "tunnelling_current", "channel_current",
    "injection_current", "injection_efficiency", "thermal_voltage", "SECONDS_PER_YEAR",
]

Tensor = torch.Tensor
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)
POTENTIATE, DEPRESS = 1, -1  # pulse polarity: +1 hot-electron injection (G up), -1 tunnelling (G down)


class FloatingGate(Device):
    """Array of pFET floating-gate synapses; the state is the stored charge ``q_fg`` (C).

    Pulse polarity: ``+1`` (``n > 0``) hot-electron injection (G up), ``-1`` tunnelling (G down).
    """

    family = "floating_gate"
    params_type = FloatingGateParams
    presets = PRESETS
    provenance = PROVENANCE
    default_preset = "hasler_fg_synapse"
    slot_seconds = 7e-3

    # ---------------------------------------------------------------- construction
    def _init_variation(self) -> None:
        p = self.params
        self.delta_vt = p.sigma_vt * self._randn()  # threshold mismatch dV_T (V)
        self.tau_factor = torch.exp(p.sigma_ln_tau * self._randn())  # retention-time spread
        # lowest charge (C): below it the read bias puts the pFET above threshold
        self.q_threshold = p.c_t * (p.v_well - p.v_t0 - self.delta_vt) - p.c_g * p.v_g_read
        self._fn_ab = fowler_nordheim_coefficients(p.phi_b, p.m_eff_ratio)
        self._c_tun, self._u_t = p.c_tun, p.u_t

    def _init_state(self) -> None:
        q = torch.full(self.shape, self.params.q_neutral, dtype=self.dtype, device=self.device)
        self.q_fg = torch.maximum(q, self.q_threshold)  # UV-erased, neutral floating gate

    def _base_steps(self) -> int:
        return self.params.n_substeps

    # ---------------------------------------------------------------- read path
    def floating_gate_voltage(self, charge=None) -> Tensor:
        """``V_fg`` (V) at the read bias for ``charge`` (C; default: the stored charge)."""
        q = self.q_fg if charge is None else charge
        return (self.params.c_g * self.params.v_g_read + q) / self.params.c_t

    def _i_pre(self, q: Tensor) -> Tensor:
        """Subthreshold prefactor (A) of the read law at charge ``q`` (C)."""
        p = self.params
        return p.i_0 * torch.exp(p.kappa * (p.v_well - self.floating_gate_voltage(q) - p.v_t0 - self.delta_vt)
                                 / p.u_t)

    def _g_of_q(self, q: Tensor) -> Tensor:
        p = self.params
        return self._i_pre(q) * -math.expm1(-p.v_read / p.u_t) / p.v_read

    def conductance(self) -> Tensor:
        """Noise-free conductance (S) at ``v_read``, faults applied."""
        return self._apply_faults(self._g_of_q(self.q_fg))

    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Noise-free conductance (S) ``t`` s after programming (retention)."""
        return self._apply_faults(self._g_of_q(self.stored_charge(t)))

    @staticmethod
    def _shape_fn(v: Tensor, u_t: float) -> Tensor:
        zero = torch.zeros_like(v)
        vp = torch.where(v > 0, v, zero)
        vn = torch.where(v > 0, zero, v)
        return -torch.expm1(-vp / u_t) + torch.expm1(vn / u_t)  # sign(V)(1 - e^{-|V|/U_T})

    def current(self, voltage) -> Tensor:
        """Subthreshold current (A) at ``voltage`` (V, finite); broadcasts, leading batch dims allowed."""
        v = self._voltage(voltage)
        return self._apply_faults_current(v, self._i_pre(self.q_fg) * self._shape_fn(v, self.params.u_t))

    def _iv_at(self, t: float):
        i_pre, stuck, u_t = self._i_pre(self.stored_charge(t)).clone(), self.stuck.clone(), self.params.u_t
        g_max, g_min = self.g_max, self.g_min

        def iv(v):
            i = i_pre * self._shape_fn(v, u_t)
            s = stuck.expand(v.shape) if v.dim() > stuck.dim() else stuck
            return torch.where(s == 1, v * g_max, torch.where(s == -1, v * g_min, i))
        return iv

    def stored_charge(self, t: float = 0.0) -> Tensor:
        """Stored charge (C) ``t`` seconds after programming (retention toward ``q_neutral``)."""
        t = self._check_read_time(t)
        p = self.params
        if t == 0.0:
            return self.q_fg.clone()
        x = (t / self.retention_time()) ** p.beta_ret
        # the charge relaxes toward q_neutral, but never below the threshold cap of the read law
        return torch.maximum(p.q_neutral + (self.q_fg - p.q_neutral) * torch.exp(-x), self.q_threshold)

    def retention_time(self, temperature: float | None = None) -> Tensor:
        """Per-device retention time constant ``tau_i`` (s) at ``temperature`` (K; default: ``params.temperature``)."""
        return self.params.retention_time(temperature) * self.tau_factor

    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) ``t`` s after programming: retention, then fresh relative read noise."""
        g = self._g_of_q(self.stored_charge(t))
        g = (g * (1.0 + self.params.read_noise * self._randn())).clamp_min(0.0)
        return self._apply_faults(g)

    # ---------------------------------------------------------------- programming physics
    def charge_rate(self, charge, polarity, amplitude, *, nominal: bool = False) -> Tensor:
        """``dQ_fg/dt`` (A) during a pulse: ``-I_inj`` where ``polarity > 0`` (injection: the drain
        pulsed ``amplitude`` V below the source/well), ``+I_tun`` where ``polarity < 0``
        (tunnelling pulse of ``amplitude`` V), 0 elsewhere. ``nominal=True`` uses the
        mismatch-free device (``dV_T = 0``)."""
        p = self.params
        q = torch.as_tensor(charge, dtype=self.dtype, device=self.device)
        pol = torch.as_tensor(polarity, device=self.device)
        amp = torch.as_tensor(amplitude, dtype=self.dtype, device=self.device)
        a_fn, b_fn = self._fn_ab
        v_fg_tun = (p.c_g * p.v_g_tun + self._c_tun * amp + q) / p.c_t
        i_tun = p.a_tun * fn_density((amp - v_fg_tun) / p.t_ox, a_fn, b_fn)
        dvt = 0.0 if nominal else self.delta_vt
        v_ov = p.v_well - (p.c_g * p.v_g_inj + q) / p.c_t - p.v_t0 - dvt  # pFET overdrive at the injection bias
        v_sd = amp.clamp_min(0.0)
        i_ch = ekv_current(v_ov, v_sd, p.kappa, p.i_0, self._u_t)
        i_inj = i_ch * (p.beta_inj * torch.exp(-p.v_beta / (v_sd + p.v_delta) ** 2))
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        return torch.where(pol > 0, -i_inj, torch.where(pol < 0, i_tun, zero))

    def _substeps(self, width) -> int:
        w = torch.as_tensor(width, dtype=self.dtype, device=self.device)
        return self.params.n_substeps * max(1, math.ceil(float(w.max()) / self.params.t_pulse - 1e-9))

    def integrate_pulse(self, charge, polarity, amplitude, width, *, nominal: bool = False) -> Tensor:
        """Charge (C) at the end of one noise-free pulse of ``width`` s: classical RK4 with
        ``n_substeps`` steps per ``t_pulse`` of the longest width (at least ``n_substeps``)."""
        q = torch.as_tensor(charge, dtype=self.dtype, device=self.device)
        w = torch.as_tensor(width, dtype=self.dtype, device=self.device)
        n = self._substeps(w)
        h = w / n

        def f(x):
            return self.charge_rate(x, polarity, amplitude, nominal=nominal)

        for _ in range(n):
            k1 = f(q)
            k2 = f(q + 0.5 * h * k1)
            k3 = f(q + 0.5 * h * k2)
            k4 = f(q + h * k3)
            q = q + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return q

    def _pulse(self, polarity: Tensor, amplitude: Tensor, width) -> None:
        """One pulse on every device (``polarity`` 0 = none) with C2C and shot noise."""
        p = self.params
        dq = self.integrate_pulse(self.q_fg, polarity, amplitude, width) - self.q_fg
        z_c2c, z_shot = self._randn(), self._randn()
        mag = dq.abs() * torch.exp(p.c2c_sigma * z_c2c - 0.5 * p.c2c_sigma**2)
        if p.shot_noise:
            mag = (mag + Q_E_CHARGE * torch.sqrt(mag / Q_E_CHARGE) * z_shot).clamp_min(0.0)
        dq = torch.sign(dq) * mag
        dq = torch.where(self.stuck == STUCK_NONE, dq, torch.zeros_like(dq))
        self.q_fg = torch.maximum(self.q_fg + dq, self.q_threshold)

    def _amplitude(self, amplitude, default: float, vmax: float, name: str, where: Tensor) -> Tensor:
        a = self._tensor("amplitude", default if amplitude is None else amplitude)
        used = a[where]
        if used.numel() and (bool((used <= 0).any()) or bool((used > vmax).any())):
            raise ValueError(f"amplitude for {name} pulses must be in (0, {vmax:g}] V, "
                             f"got range [{float(used.min()):g}, {float(used.max()):g}] V")
        return a

    def apply_pulses(self, pulses, amplitude=None, width=None, *, max_steps: int | None = None) -> Tensor:
        """Signed pulse counts: ``n > 0`` injection pulses (G up; drain ``amplitude`` V below the
        source, default ``v_inj``), ``n < 0`` tunnelling pulses (G down; ``amplitude`` V on the
        tunnelling node, default ``v_tun``); ``width`` (s, default ``t_pulse``, at most 1 s).
        At most ``max_steps`` (default 10 000) RK4 steps in total (pulse slots x
        ``n_substeps`` x ceil(width/t_pulse)). Returns the noise-free conductance (S)."""
        p = self.params
        w = self._tensor("width", p.t_pulse if width is None else width)
        if bool((w <= 0).any()) or bool((w > 1.0).any()):
            raise ValueError(f"width must be in (0, 1] s, got range [{float(w.min()):g}, {float(w.max()):g}] s")
        n = self._pulse_counts(pulses, max_steps, steps_per_slot=self._substeps(w))
        a_inj = self._amplitude(amplitude, p.v_inj, p.v_inj_max, "injection", n > 0)
        a_tun = self._amplitude(amplitude, p.v_tun, p.v_tun_max, "tunnelling", n < 0)
        amp = torch.where(n > 0, a_inj, a_tun)
        for k in range(max(int(n.max()), -int(n.min())) if n.numel() else 0):
            self._pulse(torch.where(n > k, POTENTIATE, torch.where(-n > k, DEPRESS, 0)), amp, w)
        return self.conductance()

    # ---------------------------------------------------------------- programming algorithms
    def _nominal_time(self, q0: Tensor, q1: Tensor, polarity: Tensor, amplitude: Tensor) -> Tensor:
        """Time (s) the mismatch-free model needs to move ``q0 -> q1`` at fixed amplitude."""
        x = torch.as_tensor(_GL_NODES, dtype=self.dtype, device=self.device).reshape((-1,) + (1,) * q0.dim())
        w = torch.as_tensor(_GL_WEIGHTS, dtype=self.dtype, device=self.device).reshape(x.shape)
        mid, half = 0.5 * (q0 + q1), 0.5 * (q1 - q0)
        rate = self.charge_rate(mid + half * x, polarity, amplitude, nominal=True)
        safe = torch.where(rate != 0, rate, torch.ones_like(rate))
        return (w * half / safe).sum(0).abs()

    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Program to ``target_conductance`` (S): open loop, or ISPP program-and-verify (``verify=True``).

        Open loop applies at most ``max_pulses`` pulses (longer ones if the nominal model needs more
        time, each at most ``max_pulses`` t_pulse long; a target that would need more raises); a
        ``tolerance`` given without verify only sets ``converged`` in the result."""
        verify, tol, max_pulses = self._program_args(verify, tolerance, max_pulses)
        target = self.check_target(target_conductance, clip)
        g_before = self.conductance()
        if verify:
            pulses = self._program_ispp(target, tol, max_pulses)
            return self._result(self._g_of_q(self.q_fg), target, pulses, tol, g_before)
        p = self.params
        q_target = p.charge_of_conductance(target)
        pol = torch.where(q_target < self.q_fg, POTENTIATE, torch.where(q_target > self.q_fg, DEPRESS, 0))
        amp = torch.where(pol > 0, torch.full_like(target, p.v_inj), torch.full_like(target, p.v_tun))
        t_need = torch.where(pol != 0, self._nominal_time(self.q_fg, q_target, pol, amp), torch.zeros_like(target))
        n = torch.ceil(t_need / p.t_pulse - 1e-9).clamp(0, max_pulses).to(torch.int64)
        width = torch.where(n > 0, t_need / n.clamp_min(1), torch.full_like(t_need, p.t_pulse))
        longest = float(width.max()) / p.t_pulse if width.numel() else 0.0
        if not math.isfinite(longest) or longest > max_pulses:
            raise ValueError(f"target_conductance needs pulses of up to {longest:.3g} t_pulse at the nominal amplitude "
                             f"(more than max_pulses={max_pulses} pulses of max_pulses t_pulse each); raise "
                             f"max_pulses or use verify=True")
        for k in range(int(n.max()) if n.numel() else 0):
            self._pulse(torch.where(n > k, pol, 0), amp, width)
        return self._result(self._g_of_q(self.q_fg), target, n, tol, g_before)

    def _program_ispp(self, target: Tensor, tol: float, max_pulses: int) -> Tensor:
        p = self.params
        pulses = torch.zeros(self.shape, dtype=torch.int64, device=self.device)
        # guard band: accept a noisy verify read only verify_guard read-noise sigmas inside the tolerance
        accept = (tol - p.verify_guard * p.read_noise * target).clamp_min(0.5 * tol)
        g_read = self.read()
        active = ((g_read - target).abs() > accept) & (self.stuck == STUCK_NONE)
        direction = torch.where(target >= g_read, POTENTIATE, DEPRESS)
        step = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        for _ in range(max_pulses):
            if not bool(active.any()):
                break
            amp = torch.where(direction > 0, (p.ispp_v_inj_start + step * p.ispp_dv_inj).clamp_max(p.v_inj_max),
                              (p.ispp_v_tun_start + step * p.ispp_dv_tun).clamp_max(p.v_tun_max))
            self._pulse(torch.where(active, direction, 0), amp, p.t_pulse)
            pulses += active.long()
            g_read = self.read()
            done = (g_read - target).abs() <= accept
            new_dir = torch.where(target >= g_read, POTENTIATE, DEPRESS)
            overshoot = active & ~done & (new_dir != direction)
            step = torch.where(overshoot, torch.zeros_like(step), torch.where(active, step + 1.0, step))
            direction = torch.where(overshoot, new_dir, direction)
            active = active & ~done
        return pulses
