r"""Volatile threshold-switching memristor: the mean-metastable-switch (MSS) model.

Model (Molter & Nugent 2016, "The generalized metastable switch memristor model"; the form
used by the MIF neuron of Kang et al., IEEE TCAS-I 2021, and its snnTorch code)::

    G(x)  = x / R_on + (1 − x) / R_off                        (S; state x ∈ [0, 1])
    I     = G(x) · V                                          (A; ohmic at fixed x)
    dx/dt = (1 − x) · σ((V' − v_on)/k_th) / τ_on − x · σ((v_off − V')/k_th) / τ
          = a − (a + b) · x,   a = σ((V' − v_on)/k_th)/τ_on,  b = σ((v_off − V')/k_th)/τ

with σ the logistic function and ``V' = V`` (polar device, ``bipolar=False``: a positive
voltage above ``v_on`` switches it ON, any voltage below ``v_off`` — including every negative
one — relaxes it OFF) or ``V' = |V|`` (``bipolar=True``: a symmetric threshold switch such as a
diffusive Ag or a Mott NbO₂ device, which turns ON above ``v_on`` in either polarity).
``τ_on = τ`` gives the one-time-constant Molter–Nugent form of the MIF paper; diffusive
switches turn ON much faster than they relax, which ``τ_on < τ`` expresses.

Regenerative switching (``feedback = ρ ∈ [0, 1]``, default 0 = the pure MSS above). The pure
MSS is linear in x at fixed V, so its steady state x∞(V) is unique: it has *no* bistability,
and a capacitor/current-source circuit around it cannot oscillate: for the (v, x) system of a
switch (with or without a series resistor) across a capacitor the divergence is at most
−G_b/C − (a + b) < 0 everywhere, so Bendixson's criterion excludes any periodic orbit. Its
v_on > v_off "hysteresis" is only the slowness of both rates inside the window.
Real threshold switches snap ON and OFF because a partly ON device heats / grows its filament
(thermal runaway in NbO₂, Ag filament growth), which lowers its threshold, and a partly OFF
one cools, which raises it. ``feedback`` models that by moving both thresholds with the state::

    a = σ((V' − v_on + ρ x (v_on − v_off)) / k_th) / τ_on
    b = σ((v_off + ρ (1 − x)(v_on − v_off) − V') / k_th) / τ

For ρ = 1 both become one hysteron threshold θ(x) = v_on − x (v_on − v_off): an OFF device
(x ≈ 0) switches ON above v_on, an ON device (x ≈ 1) holds down to v_off, and each transition
is regenerative. With ρ > 0 the update below is the exponential step with the thresholds
frozen at the step's starting x: still unconditionally stable, x ∈ [0, 1], differentiable;
exact only for ρ = 0.

Exact update. For a voltage held fixed over a step Δt the ODE is linear in x, so::

    x(t + Δt) = x∞ + (x(t) − x∞) · exp(−(a + b) Δt),   x∞ = a / (a + b)

(:func:`volatile_step`). It is exact, unconditionally stable (x stays a convex combination of
x and x∞ ∈ (0, 1) for any Δt ≥ 0) and differentiable. The rates are carried as logarithms
(``log σ(z) = −softplus(−z)``): ``x∞ = σ(log a − log b)`` stays finite even where both rates
underflow (then ``a + b → 0`` and the state simply does not move).

Volatility and the ``Device`` interface. A volatile device cannot hold a programmed value:
:meth:`VolatileMemristor.program` sets the instantaneous state x (the conductance right after a
write), and ``read(t)`` returns the conductance after the state has relaxed for ``t`` seconds at
0 V from the present state (rate ``a(0) + b(0)``, i.e. 1/τ when ``v_off ≫ k_th``, toward the
OFF rest state ``x∞(0)``). ``apply_pulses`` drives voltage pulses through the exact update;
time passes for every device in the array, so devices not addressed in a pulse slot relax.

Variation. D2D parameters are drawn at construction: lognormal ``R_on``, ``R_off``
(``exp(σ_R ξ)``, independent draws), relative Gaussian ``v_on (1 + σ_v ξ)`` and ``τ, τ_on
(1 + σ_τ ξ)`` (one factor for both: one kinetic prefactor) with ξ truncated to ±3 and
``v_on`` kept above ``v_off + 10⁻³ (v_on − v_off)``. C2C noise: per device and per step, both
rates are multiplied by independent lognormal factors ``exp(σ_c2c ξ)`` drawn from an explicit
``torch.Generator``.

Presets (SI units)
------------------
Every value's status (measured, derived, setting or assumed) is in ``VolatileMemristor.provenance``;
the Ag-diffusive and NbO₂ values are all assumed.

``"mif_kang2021"`` — the MIF paper's memristors. The coded defaults of the MIF snnTorch code
(R_on 1 kΩ, R_off 100 kΩ, v_on 110, v_off 5, τ 100 steps, k_th 15 = 0.6 × 25, C 1e-4, E1 0,
E2 50, readout 30) are read as mV-like voltages on a unit time step. The SI set uses a voltage
scale of 1 mV per code unit and a time scale Δt₀ = 1 µs per code step, keeping the resistances:
v_on 0.110 V, v_off 0.005 V, k_th 0.015 V (0.6 kT/q), τ = τ_on = 100 µs. The membrane side
(:mod:`circuits.neurons.mif`) then has C = C_code·Δt₀ = 100 pF, E1 = 0 V, E2 = 0.05 V, readout
level 0.03 V, and currents scale like the voltages (G is unchanged): 1 code unit of input =
1 mV / 1 Ω = 1 mA. With Δt = 1 µs the SI equations reproduce the coded ones number for number
(v_SI = 10⁻³ v_code, same x). Pure MSS (ρ = 0), no variation (the paper's ideal devices).

``"ag_diffusive_wang2017"`` — Ag-nanoparticle diffusive memristor (SiOxNy:Ag / SiO2:Ag), Z. Wang
et al., Nat. Mater. 16, 101 (2017) and Nat. Electron. 1, 137 (2018). Typical published ranges,
**[M]: literature-typical values not checked against the papers' tables**: threshold 0.2–0.5 V
(here v_on 0.3 V), hold/relaxation below ~0.1 V (v_off 0.1 V), ON resistance set by the
compliance (tens of kΩ at µA–10 µA; here 20 kΩ), OFF resistance > 10 GΩ (pA leakage; here
10 GΩ, on/off 5·10⁵ ≥ 10⁵), ON delay ~µs at modest over-drive (τ_on 1 µs), spontaneous relaxation
µs–ms (τ 100 µs), symmetric in polarity (bipolar), large cycle-to-cycle and device-to-device
spread (σ_R 0.2, σ_v 0.1, σ_τ 0.2, σ_c2c 0.2; [M]); abrupt, regenerative switching (ρ = 1,
a modelling choice, see above).

``"nbo2_pickett2013"`` — NbO₂ Mott threshold switch as in the neuristor of M. D. Pickett,
G. Medeiros-Ribeiro, R. S. Williams, Nat. Mater. 12, 114 (2013) (and Pickett & Williams,
Nanotechnology 23, 215202 (2012): sub-ns, sub-100 fJ switching). **[M]** values: threshold
~1 V, hold ~0.6 V, insulating ~50 kΩ, metallic ~500 Ω (on/off ~100), thermal switching and
relaxation ~1 ns, abrupt threshold (k_th 1 mV), symmetric in polarity, small variation
(σ_R 0.05, σ_v 0.03), regenerative (ρ = 1: thermal runaway). Used by the relaxation-oscillator
neuron.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .base import STUCK_NONE, CommonParams, Device, ProgramResult
from .provenance import assumed, check_provenance, derived, measured, setting
from .validation import as_tensor, check_real
from .volatile_physics import (SwitchParameters, validate_switch_parameters, volatile_conductance, volatile_rates,
                               volatile_steady_state, volatile_step)

__all__ = ["VolatileMemristor", "VolatileParams", "SwitchParameters", "volatile_params", "volatile_step",
           "volatile_conductance", "volatile_rates", "volatile_steady_state", "validate_switch_parameters",
           "PRESETS"]

Tensor = torch.Tensor
_WINDOW_FIELDS = frozenset({"r_on", "r_off"})


# ----------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class VolatileParams(CommonParams):
    """Volatile-memristor parameters (SI). ``g_min = 1/r_off`` and ``g_max = 1/r_on`` are derived.

    Attributes:
        r_on, r_off: ON / OFF resistance (Ω), ``0 < r_on < r_off``.
        v_on: switch-ON threshold (V); v_off: relaxation/hold voltage (V), ``v_off < v_on``.
        tau: relaxation time constant (s); tau_on: switching-ON time constant (s).
        k_th: threshold softness (V).
        bipolar: symmetric threshold switch (rates use |V|).
        v_set: default pulse amplitude of :meth:`VolatileMemristor.apply_pulses` (V).
        t_pulse: default pulse width (s).
        d2d_r_sigma: lognormal D2D spread of R_on and R_off (independent draws).
        d2d_v_sigma: relative Gaussian D2D spread of v_on (< 1/3).
        d2d_tau_sigma: relative Gaussian D2D spread of τ and τ_on (< 1/3).
        c2c_sigma: lognormal C2C spread of the rates, per step/pulse.
        read_noise: Gaussian read noise of ``read`` as a fraction of g_max.
        feedback: regenerative-switching strength ρ ∈ [0, 1] (see the module docstring).
    """

    g_min: float = 1e-5
    g_max: float = 1e-3
    v_read: float = 1e-3
    r_on: float = 1e3
    r_off: float = 1e5
    v_on: float = 0.110
    v_off: float = 0.005
    tau: float = 1e-4
    tau_on: float = 1e-4
    k_th: float = 0.015
    bipolar: bool = False
    v_set: float = 0.2
    t_pulse: float = 1e-5
    d2d_r_sigma: float = 0.0
    d2d_v_sigma: float = 0.0
    d2d_tau_sigma: float = 0.0
    c2c_sigma: float = 0.0
    read_noise: float = 0.0
    feedback: float = 0.0

    bounds = {**CommonParams.bounds, "g_min": (0.0, 1e3), "g_max": (0.0, 1e3, True), "v_read": (0.0, 10.0, True),
              "r_on": (1e-3, 1e15), "r_off": (1e-3, 1e15), "v_on": (-100.0, 100.0), "v_off": (-100.0, 100.0),
              "tau": (1e-15, 1e6), "tau_on": (1e-15, 1e6), "k_th": (1e-6, 10.0), "v_set": (0.0, 100.0, True),
              "t_pulse": (0.0, 1e3, True)}

    def _validate_family(self) -> None:
        check_real("r_on", self.r_on, low=0.0, low_open=True)
        check_real("r_off", self.r_off, low=0.0, low_open=True)
        if not self.r_on < self.r_off:
            raise ValueError(f"r_on must be < r_off, got r_on={self.r_on:g} Ω, r_off={self.r_off:g} Ω")
        check_real("v_on", self.v_on)
        check_real("v_off", self.v_off)
        if not self.v_off < self.v_on:
            raise ValueError(f"v_off must be < v_on, got v_off={self.v_off:g} V, v_on={self.v_on:g} V")
        for name in ("tau", "tau_on", "k_th", "v_set", "t_pulse"):
            check_real(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("d2d_r_sigma", "c2c_sigma"):
            check_real(name, getattr(self, name), low=0.0, high=5.0)
        check_real("read_noise", self.read_noise, low=0.0, high=1.0)
        check_real("feedback", self.feedback, low=0.0, high=1.0)
        for name in ("d2d_v_sigma", "d2d_tau_sigma"):
            check_real(name, getattr(self, name), low=0.0, high=1 / 3, high_open=True)

    def _validate_common(self) -> None:
        for name, want in (("g_min", 1.0 / self.r_off), ("g_max", 1.0 / self.r_on)):
            got = float(getattr(self, name))
            if not abs(got - want) <= 1e-9 * want:
                raise ValueError(f"{name} is derived: it must equal {'1/r_off' if name == 'g_min' else '1/r_on'} = "
                                 f"{want:.6g} S, got {got:.6g} S; set r_on/r_off instead")
        super()._validate_common()

    def switch_parameters(self) -> SwitchParameters:
        """The nominal (variation-free) :class:`SwitchParameters` of this preset."""
        return SwitchParameters(self.r_on, self.r_off, self.v_on, self.v_off, self.tau, self.tau_on, self.k_th,
                                bool(self.bipolar), self.c2c_sigma, self.feedback)


def volatile_params(**fields) -> VolatileParams:
    """A :class:`VolatileParams` with ``g_min = 1/r_off``, ``g_max = 1/r_on`` filled in."""
    if "g_min" in fields or "g_max" in fields:
        raise ValueError("g_min/g_max are derived from r_off/r_on; do not pass them")
    p = VolatileParams(**fields)
    p._check_types()
    p._validate_family()
    p = dataclasses.replace(p, g_min=1.0 / p.r_off, g_max=1.0 / p.r_on)
    p.validate()
    return p


#: MIF neuron memristors (Kang et al. 2021 code defaults mapped to SI; see module docstring).
MIF_KANG2021 = volatile_params()

#: Ag diffusive memristor, Wang et al. Nat. Mater. 2017 / Nat. Electron. 2018 ([M] typical values).
AG_DIFFUSIVE_WANG2017 = volatile_params(
    r_on=2e4, r_off=1e10, v_on=0.3, v_off=0.1, tau=1e-4, tau_on=1e-6, k_th=0.01, bipolar=True, v_read=0.05,
    v_set=0.5, t_pulse=1e-5, d2d_r_sigma=0.2, d2d_v_sigma=0.1, d2d_tau_sigma=0.2, c2c_sigma=0.2, feedback=1.0)

#: NbO2 Mott threshold switch, Pickett et al. Nat. Mater. 2013 ([M] typical values).
NBO2_PICKETT2013 = volatile_params(
    r_on=500.0, r_off=5e4, v_on=1.0, v_off=0.6, tau=1e-9, tau_on=1e-9, k_th=0.001, bipolar=True, v_read=0.1,
    v_set=1.5, t_pulse=1e-8, d2d_r_sigma=0.05, d2d_v_sigma=0.03, feedback=1.0)

PRESETS = {"mif_kang2021": MIF_KANG2021, "ag_diffusive_wang2017": AG_DIFFUSIVE_WANG2017,
           "nbo2_pickett2013": NBO2_PICKETT2013}

_KANG = "Kang et al. TCAS-I 2021 MIF snnTorch code defaults (allzp/snntorch), mapped to SI (1 mV, 1 us per code unit)"
_WANG = ("literature-typical range for Ag diffusive memristors (Wang et al. Nat. Mater. 2017), "
         "not checked against a table")
_PICKETT = "literature-typical NbO2 Mott switch value (Pickett et al. Nat. Mater. 2013), not checked against a table"
_VOL_COMMON = {"g_min": derived("computed: 1 / r_off"), "g_max": derived("computed: 1 / r_on"),
               "v_read": setting("read voltage"),
               "p_stuck_on": setting("no faults by default"), "p_stuck_off": setting("no faults by default"),
               "retention_beyond_data": setting("unused: relaxation holds for all t"),
               "v_set": setting("default pulse amplitude"), "t_pulse": setting("default pulse width"),
               "read_noise": setting("noise-free reads by default")}
PROVENANCE = {
    "mif_kang2021": {**_VOL_COMMON, **{k: measured(_KANG) for k in ("r_on", "r_off", "v_on", "v_off", "tau",
                                                                    "tau_on", "k_th")},
                     "bipolar": measured("polar device, as in the MIF code (allzp/snntorch, Kang et al. 2021)"),
                     "feedback": measured("pure MSS (0), as in the MIF code (allzp/snntorch, Kang et al. 2021)"),
                     **{k: setting("ideal devices of the paper (no variation)")
                        for k in ("d2d_r_sigma", "d2d_v_sigma", "d2d_tau_sigma", "c2c_sigma")}},
    "ag_diffusive_wang2017": {**_VOL_COMMON, **{k: assumed(_WANG) for k in (
        "r_on", "r_off", "v_on", "v_off", "tau", "tau_on", "k_th", "bipolar", "d2d_r_sigma", "d2d_v_sigma",
        "d2d_tau_sigma", "c2c_sigma")}, "feedback": assumed("regenerative switching (modelling choice)")},
    "nbo2_pickett2013": {**_VOL_COMMON, **{k: assumed(_PICKETT) for k in (
        "r_on", "r_off", "v_on", "v_off", "tau", "tau_on", "k_th", "bipolar", "d2d_r_sigma", "d2d_v_sigma",
        "d2d_tau_sigma", "c2c_sigma")},
        "feedback": assumed("regenerative switching (thermal runaway, modelling choice)")},
}
for _name, _params in PRESETS.items():
    check_provenance(_params, PROVENANCE[_name], _name)


# ----------------------------------------------------------------------------- device
class VolatileMemristor(Device):
    """Array of volatile MSS threshold switches (see the module docstring).

    State: ``x`` (same shape as the array). D2D tensors: ``r_on``, ``r_off`` (Ω), ``v_on`` (V),
    ``tau``, ``tau_on`` (s); :attr:`dynamics` packs them for :func:`volatile_step`.
    """

    family = "volatile"
    params_type = VolatileParams
    presets = PRESETS
    provenance = PROVENANCE
    default_preset = "mif_kang2021"
    slot_seconds = 3.5e-4

    @classmethod
    def resolve_params(cls, preset=None, params=None, **overrides):
        """As :meth:`Device.resolve_params`, recomputing ``g_min``/``g_max`` when ``r_on``/``r_off``
        are overridden and they are not."""
        if (overrides.keys() & _WINDOW_FIELDS) and not (overrides.keys() & {"g_min", "g_max"}):
            base = params if params is not None else cls.presets.get(cls.default_preset if preset is None else preset)
            if isinstance(base, VolatileParams) and (preset is None or params is None):
                r_on, r_off = overrides.get("r_on", base.r_on), overrides.get("r_off", base.r_off)
                try:
                    r_on = check_real("r_on", r_on, low=0.0, low_open=True)
                    r_off = check_real("r_off", r_off, low=0.0, low_open=True)
                except ValueError:
                    pass  # validate() reports the bad field
                else:
                    overrides = {**overrides, "g_min": 1.0 / r_off, "g_max": 1.0 / r_on}
        return super().resolve_params(preset=preset, params=params, **overrides)

    # ------------------------------------------------------------------ construction
    def _init_variation(self) -> None:
        p = self.params
        self.r_on = p.r_on * torch.exp(p.d2d_r_sigma * self._randn())
        self.r_off = p.r_off * torch.exp(p.d2d_r_sigma * self._randn())
        v_floor = p.v_off + 1e-3 * (p.v_on - p.v_off)
        self.v_on = (p.v_on * (1.0 + p.d2d_v_sigma * self._randn().clamp(-3.0, 3.0))).clamp_min(v_floor)
        factor = 1.0 + p.d2d_tau_sigma * self._randn().clamp(-3.0, 3.0)
        self.tau = p.tau * factor
        self.tau_on = p.tau_on * factor

    def _init_state(self) -> None:
        # As fabricated / after a long rest: the OFF rest state x∞(0 V) of each device.
        self.x = volatile_steady_state(torch.zeros(self.shape, dtype=self.dtype, device=self.device), self.dynamics)

    @property
    def dynamics(self) -> SwitchParameters:
        """Per-device :class:`SwitchParameters` (D2D values as tensors of the array shape)."""
        p = self.params
        return SwitchParameters(self.r_on, self.r_off, self.v_on, p.v_off, self.tau, self.tau_on, p.k_th,
                                bool(p.bipolar), p.c2c_sigma, p.feedback)

    def _conductance_of(self, x: Tensor) -> Tensor:
        return volatile_conductance(x, self.dynamics)

    # ------------------------------------------------------------------ reading
    def conductance(self) -> Tensor:
        return self._apply_faults(self._conductance_of(self.x))

    def relaxed_state(self, t: float) -> Tensor:
        """The state after ``t`` s at 0 V from the present one (exact; no noise, no mutation)."""
        t = self._check_read_time(t)
        p = self.dynamics._replace(c2c_sigma=0.0)
        return volatile_step(self.x, torch.zeros_like(self.x), t, p)

    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Noise-free conductance (S) after ``t`` s of relaxation at 0 V from the present state."""
        return self._apply_faults(self._conductance_of(self.relaxed_state(t)))

    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) ``t`` s after the last write, the state having relaxed at 0 V for ``t``
        (a volatile device forgets its write), plus Gaussian read noise ``read_noise · g_max``."""
        g = self._conductance_of(self.relaxed_state(t))
        if self.params.read_noise > 0:
            g = (g + self.params.read_noise * self.g_max * self._randn()).clamp_min(0.0)
        return self._apply_faults(g)

    def current(self, voltage) -> Tensor:
        """Ohmic ``I = G(x) · V`` (A) of the present state; differentiable, leading batch dims allowed."""
        v = self._voltage(voltage)
        return self._apply_faults_current(v, self._conductance_of(self.x) * v)

    # ------------------------------------------------------------------ dynamics
    def step(self, voltage, dt: float) -> Tensor:
        """Hold ``voltage`` (V, broadcast to the array) for ``dt`` s (exact update, C2C noise if
        enabled); return the current (A) at the end of the step."""
        dt = check_real("dt", dt, low=0.0)
        v = self._tensor("voltage", voltage)
        new = volatile_step(self.x, v, dt, self.dynamics, self.generator)
        self.x = torch.where(self.stuck == STUCK_NONE, new, self.x)
        return self._apply_faults_current(v, self._conductance_of(self.x) * v)

    def simulate(self, voltages, dt: float) -> tuple[Tensor, Tensor]:
        """Drive a time-major voltage waveform ``(T, *shape)`` (V, piecewise constant, step ``dt`` s).

        Returns ``(currents, states)``, each ``(T, *shape)``: the current (A) and state at the end
        of every step. Mutates the state.
        """
        dt = check_real("dt", dt, low=0.0)
        v = as_tensor("voltages", voltages, dtype=self.dtype, device=self.device)
        if v.dim() != len(self.shape) + 1 or tuple(v.shape[1:]) != self.shape:
            raise ValueError(f"voltages must be time-major with shape (T, *{self.shape}), got {tuple(v.shape)}")
        currents, states = [], []
        for k in range(v.shape[0]):
            currents.append(self.step(v[k], dt))
            states.append(self.x)
        return torch.stack(currents), torch.stack(states)

    def apply_pulses(self, pulses, *, amplitude: float | None = None, width: float | None = None,
                     interval: float = 0.0, max_steps: int | None = None) -> Tensor:
        """Signed pulse counts: ``n > 0`` pulses at ``+amplitude``, ``n < 0`` at ``−amplitude``
        (default ``v_set``), each ``width`` s (default ``t_pulse``) followed by ``interval`` s at 0 V.

        Pulses are applied in slots; every device lives through every slot (a device with fewer
        pulses sits at 0 V and relaxes). A negative pulse switches a polar device OFF but a
        bipolar one ON: only rest relaxes a bipolar switch. Returns the conductance (S).
        """
        n = self._pulse_counts(pulses, max_steps)
        p = self.params
        amp = p.v_set if amplitude is None else check_real("amplitude", amplitude, low=0.0, low_open=True)
        width = p.t_pulse if width is None else check_real("width", width, low=0.0, low_open=True)
        interval = check_real("interval", interval, low=0.0)
        zero = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        for k in range(max(int(n.max()), -int(n.min())) if n.numel() else 0):
            v = torch.where(n > k, zero + amp, torch.where(n < -k, zero - amp, zero))
            self.step(v, width)
            if interval > 0:
                self.step(zero, interval)
        return self.conductance()

    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Set the instantaneous state so that ``G(x) = target`` (S) for each device's own R_on/R_off.

        A volatile device cannot hold this value: it relaxes at rest (see :meth:`read`). Targets
        outside a device's own window (D2D) give the nearest end, reported in ``error``. With
        ``verify=True``, ``converged`` flags ``|error| ≤ tolerance`` (default 1 % of the window).
        """
        verify, tol, max_pulses = self._program_args(verify, tolerance, max_pulses)
        target = self.check_target(target_conductance, clip)
        g_before = self.conductance()
        g_off, g_on = 1.0 / self.r_off, 1.0 / self.r_on
        x = ((target - g_off) / (g_on - g_off)).clamp(0.0, 1.0)
        self.x = torch.where(self.stuck == STUCK_NONE, x, self.x)
        pulses = (self.stuck == STUCK_NONE).long()
        return self._result(self._conductance_of(self.x), target, pulses, tol, g_before)
