"""Floating-gate pFET synapse parameters, presets and provenance (model: :mod:`devices.floating_gate`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from .base import CommonParams
from .floating_gate_physics import K_B, Q_E, oxide_capacitance, thermal_voltage
from .provenance import assumed, check_provenance, measured, setting
from .validation import check_int, check_rate, check_real

__all__ = ["FloatingGateParams", "PRESETS", "PROVENANCE"]


@dataclass(frozen=True)
class FloatingGateParams(CommonParams):
    """Parameters of :class:`devices.floating_gate.FloatingGate` (SI; defaults = ``"hasler_fg_synapse"``).

    Read (pFET): ``temperature`` (K), ``kappa`` (gate coupling to the surface potential), ``i_0``
    (A, current at threshold), ``v_t0`` (V, magnitude of the nominal threshold), ``sigma_vt`` (V,
    D2D threshold mismatch), ``c_t``/``c_g`` (F, total / control-gate capacitance), ``v_well``
    (V, source and well), ``v_g_read`` (V, control gate during reads), ``read_noise`` (relative).
    Injection (potentiation): ``beta_inj``, ``v_beta`` (V^2), ``v_delta`` (V), ``v_inj`` (V,
    nominal drain pulse below the source), ``v_g_inj`` (V, control gate during injection),
    ``v_inj_max`` (V). Tunnelling (depression): ``t_ox`` (m), ``a_tun`` (m^2), ``phi_b`` (eV),
    ``m_eff_ratio`` (m*/m0), ``v_tun`` (V, nominal pulse), ``v_g_tun`` (V, control gate during
    tunnelling), ``v_tun_max`` (V). Pulses: ``t_pulse`` (s), ``n_substeps`` (RK4 steps per
    pulse), ``c2c_sigma`` (lognormal sigma of the transferred charge), ``shot_noise``. ISPP:
    ``ispp_v_tun_start``, ``ispp_dv_tun``, ``ispp_v_inj_start``, ``ispp_dv_inj`` (V),
    ``verify_guard`` (guard band in read-noise sigmas). Retention: ``q_neutral`` (C),
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
    v_well: float = 2.5
    v_g_read: float = (2.5 - 0.7 + 0.1675) / 0.75
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
    v_g_inj: float = (2.5 - 0.7 - 1.025) / 0.75
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

    _V = (-20.0, 20.0)
    bounds = {**CommonParams.bounds, "g_min": (0.0, 1.0), "g_max": (0.0, 1.0, True), "v_read": (0.0, 5.0, True),
              "temperature": (1.0, 600.0), "i_0": (0.0, 1.0, True), "v_t0": (0.05, 3.0), "c_t": (1e-18, 1e-9),
              "c_g": (0.0, 1e-9, True), "v_well": _V, "v_g_read": _V, "v_g_tun": _V, "v_g_inj": _V,
              "t_ox": (1e-9, 1e-6), "a_tun": (1e-18, 1e-8), "phi_b": (0.5, 10.0), "m_eff_ratio": (0.01, 10.0),
              "v_tun": (0.0, 100.0, True), "v_tun_max": (0.0, 100.0, True), "beta_inj": (0.0, 1.0, True),
              "v_beta": (0.0, 1e4, True), "v_delta": (0.0, 100.0), "v_inj": (0.0, 100.0, True),
              "v_inj_max": (0.0, 100.0, True), "t_pulse": (0.0, 1.0, True), "ispp_v_tun_start": (0.0, 100.0, True),
              "ispp_dv_tun": (0.0, 10.0, True), "ispp_v_inj_start": (0.0, 100.0, True),
              "ispp_dv_inj": (0.0, 10.0, True),
              "q_neutral": (-1e-13, 1e-13), "tau_ret_a": (0.0, 1e10, True), "ea_ret": (0.0, 5.0, True)}

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
        """Conductance (S) at the read bias when ``v_well - V_fg = V_T0`` (end of subthreshold)."""
        return self.i_0 * -math.expm1(-self.v_read / self.u_t) / self.v_read

    def charge_of_conductance(self, g):
        """Charge (C) that gives conductance ``g`` (S) on a mismatch-free device (inverse read law)."""
        log = torch.log if isinstance(g, torch.Tensor) else math.log
        v_fg = self.v_well - self.v_t0 - self.u_t / self.kappa * log(g / self.g_subthreshold_limit)
        return self.c_t * v_fg - self.c_g * self.v_g_read

    def conductance_of_charge(self, q):
        """Conductance (S) of a mismatch-free device storing charge ``q`` (C)."""
        exp = torch.exp if isinstance(q, torch.Tensor) else math.exp
        v_fg = (self.c_g * self.v_g_read + q) / self.c_t
        return self.g_subthreshold_limit * exp(self.kappa * (self.v_well - v_fg - self.v_t0) / self.u_t)

    def charge_window(self) -> tuple[float, float]:
        """``(Q_min, Q_max)`` (C): the charge window that maps onto ``[g_min, g_max]`` (``Q_min``
        gives ``g_max``: the pFET conducts more with more electrons on its gate)."""
        return self.charge_of_conductance(self.g_max), self.charge_of_conductance(self.g_min)

    def retention_time(self, temperature: float | None = None) -> float:
        """Median retention time ``tau_ret_a exp(E_a/(k_B T))`` (s) at ``temperature`` (K)."""
        t = self.temperature if temperature is None else check_real("temperature", temperature, low=0.0,
                                                                    low_open=True)
        return self.tau_ret_a * math.exp(self.ea_ret * Q_E / (K_B * t))

    @classmethod
    def from_charge_window(cls, q_min: float, q_max: float, **fields) -> "FloatingGateParams":
        """Parameters whose ``[g_min, g_max]`` is the image of the charge window ``[q_min, q_max]`` (C)."""
        q_min, q_max = check_real("q_min", q_min), check_real("q_max", q_max)
        base = cls(**fields)
        if not q_max > q_min:
            raise ValueError(f"q_max must be > q_min, got q_min={q_min:g} C, q_max={q_max:g} C")
        base._check_types()
        out = dataclasses.replace(base, g_min=base.conductance_of_charge(q_max),
                                  g_max=base.conductance_of_charge(q_min))
        out.validate()
        return out

    # ---------------------------------------------------------------- validation
    def _validate_family(self) -> None:
        pos = dict(low=0.0, low_open=True)
        check_real("temperature", self.temperature, low=1.0, high=600.0)
        check_real("kappa", self.kappa, low=0.0, high=1.0, low_open=True)
        for name in ("i_0", "c_t", "c_g", "t_ox", "a_tun", "phi_b", "m_eff_ratio", "v_tun", "v_tun_max",
                     "beta_inj", "v_beta", "v_inj", "v_inj_max", "t_pulse", "ispp_v_tun_start",
                     "ispp_dv_tun", "ispp_v_inj_start", "ispp_dv_inj", "tau_ret_a", "ea_ret"):
            check_real(name, getattr(self, name), **pos)
        check_real("v_tun_max", self.v_tun_max, low=0.0, high=100.0, low_open=True)
        check_real("v_inj_max", self.v_inj_max, low=0.0, high=100.0, low_open=True)
        for name in ("v_t0", "v_well", "v_g_read", "v_g_tun", "v_g_inj", "q_neutral"):
            check_real(name, getattr(self, name))
        check_real("sigma_vt", self.sigma_vt, low=0.0, high=0.5)
        check_real("v_delta", self.v_delta, low=0.0)
        check_real("beta_ret", self.beta_ret, low=0.0, high=1.0, low_open=True)
        check_real("sigma_ln_tau", self.sigma_ln_tau, low=0.0, high=5.0)
        check_real("c2c_sigma", self.c2c_sigma, low=0.0, high=2.0)
        check_real("verify_guard", self.verify_guard, low=0.0, high=10.0)
        check_rate("read_noise", self.read_noise)
        check_int("n_substeps", self.n_substeps, low=1, high=10_000)
        if not self.c_g + self.c_tun < self.c_t:
            raise ValueError(f"c_t must exceed c_g + c_tun = {self.c_g + self.c_tun:g} F "
                             f"(c_tun = eps_ox a_tun/t_ox), got c_t={self.c_t:g} F")
        for name, top in (("v_tun", "v_tun_max"), ("ispp_v_tun_start", "v_tun_max"), ("v_inj", "v_inj_max"),
                          ("ispp_v_inj_start", "v_inj_max")):
            if not getattr(self, name) <= getattr(self, top):
                raise ValueError(f"{name} must be in (0, {top}={getattr(self, top):g}] V, got {getattr(self, name):g}")

    def _validate_common(self) -> None:
        if not self.g_min > 0.0:
            raise ValueError(f"g_min must be > 0 S for a floating-gate device (G is exponential in Q), "
                             f"got {self.g_min:g}")
        super()._validate_common()
        lim = self.g_subthreshold_limit
        if not self.g_max < lim:
            raise ValueError(f"g_max must be below the subthreshold limit I_0(1-exp(-v_read/U_T))/v_read "
                             f"= {lim:.4g} S, got g_max={self.g_max:g} S")


def _preset_350nm_85c() -> FloatingGateParams:
    """0.35 um-class, 7 nm-oxide variant at 85 C (typical values, assumed; module docstring)."""
    return FloatingGateParams(
        temperature=358.15, kappa=0.75, i_0=2e-7, v_t0=0.55, sigma_vt=0.015, c_t=10e-15, c_g=7.5e-15,
        v_well=2.5, v_g_read=(2.5 - 0.55 + 0.21625) / 0.75, t_ox=7e-9, a_tun=0.1e-12, v_tun=7.4, v_tun_max=8.5,
        ispp_v_tun_start=6.7, ispp_dv_tun=0.07, v_g_inj=(2.5 - 0.55 - 0.95) / 0.75, beta_inj=5e-4, v_inj=4.3,
        v_inj_max=5.0, ispp_v_inj_start=3.4, ispp_dv_inj=0.07, read_noise=0.003,
    )


PRESETS = {"hasler_fg_synapse": FloatingGateParams(), "hasler_fg_350nm_85c": _preset_350nm_85c()}

_TYP = "typical value of Hasler-group pFET floating-gate synapses, not a fit of one paper's figure"
_CHOSEN = "chosen (not measured) so that a nominal pulse moves ~0.1 in ln G"
_COMMON = {
    "g_min": assumed("1 nS: nA-level subthreshold synapse (" + _TYP + ")"),
    "g_max": assumed("100 nS (" + _TYP + ")"),
    "v_read": setting("read voltage"),
    "p_stuck_on": setting("no faults by default"),
    "p_stuck_off": setting("no faults by default"),
    "retention_beyond_data": setting("unused: the Arrhenius retention law holds for all t"),
    "temperature": setting("operating temperature"),
    **{k: assumed(_TYP) for k in ("kappa", "i_0", "v_t0", "c_t", "c_g")},
    "sigma_vt": assumed("10 mV threshold mismatch (5-30 mV is the usual pre-verify range)"),
    "v_well": setting("source/well bias"),
    "v_g_read": setting("control-gate read bias (puts the window in subthreshold)"),
    "read_noise": assumed("0.2 % relative read noise (typical)"),
    "t_ox": assumed("10 nm tunnel oxide (typical)"),
    "a_tun": assumed("0.25 um^2 tunnelling junction (typical)"),
    "phi_b": measured("Si/SiO2 barrier 3.2 eV, Lenzlinger & Snow, J. Appl. Phys. 40, 278 (1969)"),
    "m_eff_ratio": measured("oxide effective mass 0.42 m0, Lenzlinger & Snow (1969)"),
    **{k: setting("pulse amplitude / bias of the programming circuit")
       for k in ("v_tun", "v_g_tun", "v_tun_max", "v_inj", "v_g_inj", "v_inj_max")},
    **{k: assumed("pFET injection efficiency constants, " + _CHOSEN) for k in ("beta_inj", "v_beta", "v_delta")},
    "t_pulse": setting("20 us programming pulse"),
    "n_substeps": setting("RK4 steps per pulse (numerics)"),
    "c2c_sigma": assumed("5 % cycle-to-cycle spread of the transferred charge (typical)"),
    "shot_noise": setting("electron-number noise on"),
    **{k: assumed("ISPP ladder, " + _CHOSEN) for k in ("ispp_v_tun_start", "ispp_dv_tun", "ispp_v_inj_start",
                                                       "ispp_dv_inj")},
    "verify_guard": setting("verify guard band"),
    "q_neutral": assumed("charge after UV erase taken as the reference 0 C"),
    "tau_ret_a": assumed("chosen so that (10 y/tau)^beta = 0.05 at 85 C (the usual < 10 % loss spec)"),
    "ea_ret": assumed("1.4 eV intrinsic charge loss usually attributed to Shiner et al., IRPS 1980"),
    "beta_ret": assumed("stretched-exponential exponent 0.5 (typical)"),
    "sigma_ln_tau": assumed("lognormal retention-time spread 0.3 (typical)"),
}
PROVENANCE = {
    "hasler_fg_synapse": _COMMON,
    "hasler_fg_350nm_85c": {**_COMMON, **{k: assumed("0.35 um-class scaled variant (typical values)")
                                          for k in ("kappa", "i_0", "v_t0", "c_t", "c_g", "sigma_vt", "t_ox",
                                                    "a_tun", "read_noise")}},
}
for _name, _params in PRESETS.items():
    check_provenance(_params, PROVENANCE[_name], _name)
