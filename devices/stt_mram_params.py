"""STT-MRAM parameters, presets and the provenance of every preset value (model: :mod:`devices.stt_mram`).

Presets (numbers below are the ones the tables mark measured/assumed):

* ``"pma_mtj_delta56"`` (default): Δ = 56, α = 0.028, M_s = 700 emu/cm³ = 7e5 A/m, P = 0.8,
  T = 300 K, free layer 25 nm × 25π nm × 1.4 nm -- the parameters listed in the
  ``zhuzibn/PMA_LLG`` README (a simulation code's parameters, not one measured junction);
  I_c0 = 81 µA from Sun (2000)/Khvalkovskiy (2013). R_P = RA / A = 2.55 kΩ with
  RA = 5 Ω µm² (UMN MTJ model), TMR0 = 150 % (``zhuzibn/SOT_STT_compact_model`` README),
  v_read = 0.1 V. Write: 1.5 × I_c0(P→AP) for 10 ns (the "≈1.5-2 × I_c0 at ~10 ns for
  WER < 1e-6" rule of thumb): WER(P→AP) ≈ 2.5e-6 at the median Δ. V_h = 0.5 V, τ0 = 1 ns and
  the I_c0(P→AP)/I_c0(AP→P) = 1.5 asymmetry are typical values from no single device
  (assumed). Reads last ``read_duration`` = 10 ns in the P→AP polarity (read disturb: a 0.1 V
  read drives 0.32 × I_c0(P→AP) through a P-state MTJ, flip probability ~1e-16 per read).
* ``"stochastic_mtj_delta25"``: the same stack with a low barrier Δ = 25 (τ_ret ≈ 72 s), a
  volatile/stochastic MTJ for retention studies and stochastic binary synapses in the style of
  Vincent et al., IEEE Trans. Biomed. Circuits Syst. (2015). Illustrative (Δ = 25 is chosen).
  Its 0.1 V read drives 0.72 × I_c0(P→AP): by Néel–Brown a P-state MTJ flips with ~0.9 % per
  10-ns read (64 % per 1 µs).
* ``"pma_mtj_delta56_x4"``: the default MTJ, four per cell (5 levels).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .base import CommonParams
from .provenance import assumed, check_provenance, derived, setting
from .stt_mram_physics import conductance_window, critical_current
from .validation import check_int, check_real

__all__ = ["STTMRAMParams", "stt_mram_params", "PRESETS", "PROVENANCE", "READ_POLARITIES"]

READ_POLARITIES = ("p_to_ap", "ap_to_p")
_AREA0 = 25e-9 * 25e-9 * math.pi      # m², zhuzibn/PMA_LLG free layer (= a 50 nm-diameter disc)
_R_P0 = 5e-12 / _AREA0                # Ω, RA = 5 Ω µm² (UMN MTJ model) over that area
_IC0_56 = critical_current(0.028, 56.0, 0.8, 300.0)


@dataclass(frozen=True)
class STTMRAMParams(CommonParams):
    """STT-MRAM cell parameters (SI). ``g_min``/``g_max`` are derived (see :mod:`devices.stt_mram`).

    Attributes:
        mtjs_per_cell: MTJs in parallel per synapse cell (1-64).
        r_p: median parallel-state resistance R_P (Ω).
        tmr0: zero-bias TMR ratio (1.5 = 150 %).
        v_h: bias at which the TMR halves (V).
        d2d_sigma: lognormal D2D spread of R_P (relative).
        delta: thermal stability factor Δ = E_b/(k_B T) (median over MTJs).
        d2d_delta_sigma: lognormal D2D spread of Δ (relative).
        tau0: attempt time τ0 (s).
        alpha: Gilbert damping α.
        polarization: spin polarisation P.
        ms: free-layer saturation magnetisation M_s (A/m).
        free_layer_volume: free-layer volume V_FL (m³).
        temperature: T (K).
        ic0_ratio_p_to_ap: I_c0(P→AP) / I_c0(AP→P).
        i_write: default write-current magnitude per MTJ (A).
        t_write: default write-pulse width (s).
        read_noise: relative Gaussian read noise (std / G).
        read_duration: length of one read (s), for the read disturb.
        read_polarity: direction the read current pushes the free layer: ``"p_to_ap"`` (it can
            flip P-state MTJs to AP) or ``"ap_to_p"``.
    """

    g_min: float = 1.0 / (_R_P0 * (1.0 + 1.5 / (1.0 + (0.1 / 0.5) ** 2)))
    g_max: float = 1.0 / _R_P0
    v_read: float = 0.1
    mtjs_per_cell: int = 1
    r_p: float = _R_P0
    tmr0: float = 1.5
    v_h: float = 0.5
    d2d_sigma: float = 0.03
    delta: float = 56.0
    d2d_delta_sigma: float = 0.05
    tau0: float = 1e-9
    alpha: float = 0.028
    polarization: float = 0.8
    ms: float = 7.0e5
    free_layer_volume: float = _AREA0 * 1.4e-9
    temperature: float = 300.0
    ic0_ratio_p_to_ap: float = 1.5
    i_write: float = 1.5 * 1.5 * _IC0_56
    t_write: float = 1e-8
    read_noise: float = 0.005
    read_duration: float = 1e-8
    read_polarity: str = "p_to_ap"

    choices = {**CommonParams.choices, "read_polarity": READ_POLARITIES}
    bounds = {**CommonParams.bounds, "g_min": (0.0, 10.0), "g_max": (0.0, 10.0, True), "v_read": (0.0, 10.0, True),
              "tmr0": (0.0, 100.0, True), "v_h": (0.01, 10.0), "polarization": (0.01, 1.0), "alpha": (1e-4, 1.0),
              "tau0": (1e-15, 1e-6), "ms": (1e3, 1e7), "free_layer_volume": (1e-27, 1e-18),
              "temperature": (1.0, 1000.0)}

    @property
    def ic0_ap_to_p(self) -> float:
        """Critical current for AP→P switching (A), from :func:`critical_current`."""
        return critical_current(self.alpha, self.delta, self.polarization, self.temperature)

    @property
    def ic0_p_to_ap(self) -> float:
        """Critical current for P→AP switching (A)."""
        return self.ic0_ratio_p_to_ap * self.ic0_ap_to_p

    def _validate_family(self) -> None:
        check_int("mtjs_per_cell", self.mtjs_per_cell, low=1, high=64)
        check_real("r_p", self.r_p, low=1.0, high=1e9)
        check_real("tmr0", self.tmr0, low=0.0, high=100.0, low_open=True)
        check_real("v_h", self.v_h, low=0.0, high=10.0, low_open=True)
        check_real("d2d_sigma", self.d2d_sigma, low=0.0, high=0.5)
        check_real("delta", self.delta, low=1.0, high=300.0)
        check_real("d2d_delta_sigma", self.d2d_delta_sigma, low=0.0, high=0.5)
        check_real("tau0", self.tau0, low=0.0, high=1e-6, low_open=True)
        check_real("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        check_real("polarization", self.polarization, low=0.0, high=1.0, low_open=True)
        check_real("ms", self.ms, low=0.0, high=1e7, low_open=True)
        check_real("free_layer_volume", self.free_layer_volume, low=0.0, high=1e-18, low_open=True)
        check_real("temperature", self.temperature, low=0.0, high=1000.0, low_open=True)
        check_real("ic0_ratio_p_to_ap", self.ic0_ratio_p_to_ap, low=0.1, high=10.0)
        check_real("i_write", self.i_write, low=0.0, high=1.0, low_open=True)
        check_real("t_write", self.t_write, low=0.0, high=1.0, low_open=True)
        check_real("read_noise", self.read_noise, low=0.0, high=0.5)
        check_real("read_duration", self.read_duration, low=0.0, high=1.0, low_open=True)
        check_real("v_read", self.v_read, low=0.0, high=10.0, low_open=True)

    def _validate_common(self) -> None:
        g_min, g_max = conductance_window(self.r_p, self.tmr0, self.v_h, self.v_read, self.mtjs_per_cell)
        for name, have, want in (("g_min", self.g_min, g_min), ("g_max", self.g_max, g_max)):
            if abs(have - want) > 1e-9 * want:
                raise ValueError(
                    f"{name} = {have:.9g} S is derived from r_p, tmr0, v_h, v_read, mtjs_per_cell (expected "
                    f"{want:.9g} S); set those fields instead of {name} (or build params with stt_mram_params())"
                )
        super()._validate_common()


def stt_mram_params(**fields) -> STTMRAMParams:
    """An :class:`STTMRAMParams` with ``g_min``/``g_max`` computed from the MTJ numbers."""
    if "g_min" in fields or "g_max" in fields:
        raise ValueError("g_min/g_max are derived from r_p, tmr0, v_h, v_read, mtjs_per_cell; "
                         "do not pass them")
    p = STTMRAMParams(**fields)
    p._check_types()
    p._validate_family()
    g_min, g_max = conductance_window(p.r_p, p.tmr0, p.v_h, p.v_read, p.mtjs_per_cell)
    p = dataclasses.replace(p, g_min=g_min, g_max=g_max)
    p.validate()
    return p


def _pma_preset(delta: float, mtjs_per_cell: int = 1) -> STTMRAMParams:
    """PMA MTJ from the zhuzibn/PMA_LLG README numbers (Δ, α, M_s, P, T, free-layer geometry)."""
    area, ra = _AREA0, 5e-12                          # m² (50 nm-diameter disc), Ω m² (5 Ω µm²)
    alpha, pol, temp = 0.028, 0.8, 300.0
    ic0_p_to_ap = 1.5 * critical_current(alpha, delta, pol, temp)
    return stt_mram_params(
        mtjs_per_cell=mtjs_per_cell, r_p=ra / area, tmr0=1.5, v_h=0.5, v_read=0.1, delta=delta,
        alpha=alpha, polarization=pol, ms=7.0e5, free_layer_volume=area * 1.4e-9, temperature=temp,
        ic0_ratio_p_to_ap=1.5, i_write=1.5 * ic0_p_to_ap, t_write=10e-9,
    )


PRESETS = {
    "pma_mtj_delta56": _pma_preset(56.0),
    "stochastic_mtj_delta25": _pma_preset(25.0),
    "pma_mtj_delta56_x4": _pma_preset(56.0, mtjs_per_cell=4),
}

_LLG = "zhuzibn/PMA_LLG README (parameters of a simulation code, not of one measured junction)"
_COMMON = {
    "g_min": derived("computed: n / (R_P (1 + TMR(v_read)))"),
    "g_max": derived("computed: n / R_P"),
    "v_read": setting("read voltage"),
    "p_stuck_on": setting("no faults by default"),
    "p_stuck_off": setting("no faults by default"),
    "retention_beyond_data": setting("unused: Neel-Brown retention holds for all t"),
    "mtjs_per_cell": setting("MTJs per synapse cell"),
    "r_p": assumed("RA = 5 Ohm um^2 of the UMN MTJ compact model over the 50-nm disc (no single measured device)"),
    "tmr0": assumed("TMR 150 % of the zhuzibn/SOT_STT_compact_model README (typical 100-250 %)"),
    "v_h": assumed("typical V_h = 0.5 V of the TMR(V) form (Zhang/Zhao PMA-MTJ compact model), no device fit"),
    "d2d_sigma": assumed("3 % R_P spread, no single source"),
    "delta": assumed(_LLG + ": Delta = 56"),
    "d2d_delta_sigma": assumed("5 % Delta spread, no single source"),
    "tau0": assumed("attempt time 1 ns usually quoted with Koch et al., PRL 2004; not fitted"),
    "alpha": assumed(_LLG),
    "polarization": assumed(_LLG),
    "ms": assumed(_LLG + ": 700 emu/cm^3"),
    "free_layer_volume": assumed(_LLG + ": 25 nm x 25pi nm x 1.4 nm"),
    "temperature": setting("operating temperature"),
    "ic0_ratio_p_to_ap": assumed("I_c0(P->AP)/I_c0(AP->P) = 1.5, typical asymmetry from no single device"),
    "i_write": setting("1.5 x I_c0(P->AP): the 1.5-2 x I_c0 at ~10 ns rule of thumb for WER < 1e-6"),
    "t_write": setting("write pulse width"),
    "read_noise": assumed("0.5 % relative read noise, no single source"),
    "read_duration": setting("sense time of one read"),
    "read_polarity": setting("read current in the P->AP direction"),
}
PROVENANCE = {
    "pma_mtj_delta56": _COMMON,
    "stochastic_mtj_delta25": {**_COMMON, "delta": assumed("Delta = 25 chosen for an illustrative stochastic MTJ")},
    "pma_mtj_delta56_x4": _COMMON,
}
for _name, _params in PRESETS.items():
    check_provenance(_params, PROVENANCE[_name], _name)
