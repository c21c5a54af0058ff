"""RRAM parameters, presets and the provenance of every preset value.

Presets
-------
``"wan2022_neurram"`` (default): Wan et al., Nature 608, 504 (2022) (NeuRRAM) programming and
relaxation statistics as digitised by IBM aihwkit (``ReRamWan2022NoiseModel``; σ polynomials at
1 s / 1 day / 2 days, G_max = 40 µS), on the Stanford–PKU gap model with the Guan/Yu/Wong
parameter set and *its* generation–recombination rate law (ASU/Stanford Verilog-A and the
University of Siena ``stanfordmemristor`` class: Ea_g = 1.501 eV, Ea_r = 1.5 eV, no F_min,
T0 = 298 K).

``"wan2022_crosssim"``: the same device with the 1 s programming spread of Sandia CrossSim's
independent digitisation of the same data (``RRAM_Wan``: cubic fit to Extended Data Fig. 3,
``σ_G = 1.536e-4 G³ − 1.167e-2 G² + 0.2374 G + 1.053`` µS, G in µS, stated for G ≤ 39.26 µS),
42 % / 17 % / 55 % larger than aihwkit's at 2 / 20 / 40 µS. Stored as a polynomial in
``G / 40 µS`` (coefficients ``a_k·40^k``). CrossSim digitised the 1 s data only, so the growth of
the spread with time (relaxation) is aihwkit's variance increase over its own 1 s fit. The
window is kept at 40 µS so that the two presets differ only in the digitisation (the cubic is
evaluated 1.9 % beyond CrossSim's 39.26 µS limit there). Sweeping ``preset`` over both states
how much a prediction depends on the digitisation.

``"stanford_pku_memtorch"``: the Stanford v1.0 parameter set as shipped in MemTorch's
``Stanford_PKU`` model, with *its* single-sinh rate law and F_min gate; the statistics reuse the
Wan shape scaled to its 5 µS–1.8 mS window (assumed: no published fit for this set).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .base import CommonParams
from .provenance import assumed, check_provenance, derived, measured, setting
from .rram_physics import GapParams, gap_conductance
from .validation import check_int, check_real

__all__ = ["RRAMParams", "PRESETS", "PROVENANCE", "WAN2022_NEURRAM", "WAN2022_CROSSSIM", "STANFORD_PKU_MEMTORCH",
           "RATE_LAWS"]

RATE_LAWS = ("generation_recombination", "single_sinh")

#: aihwkit ReRamWan2022NoiseModel σ(G)/µS polynomials in G/40 µS (Wan et al. 2022)
_WAN_1S = (0.348, 16.030, -43.853, 45.393, -16.815)
_WAN_1D = (0.701, 22.086, -50.773, 47.095, -16.458)
_WAN_2D = (0.782, 20.274, -43.507, 37.062, -11.934)
#: CrossSim RRAM_Wan cubic (µS, G in µS) re-expressed in G/40 µS: a_k · 40^k
_CROSSSIM_1S = (1.053, 0.2374 * 40.0, -1.167e-2 * 40.0**2, 1.536e-4 * 40.0**3)


@dataclass(frozen=True)
class RRAMParams(CommonParams):
    """RRAM parameters (SI units; energies in eV). Defaults = preset ``wan2022_neurram``.

    Gap model: ``i0`` (A), ``g0`` (m), ``v0`` (V), ``vel0`` (m/s), ``ea`` (eV, vacancy
    generation; the single energy of ``single_sinh``), ``ea_r`` (eV, recombination; used by
    ``generation_recombination`` only), ``a0``, ``t_ox`` (m), ``gamma0``, ``beta_gamma``,
    ``f_min`` (V/m; 0 = no field gate), ``r_th`` (K/W), ``t_amb`` (K), ``gap_min``/``gap_max``
    (m), ``rate_law`` (:mod:`devices.rram_physics`). Pulses: ``v_set``, ``v_reset`` (V),
    ``i_compliance`` (A), ``t_pulse`` (s). Write-verify ladder: ``verify_*`` (module
    :mod:`devices.rram`). Statistics: ``prog_sigma_1s`` (µS polynomial in ``G/prog_g_ref`` of the
    programming spread 1 s after programming), ``relax_sigma_1s``, ``prog_sigma_1d``,
    ``prog_sigma_2d`` (the aihwkit Wan fits at 1 s, 1 day, 2 days whose variance increase over
    1 s is the relaxation), ``d2d_sigma``, ``d2d_rate_sigma``, ``c2c_sigma``, ``read_noise``
    (fraction of g_max).
    """

    g_min: float = 1e-6  # S
    g_max: float = 40e-6  # S
    v_read: float = 0.2  # V
    # --- Stanford-PKU gap model, Guan/Yu/Wong parameter set with its generation-recombination law
    rate_law: str = "generation_recombination"
    i0: float = 61.4e-6  # A
    g0: float = 0.275e-9  # m
    v0: float = 0.43  # V
    vel0: float = 150.0  # m/s
    ea: float = 1.501  # eV (generation)
    ea_r: float = 1.5  # eV (recombination)
    a0: float = 0.25e-9  # m
    t_ox: float = 5e-9  # m
    gamma0: float = 16.5
    beta_gamma: float = 1.25
    f_min: float = 0.0  # V/m (no field gate in this set)
    r_th: float = 0.23e-9 / 0.318e-15  # K/W = τ_th / C_th
    t_amb: float = 298.0  # K
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
    verify_reads: int = 4  # fewest reads averaged by a verify step (RRAM.verify_statistics)
    verify_margin: float = 3.0  # guard band of the verify test in σ_verify
    # --- statistics (µS polynomials in G/prog_g_ref)
    prog_g_ref: float = 40e-6  # S
    prog_sigma_1s: tuple = _WAN_1S
    relax_sigma_1s: tuple = _WAN_1S
    prog_sigma_1d: tuple = _WAN_1D
    prog_sigma_2d: tuple = _WAN_2D
    d2d_sigma: float = 0.10
    d2d_rate_sigma: float = 0.2
    c2c_sigma: float = 0.3
    read_noise: float = 0.01

    choices = {**CommonParams.choices, "rate_law": RATE_LAWS}
    bounds = {**CommonParams.bounds, "g_min": (0.0, 1.0), "g_max": (0.0, 1.0, True), "v_read": (0.0, 2.0, True),
              "i0": (0.0, 1.0, True), "g0": (1e-12, 1e-8), "v0": (0.01, 10.0), "vel0": (0.0, 1e6, True),
              "ea": (0.0, 10.0, True), "ea_r": (0.0, 10.0, True), "a0": (1e-12, 1e-9), "t_ox": (1e-9, 1e-6),
              "gamma0": (0.0, 100.0, True), "beta_gamma": (0.0, 100.0), "f_min": (0.0, 1e11), "r_th": (0.0, 1e9),
              "t_amb": (1.0, 1000.0), "gap_min": (0.0, 1e-8), "gap_max": (0.0, 1e-8, True), "v_set": (0.0, 10.0, True),
              "i_compliance": (0.0, 1.0, True), "v_reset": (-10.0, 0.0), "t_pulse": (0.0, 1.0, True),
              "verify_i_start": (0.0, 1.0, True), "verify_i_factor": (1.0, 10.0, True),
              "verify_i_max": (0.0, 1.0, True), "verify_v_reset_start": (-10.0, 0.0), "verify_v_step": (0.0, 1.0, True),
              "verify_v_max": (0.0, 10.0, True), "max_gap_step": (1e-13, 1e-9), "verify_margin": (0.0, 10.0),
              "prog_g_ref": (0.0, 1.0, True), "d2d_sigma": (0.0, 3.0), "d2d_rate_sigma": (0.0, 3.0),
              "c2c_sigma": (0.0, 3.0), "read_noise": (0.0, 1.0)}

    def __post_init__(self):
        # TOML/JSON give lists: keep the values, as a tuple (each entry is type-checked in validate)
        for name in ("prog_sigma_1s", "relax_sigma_1s", "prog_sigma_1d", "prog_sigma_2d"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def _validate_family(self) -> None:
        pos = dict(low=0.0, low_open=True)
        for name in ("i0", "g0", "v0", "vel0", "ea", "ea_r", "a0", "t_ox", "gamma0", "t_amb", "gap_max",
                     "t_pulse", "prog_g_ref", "verify_v_step", "verify_v_max", "v_set", "i_compliance",
                     "verify_i_start", "verify_i_max", "max_gap_step"):
            check_real(name, getattr(self, name), **pos)
        for name in ("beta_gamma", "r_th", "gap_min", "f_min", "d2d_sigma", "d2d_rate_sigma", "c2c_sigma"):
            check_real(name, getattr(self, name), low=0.0)
        check_real("read_noise", self.read_noise, low=0.0, high=1.0)
        for name in ("ea", "ea_r"):
            check_real(name, getattr(self, name), low=0.0, high=10.0, low_open=True)
        check_real("t_amb", self.t_amb, low=1.0, high=1000.0)
        for name in ("d2d_sigma", "d2d_rate_sigma", "c2c_sigma"):
            check_real(name, getattr(self, name), low=0.0, high=3.0)
        for name in ("v_reset", "verify_v_reset_start"):
            check_real(name, getattr(self, name), high=0.0, high_open=True)
        check_real("verify_i_factor", self.verify_i_factor, low=1.0, high=10.0, low_open=True)
        check_int("verify_reads", self.verify_reads, low=1, high=1024)
        check_real("verify_margin", self.verify_margin, low=0.0, high=10.0)
        if not self.gap_max > self.gap_min:
            raise ValueError(f"gap_max must be > gap_min, got {self.gap_min:g} m, {self.gap_max:g} m")
        if not self.gamma0 - self.beta_gamma * (self.gap_max / 1e-9) ** 3 > 0:
            raise ValueError(f"gamma0 - beta_gamma (gap_max/1 nm)^3 must be > 0 (field enhancement), got gamma0="
                             f"{self.gamma0:g}, beta_gamma={self.beta_gamma:g}, gap_max={self.gap_max:g} m")

    def _validate_common(self) -> None:
        super()._validate_common()
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
                         self.beta_gamma, self.f_min, self.r_th, self.t_amb, self.gap_min, self.gap_max,
                         self.ea_r, self.rate_law)


WAN2022_NEURRAM = RRAMParams()
WAN2022_CROSSSIM = replace(WAN2022_NEURRAM, prog_sigma_1s=_CROSSSIM_1S)

_MEMTORCH_SCALE = (1 / 542.0) / 40e-6
STANFORD_PKU_MEMTORCH = replace(
    WAN2022_NEURRAM, g_min=1 / 218586.0, g_max=1 / 542.0, v_read=0.1, rate_law="single_sinh", i0=1e-3,
    g0=0.25e-9, v0=0.25, vel0=10.0, ea=0.6, ea_r=0.6, t_ox=12e-9, gamma0=16.0, beta_gamma=0.8, f_min=1.4e9,
    r_th=2.1e3, t_amb=298.0, gap_min=0.2e-9, gap_max=1.7e-9, v_set=1.8, v_reset=-1.6, i_compliance=1e-3,
    verify_i_start=50e-6, verify_i_factor=1.25, verify_i_max=20e-3, verify_v_reset_start=-1.2, prog_g_ref=1 / 542.0,
    prog_sigma_1s=tuple(c * _MEMTORCH_SCALE for c in _WAN_1S),
    relax_sigma_1s=tuple(c * _MEMTORCH_SCALE for c in _WAN_1S),
    prog_sigma_1d=tuple(c * _MEMTORCH_SCALE for c in _WAN_1D),
    prog_sigma_2d=tuple(c * _MEMTORCH_SCALE for c in _WAN_2D),
)

PRESETS = {"wan2022_neurram": WAN2022_NEURRAM, "wan2022_crosssim": WAN2022_CROSSSIM,
           "stanford_pku_memtorch": STANFORD_PKU_MEMTORCH}

# ----------------------------------------------------------------------------- provenance
_GUAN = ("Guan, Yu & Wong 2012 HfOx parameter set, as in the ASU/Stanford Verilog-A model and the Siena "
         "'stanfordmemristor' class")
_AIHW = "Wan et al., Nature 608, 504 (2022), aihwkit ReRamWan2022NoiseModel digitisation"
_SETTING = "operating choice of the simulated programming circuit"
_COMMON = {
    "g_min": assumed("HRS floor of the window; the Wan fit starts near 0 S"),
    "g_max": measured(_AIHW + " (G_max = 40 uS)"),
    "v_read": setting("read voltage"),
    "p_stuck_on": setting("no faults by default; Chen et al. 2015 measured 9.04 % SA1 (pass it to use it)"),
    "p_stuck_off": setting("no faults by default; Chen et al. 2015 measured 1.75 % SA0 (pass it to use it)"),
    "retention_beyond_data": setting("Wan's retention data end at 2 days: refuse beyond unless chosen"),
    "rate_law": measured("the rate law of " + _GUAN + " (vacancy generation - recombination)"),
    **{k: measured(_GUAN) for k in ("i0", "g0", "v0", "vel0", "ea", "ea_r", "a0", "t_ox", "gamma0", "beta_gamma",
                                    "gap_min", "gap_max")},
    "f_min": measured("no minimum-field gate in " + _GUAN),
    "r_th": derived("tau_th / C_th = 0.23 ns / 0.318 fJ/K of " + _GUAN),
    "t_amb": measured("T0 = 298 K of " + _GUAN),
    **{k: setting(_SETTING) for k in ("v_set", "i_compliance", "v_reset", "t_pulse", "verify_i_start",
                                      "verify_i_factor", "verify_i_max", "verify_v_reset_start", "verify_v_step",
                                      "verify_v_max", "verify_reads", "verify_margin")},
    "max_gap_step": setting("numerical step bound of the gap integrator"),
    "prog_g_ref": measured(_AIHW + " (reference G_max of the polynomials)"),
    "prog_sigma_1s": measured(_AIHW + ", 1 s fit"),
    "relax_sigma_1s": measured(_AIHW + ", 1 s fit (baseline of the relaxation growth)"),
    "prog_sigma_1d": measured(_AIHW + ", 1 day fit"),
    "prog_sigma_2d": measured(_AIHW + ", 2 day fit"),
    "d2d_sigma": assumed("typical lognormal D2D spread of the current prefactor (0.05-0.2 in filamentary oxides)"),
    "d2d_rate_sigma": assumed("typical D2D spread of the switching speed"),
    "c2c_sigma": assumed("typical cycle-to-cycle spread of one pulse's gap change"),
    "read_noise": assumed("aihwkit's recommended short-term read noise for Wan's chip, 1 % of G_max"),
}
_MEMTORCH = "Stanford v1.0 parameter set as shipped in MemTorch Stanford_PKU"
PROVENANCE = {
    "wan2022_neurram": _COMMON,
    "wan2022_crosssim": {**_COMMON, "prog_sigma_1s": measured(
        "Wan et al. 2022 Extended Data Fig. 3, Sandia CrossSim RRAM_Wan cubic digitisation (1 s)")},
    "stanford_pku_memtorch": {
        **_COMMON,
        "g_min": measured(_MEMTORCH + " (r_off = 218.6 kOhm)"),
        "g_max": measured(_MEMTORCH + " (r_on = 542 Ohm)"),
        "rate_law": measured("the single-sinh law with F_min of the " + _MEMTORCH),
        **{k: measured(_MEMTORCH) for k in ("i0", "g0", "v0", "vel0", "ea", "a0", "t_ox", "gamma0", "beta_gamma",
                                            "f_min", "r_th", "gap_min", "gap_max")},
        "ea_r": setting("unused by the single_sinh law (kept equal to ea)"),
        "t_amb": measured(_MEMTORCH + " (T0 = 298 K)"),
        **{k: assumed("Wan 2022 fit shape scaled to this window (no published fit for this set)")
           for k in ("prog_g_ref", "prog_sigma_1s", "relax_sigma_1s", "prog_sigma_1d", "prog_sigma_2d")},
    },
}
for _name, _params in PRESETS.items():
    check_provenance(_params, PROVENANCE[_name], _name)
