"""PCM parameters, presets and the provenance of every preset value (model: :mod:`devices.pcm`).

Window bottom. aihwkit's ``PCMLikeNoiseModel`` maps weights onto a differential pair whose
unused device sits at 0 S; a single PCM device in its RESET state still conducts. Both presets
take ``g_min = 0.25 µS`` from Sandia CrossSim's ``PCM_Joshi`` device model of the same Joshi
et al. (2020) devices (suggested on/off ratio 100 over 0.25–25 µS). Programming noise is
clipped at 0 S (aihwkit), which biases targets near the window bottom upward: with
``σ_prog(g_min) = 0.283 µS`` the mean programmed conductance at a 0.25 µS target is
``E[max(G_T + σZ, 0)] = G_T Φ(G_T/σ) + σ φ(G_T/σ) = 0.279 µS`` (+11.8 %), at 1 µS +0.04 %
(tested in ``tests/test_pcm.py``). The previous default, 0.1 µS (no source), gave +63 %.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import CommonParams
from .provenance import assumed, check_provenance, measured, setting
from .validation import check_rate, check_real

__all__ = ["PCMParams", "PRESETS", "PROVENANCE"]


@dataclass(frozen=True)
class PCMParams(CommonParams):
    """Parameters of :class:`devices.pcm.PCM` (SI units; equations in its module docstring).

    Attributes:
        g_min, g_max, v_read, p_stuck_on, p_stuck_off, retention_beyond_data: see
            :class:`devices.base.CommonParams` (the drift law has no data limit).
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

    g_min: float = 0.25e-6
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

    bounds = {**CommonParams.bounds, "g_min": (0.0, 1.0), "g_max": (0.0, 1.0, True), "v_read": (0.0, 2.0, True),
              "prog_c0": (-1e-3, 1e-3), "prog_c1": (-1e3, 1e3), "prog_c2": (-1e9, 1e9), "prog_g_ref": (0.0, 1.0, True),
              "t0": (0.0, 1e6, True), "nu_mu_slope": (-1.0, 1.0), "nu_mu_offset": (-1.0, 1.0),
              "nu_sigma_slope": (-1.0, 1.0), "nu_sigma_offset": (-1.0, 1.0), "t_read": (0.0, 1.0, True),
              "v0": (0.05, 10.0)}

    def _validate_family(self) -> None:
        check_real("prog_g_ref", self.prog_g_ref, low=0.0, low_open=True)
        check_real("t0", self.t0, low=0.0, low_open=True)
        check_real("t_read", self.t_read, low=0.0, low_open=True)
        for lo, hi in (("nu_mu_min", "nu_mu_max"), ("nu_sigma_min", "nu_sigma_max")):
            check_real(lo, getattr(self, lo), low=0.0, high=1.0)
            check_real(hi, getattr(self, hi), low=getattr(self, lo), high=1.0)
        check_real("read_q_coeff", self.read_q_coeff, low=0.0, high=1.0)
        check_real("read_q_exponent", self.read_q_exponent, low=0.0, high=5.0)
        check_real("read_q_max", self.read_q_max, low=0.0, high=1.0)
        check_real("d2d_sigma", self.d2d_sigma, low=0.0, high=1.0)
        check_real("set_dg0", self.set_dg0, low=0.0, high=self.g_max, low_open=True)
        check_real("set_exponent", self.set_exponent, low=0.0, high=10.0)
        check_real("c2c_sigma", self.c2c_sigma, low=0.0, high=5.0)
        check_real("g_sat_ratio", self.g_sat_ratio, low=1.0, high=2.0)
        check_rate("reset_sigma", self.reset_sigma)
        check_real("verify_read_noise", self.verify_read_noise, low=0.0, high=0.5)
        check_real("verify_margin", self.verify_margin, low=0.0, high=10.0)
        check_real("v0", self.v0, low=0.0, high=10.0, low_open=True)


_JOSHI = "Nandakumar et al. ICECS 2019 / Joshi et al. Nat. Commun. 11, 2473 (2020), aihwkit PCMLikeNoiseModel"
_CROSSSIM = "Sandia CrossSim PCM_Joshi (quadratic fit to Joshi 2020 Fig. 3(b))"
_PULSE = ("typical literature value after Nandakumar et al., J. Appl. Phys. 124, 152135 (2018) "
          "(cumulative SET / abrupt RESET), not a fit of one device")
PRESETS = {
    "joshi2020_pcm": PCMParams(),
    "crosssim_pcm_joshi": PCMParams(prog_fit_normalised=False, prog_c0=0.28638599e-6, prog_c1=0.07585724,
                                    prog_c2=-0.00178767e6),
}
_COMMON = {
    "g_min": measured(_CROSSSIM + ": suggested window 0.25-25 uS (on/off 100) for Joshi's devices"),
    "g_max": measured(_JOSHI + " (G_max = 25 uS)"),
    "v_read": setting("read voltage"),
    "p_stuck_on": setting("no faults by default"),
    "p_stuck_off": setting("no faults by default"),
    "retention_beyond_data": setting("unused: the aihwkit drift law is defined for all t"),
    **{k: measured(_JOSHI) for k in ("prog_c0", "prog_c1", "prog_c2", "prog_g_ref", "t0", "nu_mu_slope",
                                     "nu_mu_offset", "nu_mu_min", "nu_mu_max", "nu_sigma_slope", "nu_sigma_offset",
                                     "nu_sigma_min", "nu_sigma_max", "t_read", "read_q_coeff", "read_q_exponent",
                                     "read_q_max")},
    "prog_fit_normalised": measured(_JOSHI + " (polynomial in G/G_max)"),
    "d2d_sigma": measured("0: the programming-noise fit already holds all measured variability (" + _JOSHI + ")"),
    "set_dg0": assumed(_PULSE + ": 1.5 uS per 50-ns SET pulse from RESET"),
    "set_exponent": assumed(_PULSE + ": linear saturation"),
    "c2c_sigma": measured("relative SET-step noise of aihwkit PCMPresetDevice (Nandakumar et al., Front. "
                          "Neurosci. 14, 406 (2020))"),
    "g_sat_ratio": assumed("fully crystalline state 5 % above g_max so that g_max is reachable by pulses"),
    "reset_sigma": assumed("10 % spread of the RESET level (typical)"),
    "verify_read_noise": assumed("averaged verify read, 0.2 % (typical)"),
    "verify_margin": setting("write-verify guard band"),
    "v0": assumed("Poole-Frenkel voltage scale typical of Ielmini & Zhang, J. Appl. Phys. 102, 054517 (2007)"),
}
PROVENANCE = {
    "joshi2020_pcm": _COMMON,
    "crosssim_pcm_joshi": {**_COMMON, **{k: measured(_CROSSSIM) for k in ("prog_c0", "prog_c1", "prog_c2")},
                           "prog_fit_normalised": measured(_CROSSSIM + " (polynomial in G in S)"),
                           "prog_g_ref": setting("unused by the CrossSim polynomial (absolute G)")},
}
for _name, _params in PRESETS.items():
    check_provenance(_params, PROVENANCE[_name], _name)
