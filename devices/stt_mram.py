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

Read disturb. A read drives ``I_read = v_read·G_mtj`` through every MTJ for ``read_duration``
seconds in the direction ``read_polarity`` (default ``"p_to_ap"``: the read current pushes
P-state MTJs toward AP). Each MTJ in the pushed-away-from state flips with the switching
probability of that pulse (:func:`devices.stt_mram_physics.piecewise_switching_probability`, the
Néel–Brown branch at these sub-critical currents): negligible at Δ = 56 (0.32 I_c0, ~1e-16 per
10-ns read), ~1 % per 10-ns read at Δ = 25 (0.72 I_c0). Every read — :meth:`STTMRAM.read`,
:meth:`Device.at_time` and the verify reads of :meth:`STTMRAM.program` — draws its disturb; a
flip is stored (the value returned by the read that caused it is the pre-flip one) and later
reads see it. ``current(v)`` (the I-V used by circuit solves) does not disturb.
"""
from __future__ import annotations

import dataclasses

import torch

from .base import STUCK_NONE, Device, ProgramResult
from .stt_mram_params import PRESETS, PROVENANCE, STTMRAMParams, stt_mram_params
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


# ----------------------------------------------------------------------------- device
class STTMRAM(Device):
    """Array of STT-MRAM cells of ``mtjs_per_cell`` binary MTJs each (see module docstring).

    Presets and the provenance of every value: :mod:`devices.stt_mram_params`.

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
    presets = PRESETS
    provenance = PROVENANCE
    default_preset = "pma_mtj_delta56"
    slot_seconds = 2.5e-4

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
                    merged._check_types()
                    merged._validate_family()
                    g_min, g_max = conductance_window(merged.r_p, merged.tmr0, merged.v_h, merged.v_read,
                                                      merged.mtjs_per_cell)
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
        t = self._check_read_time(t)
        if t == 0.0:
            return self.state
        flipped = (self._u_ret < self.retention_failure_probability(t)) & ~self._stuck_mtj
        return torch.where(flipped, 1 - self.state, self.state)

    def conductance_at(self, t: float = 0.0) -> Tensor:
        """Noise-free cell conductance (S) of the MTJ states seen ``t`` s after programming."""
        return self._apply_faults(self._cell_g(self.state_at(t)))

    def read_disturb_probability(self) -> Tensor:
        """Per-MTJ probability (``(*shape, n)``) that one read flips it (module docstring):
        the read current ``v_read·G_mtj`` of MTJs in the state the read polarity pushes away
        from, in the switching law of a pulse of ``read_duration``; 0 for the other MTJs."""
        return self._disturb_probability(self.state)

    def _disturb_probability(self, state: Tensor) -> Tensor:
        p = self.params
        if p.read_polarity == "p_to_ap":
            victim, g, ic0 = P_STATE, self._g_p, self.mtj_ic0_p_to_ap
        else:
            victim, g, ic0 = AP_STATE, self._g_ap, self.mtj_ic0_ap_to_p
        i_read = p.v_read * g
        t_r = torch.full_like(i_read, p.read_duration)
        p_sw = piecewise_switching_probability(i_read / ic0, t_r, self.mtj_delta, p.tau0, precession_time(p, ic0))
        return torch.where((state == victim) & ~self._stuck_mtj, p_sw, torch.zeros_like(p_sw))

    def _disturb(self, state: Tensor) -> None:
        """One read's disturb: MTJs flip with :meth:`read_disturb_probability` of ``state`` (the
        states the read sees); the flip is stored (retention flips are symmetric telegraph
        events, so a stored flip composes with them by parity)."""
        flip = self._rand((*self.shape, self.n_mtj)) < self._disturb_probability(state)
        self.state = torch.where(flip, 1 - self.state, self.state).to(torch.int8)

    def read(self, t: float = 0.0) -> Tensor:
        """Conductance (S) read ``t`` s after programming: retention flips, fresh read noise, and the
        read disturb of this read (it changes the stored state for later reads, not this one)."""
        state = self.state_at(t)
        g = self._noisy_cell_read(state)
        self._disturb(state)
        return g

    def _noisy_cell_read(self, state: Tensor | None = None) -> Tensor:
        g = self._apply_faults(self._cell_g(self.state if state is None else state))
        return torch.clamp(g * (1.0 + self.params.read_noise * self._randn()), min=0.0)

    def _cell_iv(self, state: Tensor, v: Tensor) -> Tensor:
        p = self.params
        g_par = torch.where(state == P_STATE, self._g_p, 0.0).sum(-1)
        g_anti = torch.where(state == AP_STATE, self._g_p, 0.0).sum(-1)
        return v * (g_par + g_anti / (1.0 + tmr(v, p.tmr0, p.v_h)))

    def current(self, voltage) -> Tensor:
        """Cell current (A): ``V · [Σ_P 1/R_P,k + Σ_AP 1/(R_P,k (1 + TMR(V)))]``, differentiable in V."""
        v = self._voltage(voltage)
        return self._apply_faults_current(v, self._cell_iv(self.state, v))

    def _iv_at(self, t: float):
        state, stuck = self.state_at(t).clone(), self.stuck.clone()
        g_p, p, g_max, g_min = self._g_p.clone(), self.params, self.g_max, self.g_min

        def iv(v):
            g_par = torch.where(state == P_STATE, g_p, 0.0).sum(-1)
            g_anti = torch.where(state == AP_STATE, g_p, 0.0).sum(-1)
            i = v * (g_par + g_anti / (1.0 + tmr(v, p.tmr0, p.v_h)))
            s = stuck.expand(v.shape) if v.dim() > stuck.dim() else stuck
            return torch.where(s == 1, v * g_max, torch.where(s == -1, v * g_min, i))
        return iv

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

    def apply_pulses(self, pulses, *, current=None, width=None, max_steps: int | None = None) -> Tensor:
        """Apply signed pulse counts per cell (>0 toward P / higher G, <0 toward AP); return G (S).

        Every pulse addresses all MTJs of a cell; each MTJ not in the pulse's target state
        switches with its own P_sw(current, width). ``current`` (A, magnitude) and ``width`` (s)
        default to ``i_write``/``t_write``. Stuck cells ignore pulses. At most ``max_steps``
        (default 10 000) pulse slots per call.
        """
        n = self._pulse_counts(pulses, max_steps)
        p_to_p = self.switching_probability(current, width, "ap_to_p", _width_name="width")
        p_to_ap = self.switching_probability(current, width, "p_to_ap", _width_name="width")
        steps = max(int(n.max()), -int(n.min())) if n.numel() else 0
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
        """Per-MTJ verify read (with read noise) classified against the nominal P/AP midpoint; the
        read disturbs like any read."""
        p = self.params
        g = torch.where(self.state == P_STATE, self._g_p, self._g_ap)
        g = g * (1.0 + p.read_noise * self._randn((*self.shape, self.n_mtj)))
        thr = 0.5 * (self.g_max + self.g_min) / self.n_mtj
        self._disturb(self.state)
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
        verify, tolerance, max_pulses = self._program_args(verify, tolerance, max_pulses)
        target = self.check_target(target_conductance, clip)
        g_before = self.conductance()
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
                self._disturb(self.state)
                done = ((~wrong.any(-1)) & ~stuck) | ((noisy - target).abs() <= tolerance)
                active = active & ~done & (pulses < max_pulses)
        self._mark_programmed()
        return self._result(self._cell_g(self.state), target, pulses, tolerance, g_before)
