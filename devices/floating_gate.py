r"""Floating-gate (FG) transistor synapse: charge storage, FN tunnelling, hot-electron injection.

Physics
-------
The weight is the charge ``Q_fg`` (C) stored on an electrically isolated polysilicon gate. The
gate couples to a control gate (``C_g``), a tunnelling junction (``C_tun``) and the channel;
``C_T`` (F) is the total capacitance, so with the tunnelling node at 0 V::

    V_fg = (C_g V_g + Q_fg)/C_T                                             (V)

Read (Diorio, Hasler, Minch & Mead, IEEE TED 43, 1972 (1996); here an nFET). The control gate
sits at ``v_g_read`` and the device is read in subthreshold as a two-terminal element with
``V = V_ds`` across it (symmetric source/drain, so the I-V is odd)::

    I(V) = sign(V) I_0 exp(kappa (V_fg - V_T0 - dV_T)/U_T) (1 - exp(-|V|/U_T)),  U_T = k_B T/q
    G    = I(v_read)/v_read                                                    (S)

so ``G`` is exponential in the stored charge: one e-fold of ``G`` takes ``C_T U_T/kappa`` of
charge (0.74 fC = 4.6k electrons for ``C_T = 20 fF``, ``kappa = 0.7``). ``dV_T ~ N(0, sigma_vt)``
is the per-device threshold mismatch (device-to-device, drawn at construction); it shifts
``ln G`` by ``-kappa dV_T/U_T``, i.e. the spread ``sigma(ln G) = kappa sigma_vt/U_T`` that
program-and-verify has to remove. Drain-induced coupling (DIBL, ``C_d V_d``) is left out: the
read current saturates for ``|V| >> U_T``. The stored charge is capped at the value that puts
the read bias at threshold (``V_fg = V_T0 + dV_T``, current ``I_0``): above threshold the device
is no longer an exponential synapse and the model does not apply there.

The programmable window ``[g_min, g_max]`` is the primary parameter; the charge window
``[Q_min, Q_max]`` is derived from it with the mismatch-free read law
(:meth:`FloatingGateParams.charge_window`), so the two can never disagree.
:meth:`FloatingGateParams.from_charge_window` builds parameters the other way round.
Validation requires ``g_max`` to stay below the subthreshold limit ``I_0 (1 - e^{-v_read/U_T})/v_read``.

Programming: the charge obeys ``dQ_fg/dt = I_tun - I_inj`` during a pulse (laws and constants
in :mod:`devices.floating_gate_physics`):

* Potentiation, Fowler-Nordheim tunnelling (Lenzlinger & Snow, J. Appl. Phys. 40, 278
  (1969)): a pulse of amplitude ``V_tun`` on the tunnelling electrode (control gate at
  ``v_g_tun``, channel grounded) gives ``V_fg = (C_g v_g_tun + C_tun V_tun + Q_fg)/C_T`` and
  ``I_tun = a_tun A E^2 exp(-B/E)``, ``E = (V_tun - V_fg)/t_ox``; ``C_tun = eps_ox a_tun/t_ox``.
  Removing electrons raises ``V_fg``, which lowers the field, so each pulse moves less charge
  than the one before (self-limiting, nonlinear response).
* Depression, channel hot-electron injection, Hasler form
  ``I_inj = beta I_ch exp(-V_beta/(V_ds + V_delta)^2)``: a drain pulse ``V_ds = V_inj`` with the
  control gate at ``v_g_inj``; ``I_ch`` is the EKV channel current at the injection bias
  (above threshold, so the injection rate varies only mildly with ``Q_fg``).

A pulse integrates the ODE with classical RK4, ``n_substeps`` steps per ``t_pulse`` of pulse
width (``V_fg`` changes with ``Q_fg`` during the pulse; agreement with ``scipy`` ``solve_ivp``
is ~1e-7 relative on the transferred charge at the preset amplitudes). Cycle-to-cycle (C2C) noise multiplies the transferred charge by a
mean-one lognormal ``exp(c2c_sigma z - c2c_sigma^2/2)`` and, if ``shot_noise``, adds electron
number noise ``q sqrt(N)`` (Gaussian limit of Poisson, ``N = |dQ|/q``).

``program(target)`` without verify is open loop: the mismatch-free model gives the tunnelling or
injection time ``T = int dQ / |dQ/dt|`` from the present charge to the charge of the target
(Gauss-Legendre quadrature); it is applied as ``n = ceil(T/t_pulse)`` equal pulses
(at most ``max_pulses``, then longer) at the nominal amplitude. The controller is assumed to
know the present charge, so the error comes from ``dV_T`` and the C2C noise. With
``verify=True`` it runs ISPP (incremental step pulse programming): the amplitude starts at
``ispp_v_tun_start``/``ispp_v_inj_start`` and rises by ``ispp_dv_tun``/``ispp_dv_inj`` per pulse
(capped at ``v_tun_max``/``v_inj_max``); a noisy verify read follows every pulse; a device stops
when ``|G_read - target| <= tolerance - verify_guard * read_noise * target`` (a guard band, at
least ``tolerance/2``, so that an accepted device is inside ``tolerance`` despite the read
noise; the devices approach the band edge from outside); an overshoot switches to the other mechanism and resets
the ladder. Analog FG program-and-verify typically reaches 0.1-1 % precision.

Retention (charge loss toward the neutral charge ``q_neutral``), stretched exponential with an
Arrhenius time constant and a per-device lognormal spread (``sigma_ln_tau``, D2D)::

    Q(t) = Q_n + (Q_0 - Q_n) exp(-(t/tau_i)^beta_ret),
    tau_i = tau_ret_a exp(E_a/(k_B T)) exp(sigma_ln_tau z_i)

``read(t)`` evaluates ``G`` at ``Q(t)`` and adds fresh relative Gaussian read noise ``read_noise``.

Presets
-------
``"hasler_fg_synapse"`` (default): subthreshold analog FG synapse after Diorio, Hasler, Minch &
Mead (1996) and later Hasler-group arrays: ``kappa = 0.7``, ``C_T = 20 fF``, ``C_g = 15 fF``,
nA currents, ``G`` in ``[1 nS, 100 nS]`` at ``v_read = 0.1 V`` (charge window -1.74 to +1.66 fC
around the neutral charge), 10 nm tunnel oxide of 0.25 um^2 (``C_tun = 0.86 fF``), 300 K. These
are typical literature values, not a fit of one paper's figure. Also typical values [M]: the FN
constants (``phi_B = 3.2 eV``, ``m* = 0.42 m0``, Lenzlinger & Snow 1969), ``sigma_vt = 10 mV``
(5-30 mV is the usual pre-verify range), the retention activation energy ``E_a = 1.4 eV`` (the
intrinsic charge-loss value usually attributed to Shiner et al., "Data retention in EPROMs",
IRPS 1980), ``beta_ret = 0.5``. ``tau_ret_a`` is chosen so that ``(10 y/tau)^beta_ret = 0.05`` at
85 C: devices at the window edges lose ~2.5 % of the window on average (~4 % at worst) in 10
years at 85 C (the usual FG retention spec asks for < 10 %). The injection constants (``beta_inj = 5e-4``, ``V_beta = 200 V^2``, ``V_delta = 0.5 V``),
pulse amplitudes, the 20 us pulse width and the ISPP ladders are chosen, not measured: a
nominal pulse moves ~0.05-0.08 fC (~0.1 in ln G; ~50 pulses across the window), the ISPP start
amplitudes move ~0.005 fC (30 electrons), and each ladder step raises the charge step by
~1.3x. ``c2c_sigma = 0.05`` and ``read_noise = 0.2 %`` are typical values [M].

``"hasler_fg_350nm_85c"``: the same synapse in a 0.35 um-class process (7 nm tunnel oxide of
0.1 um^2, ``C_T = 10 fF``, ``kappa = 0.75``, ``V_T0 = 0.55 V``, ``sigma_vt = 15 mV``) operated at
85 C (``U_T = 30.9 mV``), with lower tunnelling (~7.4 V) and injection (~4.3 V) voltages. It is
a scaled variant built from typical values [M], not a reproduction of one paper.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .validation import check_rate, check_scalar
from .base import STUCK_NONE, CommonParams, Device, ProgramResult
from .floating_gate_physics import (
    K_B, Q_E, SECONDS_PER_YEAR, channel_current, ekv_current, fn_density, fowler_nordheim_coefficients,
    fowler_nordheim_current_density, injection_current, injection_efficiency, oxide_capacitance,
    thermal_voltage, tunnelling_current,
)

__all__ = [
    "FloatingGate", "FloatingGateParams", "fowler_nordheim_coefficients",
    "fowler_nordheim_current_density", "tunnelling_current", "channel_current",
    "injection_current", "injection_efficiency", "thermal_voltage", "SECONDS_PER_YEAR",
]

Tensor = torch.Tensor
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


@dataclass(frozen=True)
class FloatingGateParams(CommonParams):
    """Parameters of :class:`FloatingGate` (SI units; defaults = ``"hasler_fg_synapse"``).

    Read: ``temperature`` (K), ``kappa`` (gate coupling to the surface potential), ``i_0`` (A,
    current at threshold), ``v_t0`` (V, nominal threshold), ``sigma_vt`` (V, D2D threshold
    mismatch), ``c_t``/``c_g`` (F, total / control-gate capacitance), ``v_g_read`` (V, control
    gate during reads), ``read_noise`` (relative, per read).
    Tunnelling: ``t_ox`` (m), ``a_tun`` (m^2), ``phi_b`` (eV), ``m_eff_ratio`` (m*/m0),
    ``v_tun`` (V, nominal pulse), ``v_g_tun`` (V, control gate during tunnelling), ``v_tun_max`` (V).
    Injection: ``beta_inj``, ``v_beta`` (V^2), ``v_delta`` (V), ``v_inj`` (V, nominal drain
    pulse), ``v_g_inj`` (V, control gate during injection), ``v_inj_max`` (V).
    Pulses: ``t_pulse`` (s), ``n_substeps`` (RK4 steps per pulse), ``c2c_sigma`` (lognormal
    sigma of the transferred charge), ``shot_noise``. ISPP: ``ispp_v_tun_start``,
    ``ispp_dv_tun``, ``ispp_v_inj_start``, ``ispp_dv_inj`` (V), ``verify_guard`` (guard band in
    read-noise sigmas). Retention: ``q_neutral`` (C),
    ``tau_ret_a`` (s), ``ea_ret`` (eV), ``beta_ret``, ``sigma_ln_tau``.
    """

    g_min: float = 1e-9
    g_max: float = 1e-7
    v_read: float = 0.1
    temperature: float = 300.0
    kappa: float = 0.7
    i_0: float = 1e-7
    v_t0: float = 0.7
    sigma_vt: float = 0.01
    c_t: float = 20e-15
    c_g: float = 15e-15
    v_g_read: float = 0.71
    read_noise: float = 0.002
    t_ox: float = 10e-9
    a_tun: float = 0.25e-12
    phi_b: float = 3.2
    m_eff_ratio: float = 0.42
    v_tun: float = 10.5
    v_g_tun: float = 0.0
    v_tun_max: float = 12.0
    beta_inj: float = 5e-4
    v_beta: float = 200.0
    v_delta: float = 0.5
    v_inj: float = 4.5
    v_g_inj: float = 2.3
    v_inj_max: float = 6.0
    t_pulse: float = 20e-6
    n_substeps: int = 4
    c2c_sigma: float = 0.05
    shot_noise: bool = True
    ispp_v_tun_start: float = 9.5
    ispp_dv_tun: float = 0.1
    ispp_v_inj_start: float = 3.6
    ispp_dv_inj: float = 0.07
    verify_guard: float = 2.0
    q_neutral: float = 0.0
    tau_ret_a: float = 2.5e-9
    ea_ret: float = 1.4
    beta_ret: float = 0.5
    sigma_ln_tau: float = 0.3

    # ---------------------------------------------------------------- derived quantities
    @property
    def u_t(self) -> float:
        """Thermal voltage ``k_B T/q`` (V)."""
        return thermal_voltage(self.temperature)

    @property
    def c_tun(self) -> float:
        """Tunnelling-junction capacitance ``eps_ox a_tun/t_ox`` (F)."""
        return oxide_capacitance(self.a_tun, self.t_ox)

    @property
    def g_subthreshold_limit(self) -> float:
        """Conductance (S) at the read bias when ``V_fg = V_T0`` (end of subthreshold)."""
        return self.i_0 * -math.expm1(-self.v_read / self.u_t) / self.v_read

    def charge_of_conductance(self, g):
        """Charge (C) that gives conductance ``g`` (S) on a mismatch-free device (inverse read law)."""
        log = torch.log if isinstance(g, torch.Tensor) else math.log
        v_fg = self.v_t0 + self.u_t / self.kappa * log(g / self.g_subthreshold_limit)
        return self.c_t * v_fg - self.c_g * self.v_g_read

    def conductance_of_charge(self, q):
        """Conductance (S) of a mismatch-free device storing charge ``q`` (C)."""
        exp = torch.exp if isinstance(q, torch.Tensor) else math.exp
        v_fg = (self.c_g * self.v_g_read + q) / self.c_t
        return self.g_subthreshold_limit * exp(self.kappa * (v_fg - self.v_t0) / self.u_t)

    def charge_window(self) -> tuple[float, float]:
        """``(Q_min, Q_max)`` (C): the charge window that maps onto ``[g_min, g_max]``."""
        return self.charge_of_conductance(self.g_min), self.charge_of_conductance(self.g_max)

    def retention_time(self, temperature: float | None = None) -> float:
        """Median retention time ``tau_ret_a exp(E_a/(k_B T))`` (s) at ``temperature`` (K)."""
        t = self.temperature if temperature is None else check_scalar("temperature", temperature, low=0.0,
                                                                      low_open=True)
        return self.tau_ret_a * math.exp(self.ea_ret * Q_E / (K_B * t))

    @classmethod
    def from_charge_window(cls, q_min: float, q_max: float, **fields) -> "FloatingGateParams":
        """Parameters whose ``[g_min, g_max]`` is the image of the charge window ``[q_min, q_max]`` (C)."""
        base = cls(**fields)
        if not q_max > q_min:
            raise ValueError(f"q_max must be > q_min, got q_min={q_min:g} C, q_max={q_max:g} C")
        out = dataclasses.replace(base, g_min=base.conductance_of_charge(q_min),
                                  g_max=base.conductance_of_charge(q_max))
        out.validate()
        return out

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        super().validate()
        pos = dict(low=0.0, low_open=True)
        check_scalar("temperature", self.temperature, low=1.0, high=600.0)
        check_scalar("kappa", self.kappa, low=0.0, high=1.0, low_open=True)
        for name in ("i_0", "c_t", "c_g", "t_ox", "a_tun", "phi_b", "m_eff_ratio", "v_tun", "v_tun_max",
                     "beta_inj", "v_beta", "v_inj", "v_inj_max", "t_pulse", "ispp_v_tun_start",
                     "ispp_dv_tun", "ispp_v_inj_start", "ispp_dv_inj", "tau_ret_a", "ea_ret"):
            check_scalar(name, getattr(self, name), **pos)
        for name in ("v_t0", "v_g_read", "v_g_tun", "v_g_inj", "q_neutral"):
            check_scalar(name, getattr(self, name))
        check_scalar("sigma_vt", self.sigma_vt, low=0.0, high=0.5)
        check_scalar("v_delta", self.v_delta, low=0.0)
        check_scalar("beta_ret", self.beta_ret, low=0.0, high=1.0, low_open=True)
        check_scalar("sigma_ln_tau", self.sigma_ln_tau, low=0.0, high=5.0)
        check_scalar("c2c_sigma", self.c2c_sigma, low=0.0, high=2.0)
        check_scalar("verify_guard", self.verify_guard, low=0.0, high=10.0)
        check_rate("read_noise", self.read_noise)
        if not isinstance(self.n_substeps, int) or isinstance(self.n_substeps, bool) or not 1 <= self.n_substeps <= 10_000:
            raise ValueError(f"n_substeps must be an int in [1, 10000], got {self.n_substeps!r}")
        if not isinstance(self.shot_noise, bool):
            raise TypeError(f"shot_noise must be a bool, got {self.shot_noise!r}")
        if not self.c_g + self.c_tun < self.c_t:
            raise ValueError(f"c_t must exceed c_g + c_tun = {self.c_g + self.c_tun:g} F "
                             f"(c_tun = eps_ox a_tun/t_ox), got c_t={self.c_t:g} F")
        if not self.v_tun <= self.v_tun_max:
            raise ValueError(f"v_tun must be in (0, v_tun_max={self.v_tun_max:g}] V, got {self.v_tun:g}")
        if not self.ispp_v_tun_start <= self.v_tun_max:
            raise ValueError(f"ispp_v_tun_start must be in (0, v_tun_max={self.v_tun_max:g}] V, "
                             f"got {self.ispp_v_tun_start:g}")
        if not self.v_inj <= self.v_inj_max:
            raise ValueError(f"v_inj must be in (0, v_inj_max={self.v_inj_max:g}] V, got {self.v_inj:g}")
        if not self.ispp_v_inj_start <= self.v_inj_max:
            raise ValueError(f"ispp_v_inj_start must be in (0, v_inj_max={self.v_inj_max:g}] V, "
                             f"got {self.ispp_v_inj_start:g}")
        lim = self.g_subthreshold_limit
        if not self.g_max < lim:
            raise ValueError(f"g_max must be below the subthreshold limit I_0(1-exp(-v_read/U_T))/v_read "
                             f"= {lim:.4g} S, got g_max={self.g_max:g} S")
        if not self.g_min > 0.0:
            raise ValueError(f"g_min must be > 0 S for a floating-gate device (G is exponential in Q), "
                             f"got {self.g_min:g}")


def _preset_350nm_85c() -> FloatingGateParams:
    """0.35 um-class, 7 nm-oxide variant at 85 C (typical values [M]; see the module docstring)."""
    return FloatingGateParams(
        temperature=358.15, kappa=0.75, i_0=2e-7, v_t0=0.55, sigma_vt=0.015, c_t=10e-15, c_g=7.5e-15,
        v_g_read=0.445, t_ox=7e-9, a_tun=0.1e-12, v_tun=7.4, v_tun_max=8.5, ispp_v_tun_start=6.7,
        ispp_dv_tun=0.07, v_g_inj=2.0, beta_inj=5e-4, v_inj=4.3, v_inj_max=5.0, ispp_v_inj_start=3.4,
        ispp_dv_inj=0.07, read_noise=0.003,
    )


class FloatingGate(Device):
    """Array of floating-gate synapses; the state is the stored charge ``q_fg`` (C)."""

    family = "floating_gate"
    params_type = FloatingGateParams
    presets = {
        "hasler_fg_synapse": FloatingGateParams(),
        "hasler_fg_350nm_85c": _preset_350nm_85c(),
    }
    default_preset = "hasler_fg_synapse"

    # ---------------------------------------------------------------- construction
    def _init_variation(self) -> None:
        p = self.params
        self.delta_vt = p.sigma_vt * self._randn()  # threshold mismatch dV_T (V)
        self.tau_factor = torch.exp(p.sigma_ln_tau * self._randn())  # retention-time spread
        self.q_threshold = p.c_t * (p.v_t0 + self.delta_vt) - p.c_g * p.v_g_read  # charge cap (C)
        self._fn_ab = fowler_nordheim_coefficients(p.phi_b, p.m_eff_ratio)
        self._c_tun, self._u_t = p.c_tun, p.u_t

    def _init_state(self) -> None:
        q = torch.full(self.shape, self.params.q_neutral, dtype=self.dtype, device=self.device)
        self.q_fg = torch.minimum(q, self.q_threshold)  # UV-erased, neutral floating gate

    # ---------------------------------------------------------------- read path
    def floating_gate_voltage(self, charge=None) -> Tensor:
        """``V_fg`` (V) at the read bias for ``charge`` (C; default: the stored charge)."""
        q = self.q_fg if charge is None else charge
        return (self.params.c_g * self.params.v_g_read + q) / self.params.c_t

    def _i_pre(self, q: Tensor) -> Tensor:
        p = self.params
        return p.i_0 * torch.exp(p.kappa * (self.floating_gate_voltage(q) - p.v_t0 - self.delta_vt) / p.u_t)

    def _g_of_q(self, q: Tensor) -> Tensor:
        p = self.params
        return self._i_pre(q) * -math.expm1(-p.v_read / p.u_t) / p.v_read

    def conductance(self) -> Tensor:
        """Noise-free conductance (S) at ``v_read``, faults applied."""
        return self._apply_faults(self._g_of_q(self.q_fg))

    def current(self, voltage) -> Tensor:
        """Subthreshold current (A) at ``voltage`` (V); broadcasts, leading batch dims allowed."""
        v = torch.as_tensor(voltage, dtype=self.dtype, device=self.device)
        try:
            shape = torch.broadcast_shapes(v.shape, self.shape)
        except RuntimeError as exc:
            raise ValueError(f"voltage has shape {tuple(v.shape)}, which does not broadcast to the "
                             f"device array shape {self.shape}") from exc
        v = torch.broadcast_to(v, shape)
        u_t = self.params.u_t
        zero = torch.zeros_like(v)
        vp = torch.where(v > 0, v, zero)
        vn = torch.where(v > 0, zero, v)
        shape_fn = -torch.expm1(-vp / u_t) + torch.expm1(vn / u_t)  # sign(V)(1 - e^{-|V|/U_T})
        return self._apply_faults_current(v, self._i_pre(self.q_fg) * shape_fn)

    def stored_charge(self, t: float = 0.0) -> Tensor:
        """Stored charge (C) ``t`` seconds after programming (retention toward ``q_neutral``)."""
        t = self._check_time(t)
        p = self.params
        if t == 0.0:
            return self.q_fg.clone()
        x = (t / self.retention_time()) ** p.beta_ret
        return p.q_neutral + (self.q_fg - p.q_neutral) * torch.exp(-x)

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
        """``dQ_fg/dt`` (A) during a pulse: ``+I_tun`` where ``polarity > 0`` (tunnelling pulse of
        ``amplitude`` V on the tunnelling node), ``-I_inj`` where ``polarity < 0`` (drain pulse of
        ``amplitude`` V), 0 elsewhere. ``nominal=True`` uses the mismatch-free device (``dV_T = 0``)."""
        p = self.params
        q = torch.as_tensor(charge, dtype=self.dtype, device=self.device)
        pol = torch.as_tensor(polarity, device=self.device)
        amp = torch.as_tensor(amplitude, dtype=self.dtype, device=self.device)
        a_fn, b_fn = self._fn_ab
        v_fg_tun = (p.c_g * p.v_g_tun + self._c_tun * amp + q) / p.c_t
        i_tun = p.a_tun * fn_density((amp - v_fg_tun) / p.t_ox, a_fn, b_fn)
        dvt = 0.0 if nominal else self.delta_vt
        v_ov = (p.c_g * p.v_g_inj + q) / p.c_t - p.v_t0 - dvt
        v_ds = amp.clamp_min(0.0)
        i_ch = ekv_current(v_ov, v_ds, p.kappa, p.i_0, self._u_t)
        i_inj = i_ch * (p.beta_inj * torch.exp(-p.v_beta / (v_ds + p.v_delta) ** 2))
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        return torch.where(pol > 0, i_tun, torch.where(pol < 0, -i_inj, zero))

    def integrate_pulse(self, charge, polarity, amplitude, width, *, nominal: bool = False) -> Tensor:
        """Charge (C) at the end of one noise-free pulse of ``width`` s: classical RK4 with
        ``n_substeps`` steps per ``t_pulse`` of the longest width (at least ``n_substeps``)."""
        q = torch.as_tensor(charge, dtype=self.dtype, device=self.device)
        w = torch.as_tensor(width, dtype=self.dtype, device=self.device)
        n = self.params.n_substeps * max(1, math.ceil(float(w.max()) / self.params.t_pulse - 1e-9))
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
            mag = (mag + Q_E * torch.sqrt(mag / Q_E) * z_shot).clamp_min(0.0)
        dq = torch.sign(dq) * mag
        dq = torch.where(self.stuck == STUCK_NONE, dq, torch.zeros_like(dq))
        self.q_fg = torch.minimum(self.q_fg + dq, self.q_threshold)

    def _amplitude(self, amplitude, default: float, vmax: float, name: str, where: Tensor) -> Tensor:
        a = self._tensor("amplitude", default if amplitude is None else amplitude)
        used = a[where]
        if bool((used <= 0).any()) or bool((used > vmax).any()):
            raise ValueError(f"amplitude for {name} pulses must be in (0, {vmax:g}] V, "
                             f"got range [{float(used.min()):g}, {float(used.max()):g}] V")
        return a

    def apply_pulses(self, pulses, amplitude=None, width=None) -> Tensor:
        """Signed pulse counts: ``n > 0`` tunnelling pulses at ``amplitude`` (default ``v_tun``) on the
        tunnelling node (G up), ``n < 0`` injection drain pulses at ``amplitude`` (default ``v_inj``)
        (G down); ``width`` (s, default ``t_pulse``). Returns the noise-free conductance (S)."""
        p = self.params
        n = self._pulse_counts(pulses)
        w = self._tensor("width", p.t_pulse if width is None else width)
        if bool((w <= 0).any()):
            raise ValueError("width must be > 0 s")
        a_tun = self._amplitude(amplitude, p.v_tun, p.v_tun_max, "tunnelling", n > 0)
        a_inj = self._amplitude(amplitude, p.v_inj, p.v_inj_max, "injection", n < 0)
        amp = torch.where(n > 0, a_tun, a_inj)
        for k in range(int(n.abs().max())):
            self._pulse(torch.where(n > k, 1, torch.where(-n > k, -1, 0)), amp, w)
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
        time); a ``tolerance`` given without verify only sets ``converged`` in the result."""
        target = self.check_target(target_conductance, clip)
        if verify:
            tol, max_pulses = self._check_verify_args(tolerance, max_pulses)
            return self._program_ispp(target, tol, max_pulses)
        if tolerance is not None:
            tolerance = check_scalar("tolerance", tolerance, low=0.0, low_open=True)
        max_pulses = int(check_scalar("max_pulses", max_pulses, low=1))
        p = self.params
        q_target = p.charge_of_conductance(target)
        pol = torch.sign(q_target - self.q_fg).to(torch.int64)
        amp = torch.where(pol > 0, torch.full_like(target, p.v_tun), torch.full_like(target, p.v_inj))
        t_need = torch.where(pol != 0, self._nominal_time(self.q_fg, q_target, pol, amp),
                             torch.zeros_like(target))
        n = torch.ceil(t_need / p.t_pulse - 1e-9).clamp(0, max_pulses).to(torch.int64)
        width = torch.where(n > 0, t_need / n.clamp_min(1), torch.full_like(t_need, p.t_pulse))
        for k in range(int(n.max())):
            self._pulse(torch.where(n > k, pol, 0), amp, width)
        return self._result(self._g_of_q(self.q_fg), target, n, tolerance)

    def _program_ispp(self, target: Tensor, tol: float, max_pulses: int) -> ProgramResult:
        p = self.params
        pulses = torch.zeros(self.shape, dtype=torch.int64, device=self.device)
        # guard band: accept a noisy verify read only verify_guard read-noise sigmas inside the tolerance
        accept = (tol - p.verify_guard * p.read_noise * target).clamp_min(0.5 * tol)
        g_read = self.read()
        active = (g_read - target).abs() > accept
        direction = torch.where(target >= g_read, 1, -1)
        step = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        for _ in range(max_pulses):
            if not bool(active.any()):
                break
            amp = torch.where(direction > 0, (p.ispp_v_tun_start + step * p.ispp_dv_tun).clamp_max(p.v_tun_max),
                              (p.ispp_v_inj_start + step * p.ispp_dv_inj).clamp_max(p.v_inj_max))
            self._pulse(torch.where(active, direction, 0), amp, p.t_pulse)
            pulses += active.long()
            g_read = self.read()
            done = (g_read - target).abs() <= accept
            new_dir = torch.where(target >= g_read, 1, -1)
            overshoot = active & ~done & (new_dir != direction)
            step = torch.where(overshoot, torch.zeros_like(step), torch.where(active, step + 1.0, step))
            direction = torch.where(overshoot, new_dir, direction)
            active = active & ~done
        return self._result(self._g_of_q(self.q_fg), target, pulses, tol)
