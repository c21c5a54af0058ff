r"""STT-MRAM synapse: one or more binary magnetic tunnel junctions (MTJs) in parallel.

Cell and state
--------------
A synapse cell is ``n = mtjs_per_cell`` perpendicular MTJs in parallel. Each MTJ is binary:
parallel (P, low resistance, state 0) or antiparallel (AP, high resistance, state 1). The state
is an int8 tensor of shape ``(*shape, n)``. Graded weights come from the number ``k`` of MTJs in
P, so a cell has ``n + 1`` conductance levels; :meth:`STTMRAM.program` quantises every target to
the nearest level (the physical limit of the cell, not a model error).

Resistance and bias dependence of the TMR (textbook forms, e.g. Zhang/Zhao PMA-MTJ compact
model, IEEE TED 2012)::

    R_P           = const                     (Ω; D2D lognormal: R_P,i = R_P exp(σ_R ξ_i))
    TMR(V)        = TMR0 / (1 + V² / V_h²)
    R_AP(V)       = R_P (1 + TMR(V))
    I_cell(V)     = Σ_k V / R_k(V)            (odd in V, differentiable)

so ``g_max = n / R_P`` and ``g_min = n / (R_P (1 + TMR(v_read)))``. Those two ``CommonParams``
fields are *derived*: :func:`stt_mram_params` computes them, ``validate()`` rejects values that
differ by more than 1e-9 (relative), and overriding ``r_p``, ``tmr0``, ``v_h``, ``v_read`` or
``mtjs_per_cell`` in the constructor recomputes them unless ``g_min``/``g_max`` are given too.

Switching (Néel–Brown thermal activation and Sun precessional regime, combined
monotonically) and retention (symmetric telegraph flips with τ_ret = τ0 exp(Δ)) are in
:mod:`devices.stt_mram_physics`, whose docstring gives the equations, sources and limits.

Retention in ``read(t)``: the state read ``t`` s after programming differs from the programmed
one with probability ``p_ret(t) = (1 − exp(−2 t / τ_ret)) / 2`` per MTJ; a uniform ``u_i`` per MTJ
drawn when the array is programmed makes ``read(t)`` a deterministic function of ``t`` (MTJ ``i``
reads flipped iff ``u_i < p_ret,i(t)``). Read noise is relative Gaussian, fresh per read.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from .validation import check_scalar
from .base import STUCK_NONE, CommonParams, Device, ProgramResult
from .stt_mram_physics import (
    conductance_window,
    critical_current,
    critical_current_for,
    piecewise_switching_probability,
    precession_time,
    retention_failure_probability,
    switching_probability,
    tmr,
)

__all__ = ["STTMRAM", "STTMRAMParams", "stt_mram_params", "conductance_window", "critical_current",
           "retention_failure_probability", "switching_probability", "tmr"]

Tensor = torch.Tensor
P_STATE, AP_STATE = 0, 1
_WINDOW_FIELDS = frozenset({"r_p", "tmr0", "v_h", "v_read", "mtjs_per_cell"})


# ----------------------------------------------------------------------------- parameters
_AREA0 = 25e-9 * 25e-9 * math.pi      # m², zhuzibn/PMA_LLG free layer (= a 50 nm-diameter disc)
_R_P0 = 5e-12 / _AREA0                # Ω, RA = 5 Ω µm² (UMN MTJ model) over that area
_IC0_56 = critical_current(0.028, 56.0, 0.8, 300.0)


@dataclass(frozen=True)
class STTMRAMParams(CommonParams):
    """STT-MRAM cell parameters (SI). ``g_min``/``g_max`` are derived (see module docstring).

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

    @property
    def ic0_ap_to_p(self) -> float:
        """Critical current for AP→P switching (A), from :func:`critical_current`."""
        return critical_current(self.alpha, self.delta, self.polarization, self.temperature)

    @property
    def ic0_p_to_ap(self) -> float:
        """Critical current for P→AP switching (A)."""
        return self.ic0_ratio_p_to_ap * self.ic0_ap_to_p

    def validate(self) -> None:
        n = self.mtjs_per_cell
        if isinstance(n, bool) or not isinstance(n, (int, float)) or int(n) != n:
            raise ValueError(f"mtjs_per_cell must be an integer in [1, 64], got {n!r}")
        check_scalar("mtjs_per_cell", n, low=1, high=64)
        check_scalar("r_p", self.r_p, low=1.0, high=1e9)
        check_scalar("tmr0", self.tmr0, low=0.0, high=100.0, low_open=True)
        check_scalar("v_h", self.v_h, low=0.0, high=10.0, low_open=True)
        check_scalar("d2d_sigma", self.d2d_sigma, low=0.0, high=0.5)
        check_scalar("delta", self.delta, low=1.0, high=300.0)
        check_scalar("d2d_delta_sigma", self.d2d_delta_sigma, low=0.0, high=0.5)
        check_scalar("tau0", self.tau0, low=0.0, high=1e-6, low_open=True)
        check_scalar("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        check_scalar("polarization", self.polarization, low=0.0, high=1.0, low_open=True)
        check_scalar("ms", self.ms, low=0.0, high=1e7, low_open=True)
        check_scalar("free_layer_volume", self.free_layer_volume, low=0.0, high=1e-18, low_open=True)
        check_scalar("temperature", self.temperature, low=0.0, high=1000.0, low_open=True)
        check_scalar("ic0_ratio_p_to_ap", self.ic0_ratio_p_to_ap, low=0.1, high=10.0)
        check_scalar("i_write", self.i_write, low=0.0, high=1.0, low_open=True)
        check_scalar("t_write", self.t_write, low=0.0, high=1.0, low_open=True)
        check_scalar("read_noise", self.read_noise, low=0.0, high=0.5)
        super().validate()
        g_min, g_max = conductance_window(self.r_p, self.tmr0, self.v_h, self.v_read, int(n))
        for name, have, want in (("g_min", self.g_min, g_min), ("g_max", self.g_max, g_max)):
            if abs(have - want) > 1e-9 * want:
                raise ValueError(
                    f"{name} = {have:.9g} S is inconsistent with the MTJ numbers (expected {want:.9g} S "
                    f"from r_p, tmr0, v_h, v_read, mtjs_per_cell); build params with stt_mram_params()"
                )


def stt_mram_params(**fields) -> STTMRAMParams:
    """An :class:`STTMRAMParams` with ``g_min``/``g_max`` computed from the MTJ numbers."""
    if "g_min" in fields or "g_max" in fields:
        raise ValueError("g_min/g_max are derived from r_p, tmr0, v_h, v_read, mtjs_per_cell; "
                         "do not pass them")
    p = STTMRAMParams(**fields)
    g_min, g_max = conductance_window(p.r_p, p.tmr0, p.v_h, p.v_read, int(p.mtjs_per_cell))
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


# ----------------------------------------------------------------------------- device
class STTMRAM(Device):
    """Array of STT-MRAM cells of ``mtjs_per_cell`` binary MTJs each (see module docstring).

    Presets. Numbers tagged [M] in the project notes are typical literature values that were
    not checked against the paper here: τ0 = 1 ns (the Néel–Brown attempt time usually quoted
    with Koch et al., PRL 2004), V_h = 0.5 V (usually attributed to the TMR(V) form of the
    Zhang/Zhao PMA-MTJ compact model, IEEE TED 2012); and, with no single source attributed:
    I_c0(P→AP)/I_c0(AP→P) = 1.5, D2D spreads σ_R = 3 % and σ_Δ = 5 %, read noise 0.5 %.

    * ``"pma_mtj_delta56"`` (default): Δ = 56, α = 0.028, M_s = 700 emu/cm³ = 7e5 A/m, P = 0.8,
      T = 300 K, free layer 25 nm × 25π nm × 1.4 nm -- the parameters listed in the
      ``zhuzibn/PMA_LLG`` README; I_c0 = 81 µA from Sun (2000)/Khvalkovskiy (2013).
      R_P = RA / A = 2.55 kΩ with RA = 5 Ω µm² (UMN MTJ model), TMR0 = 150 %
      (``zhuzibn/SOT_STT_compact_model`` README), v_read = 0.1 V. Write: 1.5 × I_c0(P→AP)
      for 10 ns (the "≈1.5-2 × I_c0 at ~10 ns for WER < 1e-6" rule of thumb [M]): WER(P→AP)
      ≈ 2.5e-6 at the median Δ, ≈ 1e-5 averaged over the σ_Δ spread; WER(AP→P) < 1e-10.
    * ``"stochastic_mtj_delta25"``: the same stack with a low barrier Δ = 25 (τ_ret ≈ 72 s), a
      volatile/stochastic MTJ for retention studies and stochastic binary synapses in the style
      of Vincent et al., IEEE Trans. Biomed. Circuits Syst. (2015). Illustrative, not a measured
      device (Δ = 25 is chosen, not taken from that paper).
    * ``"pma_mtj_delta56_x4"``: the default MTJ, four per cell (5 levels).

    Writing: a positive pulse count drives MTJs toward P (higher G), a negative one toward AP;
    ``i_write`` is the current through each MTJ. In :meth:`apply_pulses` one pulse addresses all
    MTJs of the cell at once, so each MTJ not yet in the target state switches independently
    with its own P_sw: stochastic graded potentiation (as proposed by Vincent et al. 2015). :meth:`program`
    addresses MTJs individually (read-before-write: only MTJs in the wrong state get a pulse).
    ``read(t)`` counts ``t`` from the last :meth:`program` / :meth:`apply_pulses` call.

    Attributes: ``state`` (int8, ``(*shape, n)``, 1 = AP), ``mtj_r_p`` (Ω), ``mtj_delta``,
    ``mtj_ic0_ap_to_p`` / ``mtj_ic0_p_to_ap`` (A), all per MTJ.
    """

    family = "stt_mram"
    params_type = STTMRAMParams
    presets = {
        "pma_mtj_delta56": _pma_preset(56.0),
        "stochastic_mtj_delta25": _pma_preset(25.0),
        "pma_mtj_delta56_x4": _pma_preset(56.0, mtjs_per_cell=4),
    }
    default_preset = "pma_mtj_delta56"

    @classmethod
    def resolve_params(cls, preset=None, params=None, **overrides):
        """As :meth:`Device.resolve_params`, recomputing ``g_min``/``g_max`` when a field they
        depend on is overridden and they are not."""
        if (overrides.keys() & _WINDOW_FIELDS) and not (overrides.keys() & {"g_min", "g_max"}):
            base = params if params is not None else cls.presets.get(cls.default_preset if preset is None
                                                                     else preset)
            if isinstance(base, STTMRAMParams) and (preset is None or params is None):
                window = {k: overrides[k] for k in overrides.keys() & _WINDOW_FIELDS}
                merged = dataclasses.replace(base, **window)
                try:
                    g_min, g_max = conductance_window(merged.r_p, merged.tmr0, merged.v_h, merged.v_read,
                                                      int(merged.mtjs_per_cell))
                except (TypeError, ValueError, ZeroDivisionError, OverflowError):
                    pass  # validate() reports the bad field
                else:
                    overrides = {**overrides, "g_min": g_min, "g_max": g_max}
        return super().resolve_params(preset=preset, params=params, **overrides)

    # ------------------------------------------------------------------ construction
    @property
    def n_mtj(self) -> int:
        """MTJs per cell."""
        return int(self.params.mtjs_per_cell)

    @property
    def levels(self) -> Tensor:
        """The ``n + 1`` nominal cell conductances (S) at ``v_read``, ``k = 0 … n`` MTJs in P."""
        n = self.n_mtj
        g_p, g_ap = self.g_max / n, self.g_min / n
        k = torch.arange(n + 1, dtype=self.dtype, device=self.device)
        return k * g_p + (n - k) * g_ap

    def _init_variation(self) -> None:
        p = self.params
        mshape = (*self.shape, self.n_mtj)
        self.mtj_r_p = p.r_p * torch.exp(p.d2d_sigma * self._randn(mshape))
        self.mtj_delta = p.delta * torch.exp(p.d2d_delta_sigma * self._randn(mshape))
        self.mtj_ic0_ap_to_p = p.ic0_ap_to_p * self.mtj_delta / p.delta
        self.mtj_ic0_p_to_ap = p.ic0_ratio_p_to_ap * self.mtj_ic0_ap_to_p
        self._tmr_read = tmr(p.v_read, p.tmr0, p.v_h)
        self._g_p = 1.0 / self.mtj_r_p                               # S, per MTJ
        self._g_ap = self._g_p / (1.0 + self._tmr_read)              # S at v_read
        self._stuck_mtj = (self.stuck != STUCK_NONE).unsqueeze(-1)

    def _init_state(self) -> None:
        """As fabricated: every MTJ antiparallel (cell at ``g_min``)."""
        self.state = torch.full((*self.shape, self.n_mtj), AP_STATE, dtype=torch.int8, device=self.device)
        self._mark_programmed()

    def _mark_programmed(self) -> None:
        """Start the retention clock: one uniform per MTJ decides its flip time."""
        self._u_ret = self._rand((*self.shape, self.n_mtj))

    # ------------------------------------------------------------------ conductance and I-V
    def _cell_g(self, state: Tensor) -> Tensor:
        return torch.where(state == P_STATE, self._g_p, self._g_ap).sum(-1)

    def conductance(self) -> Tensor:
        """Noise-free cell conductance (S) at ``v_read``, faults applied."""
        return self._apply_faults(self._cell_g(self.state))

    def retention_failure_probability(self, t) -> Tensor:
        """Per-MTJ probability (``(*shape, n)``) of reading flipped ``t`` s after programming."""
        return retention_failure_probability(t, self.params, delta=self.mtj_delta)

    def state_at(self, t: float = 0.0) -> Tensor:
        """MTJ states (int8, 1 = AP) seen ``t`` s after programming; deterministic in ``t``."""
        t = self._check_time(t)
        if t == 0.0:
            return self.state
        flipped = (self._u_ret < self.retention_failure_probability(t)) & ~self._stuck_mtj
        return torch.where(flipped, 1 - self.state, self.state)

    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) read ``t`` s after programming: retention flips, then fresh read noise."""
        return self._noisy_cell_read(self.state_at(t))

    def _noisy_cell_read(self, state: Tensor | None = None) -> Tensor:
        g = self._apply_faults(self._cell_g(self.state if state is None else state))
        return torch.clamp(g * (1.0 + self.params.read_noise * self._randn()), min=0.0)

    def current(self, voltage) -> Tensor:
        """Cell current (A): ``V · [Σ_P 1/R_P,k + Σ_AP 1/(R_P,k (1 + TMR(V)))]``, differentiable in V."""
        v = voltage if isinstance(voltage, Tensor) else torch.as_tensor(voltage, dtype=self.dtype)
        v = v.to(dtype=self.dtype, device=self.device)
        if not bool(torch.isfinite(v.detach()).all()):
            raise ValueError("voltage must be finite (no NaN/inf)")
        try:
            out_shape = torch.broadcast_shapes(v.shape, self.shape)
        except RuntimeError as exc:
            raise ValueError(f"voltage has shape {tuple(v.shape)}, which does not broadcast to the "
                             f"device array shape {self.shape}") from exc
        v = v.expand(out_shape)
        p = self.params
        g_par = torch.where(self.state == P_STATE, self._g_p, 0.0).sum(-1)
        g_anti = torch.where(self.state == AP_STATE, self._g_p, 0.0).sum(-1)
        i = v * (g_par + g_anti / (1.0 + tmr(v, p.tmr0, p.v_h)))
        return self._apply_faults_current(v, i)

    # ------------------------------------------------------------------ switching
    def switching_probability(self, current=None, pulse_width=None, direction: str = "ap_to_p", *,
                              _width_name: str = "pulse_width") -> Tensor:
        """Per-MTJ switching probability (``(*shape, n)``) of one pulse for this array's own Δ_i, I_c0,i.

        ``current`` (A, magnitude) and ``pulse_width`` (s) default to ``i_write``/``t_write`` and
        may be tensors broadcastable to the cell shape ``shape``.
        """
        p = self.params
        i = self._tensor("current", p.i_write if current is None else current).unsqueeze(-1)
        t_p = self._tensor(_width_name, p.t_write if pulse_width is None else pulse_width).unsqueeze(-1)
        if bool((i < 0).any()):
            raise ValueError("current must be a magnitude >= 0 A (the pulse sign sets the polarity)")
        if bool((t_p <= 0).any()):
            raise ValueError(f"{_width_name} must be > 0 s")
        critical_current_for(p, direction)  # validates direction
        ic0 = self.mtj_ic0_ap_to_p if direction == "ap_to_p" else self.mtj_ic0_p_to_ap
        return piecewise_switching_probability(i / ic0, t_p, self.mtj_delta, p.tau0, precession_time(p, ic0))

    def apply_pulses(self, pulses, *, current=None, width=None) -> Tensor:
        """Apply signed pulse counts per cell (>0 toward P / higher G, <0 toward AP); return G (S).

        Every pulse addresses all MTJs of a cell; each MTJ not in the pulse's target state
        switches with its own P_sw(current, width). ``current`` (A, magnitude) and ``width`` (s)
        default to ``i_write``/``t_write``. Stuck cells ignore pulses.
        """
        n = self._pulse_counts(pulses)
        p_to_p = self.switching_probability(current, width, "ap_to_p", _width_name="width")
        p_to_ap = self.switching_probability(current, width, "p_to_ap", _width_name="width")
        steps = int(n.abs().max()) if n.numel() else 0
        sign = n.sign().unsqueeze(-1)
        for k in range(steps):
            live = ((n.abs() > k).unsqueeze(-1)) & ~self._stuck_mtj
            u = self._rand((*self.shape, self.n_mtj))
            to_p = live & (sign > 0) & (self.state == AP_STATE) & (u < p_to_p)
            to_ap = live & (sign < 0) & (self.state == P_STATE) & (u < p_to_ap)
            self.state = torch.where(to_p, P_STATE, torch.where(to_ap, AP_STATE, self.state)).to(torch.int8)
        self._mark_programmed()
        return self.conductance()

    # ------------------------------------------------------------------ programming
    def target_levels(self, target_conductance, clip: bool = False) -> Tensor:
        """Number of MTJs in P (int64, per cell) that best approximates each target (S)."""
        t = self.check_target(target_conductance, clip)
        n = self.n_mtj
        g_p, g_ap = self.g_max / n, self.g_min / n
        return torch.round((t - n * g_ap) / (g_p - g_ap)).clamp(0, n).long()

    def _desired_state(self, k: Tensor) -> Tensor:
        """Closest MTJ pattern with ``k`` MTJs in P: flip the fewest MTJs, lowest index first."""
        s = self.state
        m = (s == P_STATE).sum(-1)
        need_p = (k - m).clamp(min=0).unsqueeze(-1)
        need_ap = (m - k).clamp(min=0).unsqueeze(-1)
        is_ap, is_p = s == AP_STATE, s == P_STATE
        flip = (is_ap & (torch.cumsum(is_ap.long(), -1) <= need_p)) | \
               (is_p & (torch.cumsum(is_p.long(), -1) <= need_ap))
        return torch.where(flip, 1 - s, s).to(torch.int8)

    def _write(self, mask: Tensor, desired: Tensor, p_to_p: Tensor, p_to_ap: Tensor) -> None:
        """One write pulse on each MTJ in ``mask`` toward ``desired``."""
        u = self._rand((*self.shape, self.n_mtj))
        p_sw = torch.where(desired == P_STATE, p_to_p, p_to_ap)
        ok = mask & ~self._stuck_mtj & (u < p_sw)
        self.state = torch.where(ok, desired, self.state)

    def _verify_read_mtj(self) -> Tensor:
        """Per-MTJ verify read (with read noise) classified against the nominal P/AP midpoint."""
        p = self.params
        g = torch.where(self.state == P_STATE, self._g_p, self._g_ap)
        g = g * (1.0 + p.read_noise * self._randn((*self.shape, self.n_mtj)))
        thr = 0.5 * (self.g_max + self.g_min) / self.n_mtj
        return torch.where(g > thr, P_STATE, AP_STATE).to(torch.int8)

    def program(self, target_conductance, *, verify: bool = False, tolerance: float | None = None,
                max_pulses: int = 100, clip: bool = False) -> ProgramResult:
        """Program each cell to the level nearest ``target_conductance`` (S; quantised to n+1 levels).

        Single shot: one ``i_write``/``t_write`` pulse per MTJ that must flip; each fails with the
        write-error rate ``1 − P_sw``. ``verify=True``: after each write round every MTJ is read
        (with read noise) and wrong MTJs are pulsed again; a cell stops when its MTJ pattern is
        right or its noisy read is within ``tolerance`` (S) of the target, or when it has
        received ``max_pulses`` MTJ pulses. ``pulses`` counts MTJ pulses per cell.
        """
        target = self.check_target(target_conductance, clip)
        if verify:
            tolerance, max_pulses = self._check_verify_args(tolerance, max_pulses)
        k = self.target_levels(target, clip=True)
        desired = self._desired_state(k)
        wrong = self.state != desired
        p_to_p = self.switching_probability(None, None, "ap_to_p")
        p_to_ap = self.switching_probability(None, None, "p_to_ap")
        stuck = self.stuck != STUCK_NONE
        if not verify:
            self._write(wrong, desired, p_to_p, p_to_ap)
            pulses = wrong.sum(-1)
        else:
            pulses = torch.zeros(self.shape, dtype=torch.int64, device=self.device)
            noisy = self._noisy_cell_read()
            active = (wrong.any(-1) & ~stuck) | (stuck & ((noisy - target).abs() > tolerance))
            for _ in range(max_pulses):
                if not bool(active.any()):
                    break
                budget = (max_pulses - pulses).unsqueeze(-1)
                in_budget = torch.cumsum(wrong.long(), -1) <= budget
                mask = wrong & (active & ~stuck).unsqueeze(-1) & in_budget
                self._write(mask, desired, p_to_p, p_to_ap)
                pulses = pulses + mask.sum(-1) + (active & stuck).long()
                wrong = self._verify_read_mtj() != desired
                noisy = self._noisy_cell_read()
                done = ((~wrong.any(-1)) & ~stuck) | ((noisy - target).abs() <= tolerance)
                active = active & ~done & (pulses < max_pulses)
        self._mark_programmed()
        return self._result(self._cell_g(self.state), target, pulses, tolerance if verify else None)
