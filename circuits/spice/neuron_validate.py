r"""Validate memxbar's memristive neurons (and a small network) against ngspice.

``validate_neuron(kind, i_in, dt)`` simulates one neuron twice — the netlist of
:mod:`circuits.spice.neuron_export` in ngspice, and the ``circuits.neurons`` step in torch
(float64) on a grid ``dt_sim = dt / substeps`` — and compares

* membrane voltage: ``max_k |v_torch(t_k) − v_spice(t_k)| / (max v_spice − min v_spice)``, with the
  ngspice trace linearly interpolated onto the torch times ``t_k = k·dt_sim``;
* spike times: upward threshold crossings (linear interpolation on each trace; MIF: v through
  ``v_spike``; oscillator: switch state x through ``x_spike``), matched in order;
  ``max |t_torch − t_spice| / t_stop`` (``inf`` when the spike counts differ);
* oscillator only: the mean period ``(t_n − t_1)/(n − 1)``, relative difference.

The report passes when spike times agree within ``spike_tolerance`` (default 1 % of the
window), the membrane within ``membrane_tolerance`` (1 % of the swing) and, for the
oscillator, the period within ``spike_tolerance``.

Torch step defaults (a step well below the fastest time constant): MIF 50 ns (the ON membrane
time constant C·R_on is 100 ns; measured error ≈ 5e-4 of the swing, mostly ngspice's own
output interpolation), oscillator 0.25 ns (the switch's τ is 1 ns; with regenerative
thresholds the device update freezes them over a half step, so the oscillator step is first
order: the period error halves with the step, ≈ 0.45 % at 1 ns, 0.23 % at 0.5 ns, 0.13 % at
0.25 ns for 200–400 µA). That drift shifts the steep discharge in time, so the oscillator's
membrane criterion is the hard one: 7.1e-3 of the swing at 200 µA over 10 µs (from 0 V) but
2.0e-2 at 400 µA over 4 µs (from v_lo; swing only 0.28 V) at 0.25 ns. ngspice's largest step defaults to 50 ns (MIF) / 0.5 ns (oscillator);
its spike times move by < 1e-9 s when that is cut to 0.1 ns. ``method="euler"`` (MIF only) runs
:func:`circuits.neurons.mif.mif_step_euler` instead, to show its instability.

Network (:func:`validate_network`): crossbar layers feeding MIF neurons, torch side in
:func:`network_forward`. Each linear crossbar is its exact transfer matrix ``A_ℓ`` (S, column
ends at 0 V = the virtual ground of the sense sources), so per torch step::

    I_1 = g_I · (u(t) @ A_1),                    v_1 ← MIF step(I_1)
    I_ℓ = g_I · ((g_V · v̄_{ℓ−1}) @ A_ℓ),         v̄ = (v_{ℓ−1}(t) + v_{ℓ−1}(t + Δt)) / 2

(``g_I`` = ``current_gain``, ``g_V`` = ``v_gain``): the buffered membrane voltage feeding the next
layer changes during a step, and its step average keeps the splitting second order. With
``v_swing`` the buffer output is ``v_swing · tanh(g_V v̄ / v_swing)`` (rails at ±v_swing).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from circuits.neurons.mif import X_INIT_KANG2021, MIFParameters, MIFState, mif_step, mif_step_euler
from circuits.neurons.oscillator import OscillatorParameters, oscillator_initial_state, oscillator_step
from devices.validation import check_int, check_scalar

from .neuron_export import _check_layers, _waveform, check_swing, mif_netlist, network_netlist, oscillator_netlist
from .ngspice import run_netlist

__all__ = ["NeuronValidationReport", "validate_neuron", "validate_network", "network_forward", "default_network",
           "threshold_crossings", "DT_SIM_MIF", "DT_SIM_OSCILLATOR"]

F64 = torch.float64
#: default largest torch step (s) per neuron kind
DT_SIM_MIF, DT_SIM_OSCILLATOR = 50e-9, 0.25e-9
#: default largest ngspice step (s) per neuron kind
DT_SPICE_MIF, DT_SPICE_OSCILLATOR = 50e-9, 0.5e-9
#: default cap on the torch steps of one validation (about 15 min at 0.4 ms per step); None lifts it
MAX_TORCH_STEPS = 2_000_000


@dataclass
class NeuronValidationReport:
    """Result of :func:`validate_neuron` / :func:`validate_network` (errors relative, times in s).

    Spike times are keyed by neuron (``"mif"``, ``"oscillator"`` or ``"l<layer>_<j>"``);
    ``spike_level`` is the threshold they cross (V for membranes, state for the oscillator).
    """

    kind: str
    t_stop: float
    dt: float
    dt_sim: float
    method: str
    n_steps: int
    spike_level: float
    swing: float
    max_membrane_err: float
    max_spike_time_err: float
    spike_times_spice: dict = field(default_factory=dict)
    spike_times_torch: dict = field(default_factory=dict)
    period_spice: float | None = None
    period_torch: float | None = None
    period_rel_err: float | None = None
    t_spice: float = 0.0
    t_torch: float = 0.0
    spike_tolerance: float = 0.01
    membrane_tolerance: float = 0.01
    passed: bool = False
    backend: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        n_s = sum(len(t) for t in self.spike_times_spice.values())
        n_t = sum(len(t) for t in self.spike_times_torch.values())
        period = "" if self.period_rel_err is None else \
            f", period {self.period_spice * 1e6:.4g} us (rel. err {self.period_rel_err:.2e})"
        return (f"{'PASS' if self.passed else 'FAIL'} {self.kind} ({self.method}, dt_sim {self.dt_sim:.3g} s, "
                f"{self.n_steps} steps, window {self.t_stop:.3g} s): membrane max err {self.max_membrane_err:.2e} "
                f"of swing {self.swing:.4g} V (tol {self.membrane_tolerance:.0e}); spikes ngspice {n_s} / torch {n_t}, "
                f"max time err {self.max_spike_time_err:.2e} of window (tol {self.spike_tolerance:.0e}){period}; "
                f"ngspice {self.t_spice:.3f} s ({self.backend}), torch {self.t_torch:.3f} s")


# ----------------------------------------------------------------------------- comparisons
def threshold_crossings(t, y, level: float) -> list[float]:
    """Times (s) where ``y`` rises through ``level`` (linear interpolation between samples)."""
    t, y = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    k = np.nonzero((y[:-1] <= level) & (y[1:] > level))[0]
    frac = (level - y[k]) / (y[k + 1] - y[k])
    return (t[k] + frac * (t[k + 1] - t[k])).tolist()


def _spike_err(spice: dict, torch_: dict, window: float) -> float:
    """``max |Δt| / window`` over matched spikes; ``inf`` when any neuron's counts differ."""
    err = 0.0
    for key, ts in spice.items():
        tt = torch_[key]
        if len(ts) != len(tt):
            return math.inf
        if ts:
            err = max(err, float(np.max(np.abs(np.subtract(ts, tt)))) / window)
    return err


def _membrane_err(t_sp, v_sp: np.ndarray, t_mx: np.ndarray, v_mx: np.ndarray) -> tuple[float, float]:
    """``(max |Δv| / swing, swing)`` with ngspice interpolated onto the torch times; columns = neurons."""
    v_sp, v_mx = v_sp.reshape(len(t_sp), -1), v_mx.reshape(len(t_mx), -1)
    swing = float(np.ptp(v_sp)) if v_sp.size else 0.0
    if not np.isfinite(v_mx).all():
        return math.inf, swing
    ref = np.stack([np.interp(t_mx, t_sp, v_sp[:, n]) for n in range(v_sp.shape[1])], axis=1)
    return float(np.abs(v_mx - ref).max() / max(swing, 1e-300)), swing


def _period(times: list) -> float | None:
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else None


def _check_tolerance(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be a relative error in (0, 1), got {value!r}")
    return float(value)


def _level(value) -> float:
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"spike_level must be a finite real number, got {value!r}") from None
    if not math.isfinite(level):
        raise ValueError(f"spike_level must be a finite real number, got {value!r}")
    return level


def _check_steps(n_samples: int, n_sub: int, max_torch_steps) -> None:
    """Refuse a validation of more than ``max_torch_steps`` torch steps (None: no cap)."""
    if max_torch_steps is None:
        return
    max_torch_steps = check_int("max_torch_steps", max_torch_steps, low=1)
    if n_samples * n_sub > max_torch_steps:
        raise ValueError(f"the validation would take {n_samples * n_sub} torch steps ({n_samples} samples x {n_sub} "
                         f"substeps, about {n_samples * n_sub * 0.4e-3:.3g} s), above max_torch_steps = "
                         f"{max_torch_steps}; shorten the waveform, raise dt_sim, or pass max_torch_steps=None")


def _substeps(dt: float, dt_sim: float | None, default: float) -> int:
    """Torch steps per waveform sample: ``dt_sim`` must divide ``dt`` (default: ≤ ``default``)."""
    if dt_sim is None:
        return max(1, math.ceil(dt / default - 1e-9))
    dt_sim = float(dt_sim)
    n = round(dt / dt_sim) if math.isfinite(dt_sim) and dt_sim > 0 else 0
    if n < 1 or abs(n * dt_sim - dt) > 1e-9 * dt:
        raise ValueError(f"dt_sim must be dt/n for an integer n >= 1 (dt = {dt:g} s), got {dt_sim!r}")
    return n


# ----------------------------------------------------------------------------- torch sides
def _torch_mif(i_in: torch.Tensor, dt: float, n_sub: int, p: MIFParameters, v0: float, x0: float, method: str):
    h = dt / n_sub
    state = MIFState(*(torch.tensor([val], dtype=F64) for val in (v0, x0, x0)))
    vs = [v0]
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(i_in.shape[0]):
            i_k = i_in[k].reshape(1)
            for _ in range(n_sub):
                if method == "euler":
                    v, state = mif_step_euler(i_k, state, p, h)
                else:
                    v, state = mif_step(i_k, state, p, h)
                vs.append(float(v))
    v = np.array(vs)
    return h * np.arange(v.size), v, time.perf_counter() - start


def _torch_oscillator(i_in: torch.Tensor, dt: float, n_sub: int, p: OscillatorParameters, v0: float, x0: float):
    h = dt / n_sub
    state = oscillator_initial_state((1,), p, v=v0, dtype=F64)
    state = state._replace(x=torch.full_like(state.x, x0))
    vs, xs = [v0], [x0]
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(i_in.shape[0]):
            i_k = i_in[k].reshape(1)
            for _ in range(n_sub):
                v, state = oscillator_step(i_k, state, p, h)
                vs.append(float(v))
                xs.append(float(state.x))
    return h * np.arange(len(vs)), np.array(vs), np.array(xs), time.perf_counter() - start


def network_forward(crossbars, v_in, dt: float, p: MIFParameters = MIFParameters(), *, current_gain: float = 1.0,
                    v_gain: float = 1.0, v_swing: float | None = None, substeps: int = 1, v0: float = 0.0, x0: float = X_INIT_KANG2021):
    """Torch simulation of :func:`~circuits.spice.neuron_export.network_netlist`'s circuit (float64).

    Returns ``(t, [v_layer (n_steps + 1, cols_ℓ) V per layer])`` with ``t = k·dt/substeps`` (the
    first row is the initial state). Equations in the module docstring.
    """
    layers = _check_layers(crossbars)
    w, dt = _waveform("v_in", v_in, dt)
    if w.dim() != 2 or w.shape[1] != layers[0].rows:
        raise ValueError(f"v_in must have shape (T, {layers[0].rows}) in V, got {tuple(w.shape)}")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be an int >= 1, got {substeps!r}")
    v_swing = check_swing(v_swing)
    h = dt / substeps
    with torch.no_grad():
        mats = [xb.transfer_matrix().to(F64) for xb in layers]
        states = [MIFState(*(torch.full((xb.cols,), val, dtype=F64) for val in (v0, x0, x0))) for xb in layers]
        traces = [[s.v.clone()] for s in states]
        for k in range(w.shape[0]):
            for _ in range(substeps):
                drive = w[k]
                for ell, a in enumerate(mats):
                    v_old = states[ell].v
                    _, states[ell] = mif_step(current_gain * (drive @ a), states[ell], p, h)
                    traces[ell].append(states[ell].v.clone())
                    drive = v_gain * 0.5 * (v_old + states[ell].v)
                    if v_swing is not None:
                        drive = v_swing * torch.tanh(drive / v_swing)
    return h * np.arange(w.shape[0] * substeps + 1), [torch.stack(tr).numpy() for tr in traces]


# ----------------------------------------------------------------------------- public entry points
def validate_neuron(kind: str = "mif", i_in=None, dt: float = 1e-6, *, params=None, dt_sim: float | None = None,
                    method: str = "exact", v0: float = 0.0, x0: float | None = None, max_step: float | None = None,
                    spike_level: float | None = None, spike_tolerance: float = 0.01, membrane_tolerance: float = 0.01,
                    backend: str = "auto", max_torch_steps: int | None = MAX_TORCH_STEPS) -> NeuronValidationReport:
    """Compare a torch neuron with ngspice under the input current ``i_in`` (A).

    Args:
        kind: ``"mif"`` or ``"oscillator"``.
        i_in: 1-D input current samples (A), ``i_in[k]`` held on ``[k dt, (k+1) dt)``.
        dt: waveform sample interval (s); the window is ``len(i_in) · dt``.
        params: :class:`MIFParameters` / :class:`OscillatorParameters` (default: the presets).
        dt_sim: torch step, ``dt/n`` (default: ≤ :data:`DT_SIM_MIF` / :data:`DT_SIM_OSCILLATOR`).
        method: ``"exact"`` (Strang splitting of exact sub-flows) or ``"euler"`` (MIF only).
        x0: initial memristor state (default: MIF code value 0.0238 / oscillator rest state).
        max_step: ngspice's largest step (default :data:`DT_SPICE_MIF` / :data:`DT_SPICE_OSCILLATOR`).
        spike_level: spike threshold (default: ``params.v_spike`` in V for the MIF, ``params.x_spike``
            (switch state) for the oscillator).
        max_torch_steps: refuse (ValueError) more torch steps than this (default :data:`MAX_TORCH_STEPS`;
            None: no cap).
    """
    if kind not in ("mif", "oscillator"):
        raise ValueError(f"kind must be 'mif' or 'oscillator', got {kind!r}")
    if method not in ("exact", "euler") or (method == "euler" and kind != "mif"):
        raise ValueError(f"method must be 'exact' (or 'euler' for kind='mif'), got {method!r}")
    if i_in is None:
        raise ValueError("i_in (input current waveform, A) is required")
    w, dt = _waveform("i_in", i_in, dt)
    if w.dim() != 1:
        raise ValueError(f"i_in must be 1-D (one sample per dt), got shape {tuple(w.shape)}")
    spike_tolerance = _check_tolerance("spike_tolerance", spike_tolerance)
    membrane_tolerance = _check_tolerance("membrane_tolerance", membrane_tolerance)
    v0 = check_scalar("v0", v0)
    n_sub = _substeps(dt, dt_sim, DT_SIM_MIF if kind == "mif" else DT_SIM_OSCILLATOR)
    _check_steps(w.numel(), n_sub, max_torch_steps)
    step = min(DT_SPICE_MIF if kind == "mif" else DT_SPICE_OSCILLATOR, dt) if max_step is None else max_step
    t_stop = w.numel() * dt
    if kind == "mif":
        p = MIFParameters() if params is None else params
        x0 = X_INIT_KANG2021 if x0 is None else x0
        res = run_netlist(mif_netlist(w, dt, p, v0=v0, x0=x0, max_step=step).render(), backend=backend)
        t_mx, v_mx, wall = _torch_mif(w, dt, n_sub, p, v0, x0, method)
        level = p.v_spike if spike_level is None else _level(spike_level)
        sp = {"mif": threshold_crossings(res["time"], res["mem"], level)}
        mx = {"mif": threshold_crossings(t_mx, v_mx, level) if np.isfinite(v_mx).all() else []}
    else:
        p = OscillatorParameters() if params is None else params
        if x0 is None:
            x0 = float(oscillator_initial_state((1,), p, v=v0, dtype=F64).x.reshape(-1)[0])
        res = run_netlist(oscillator_netlist(w, dt, p, v0=v0, x0=x0, max_step=step).render(), backend=backend)
        t_mx, v_mx, x_mx, wall = _torch_oscillator(w, dt, n_sub, p, v0, x0)
        level = p.x_spike if spike_level is None else _level(spike_level)
        sp = {"oscillator": threshold_crossings(res["time"], res["xsw"], level)}
        mx = {"oscillator": threshold_crossings(t_mx, x_mx, level)}
    err_v, swing = _membrane_err(res["time"], res["mem"], t_mx, v_mx)
    err_t = _spike_err(sp, mx, t_stop)
    report = NeuronValidationReport(kind, t_stop, dt, dt / n_sub, method, w.numel() * n_sub, level, swing, err_v, err_t,
                                    sp, mx, t_spice=res.wall_time, t_torch=wall, spike_tolerance=spike_tolerance,
                                    membrane_tolerance=membrane_tolerance, backend=res.backend)
    ok = err_t <= spike_tolerance and err_v <= membrane_tolerance
    if kind == "oscillator":
        report.period_spice, report.period_torch = _period(sp[kind]), _period(mx[kind])
        if report.period_spice is not None and report.period_torch is not None:
            report.period_rel_err = abs(report.period_torch - report.period_spice) / report.period_spice
            ok = ok and report.period_rel_err <= spike_tolerance
    report.passed = bool(ok)
    return report


def default_network(seed: int = 0, *, hidden: int = 3, outputs: int = 2, g_range=(10e-6, 100e-6),
                    v_amp: float = 0.2, n_steps: int = 100):
    """``(crossbars, v_in, dt)`` of the default 4-input, 2-layer network.

    Conductances ``U(g_range)`` S from ``torch.Generator().manual_seed(seed)`` (layer 1 first);
    wires 1 Ω per segment, drivers and sense 10 Ω. Input i is a pulse train of ``v_amp`` V,
    8 µs on every 20 µs, shifted by 5 i µs, sampled at dt = 1 µs for ``n_steps`` steps.
    """
    from xbar import Crossbar

    gen = torch.Generator().manual_seed(int(seed))
    lo, hi = g_range
    if not (0 < lo <= hi):
        raise ValueError(f"g_range must satisfy 0 < g_min <= g_max (S), got {g_range!r}")
    crossbars = []
    for rows, cols in ((4, hidden), (hidden, outputs)):
        g = lo + (hi - lo) * torch.rand(rows, cols, generator=gen, dtype=F64)
        crossbars.append(Crossbar(g, r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0))
    k = torch.arange(n_steps).reshape(-1, 1)
    v_in = v_amp * (((k + 5 * torch.arange(4).reshape(1, -1)) % 20) < 8).to(F64)
    return crossbars, v_in, 1e-6


def validate_network(crossbars=None, v_in=None, dt: float = 1e-6, *, params: MIFParameters | None = None,
                     current_gain: float = 1.0, v_gain: float = 1.0, v_swing: float | None = None,
                     dt_sim: float | None = None, max_step: float | None = None, spike_level: float | None = None, seed: int = 0,
                     spike_tolerance: float = 0.01,
                     membrane_tolerance: float = 0.01, backend: str = "auto",
                     max_torch_steps: int | None = MAX_TORCH_STEPS) -> NeuronValidationReport:
    """Compare :func:`network_forward` with ngspice on crossbar layers feeding MIF neurons.

    Without ``crossbars``/``v_in`` the :func:`default_network` of ``seed`` is used. The membrane
    error is relative to the swing of all neurons together (largest minus smallest voltage);
    ``spike_level`` (V) defaults to ``params.v_spike``; ``max_torch_steps`` as in :func:`validate_neuron`.
    """
    if (crossbars is None) != (v_in is None):
        raise ValueError("pass both crossbars and v_in, or neither (default network)")
    if crossbars is None:
        crossbars, v_in, dt = default_network(seed)
    layers = _check_layers(crossbars)
    w, dt = _waveform("v_in", v_in, dt)
    spike_tolerance = _check_tolerance("spike_tolerance", spike_tolerance)
    membrane_tolerance = _check_tolerance("membrane_tolerance", membrane_tolerance)
    p = MIFParameters() if params is None else params
    n_sub = _substeps(dt, dt_sim, DT_SIM_MIF)
    _check_steps(w.shape[0], n_sub, max_torch_steps)
    step = min(DT_SPICE_MIF, dt) if max_step is None else max_step
    level = p.v_spike if spike_level is None else _level(spike_level)
    net = network_netlist(layers, w, dt, p, current_gain=current_gain, v_gain=v_gain, v_swing=v_swing, max_step=step)
    res = run_netlist(net.render(), backend=backend)
    start = time.perf_counter()
    t_mx, v_layers = network_forward(layers, w, dt, p, current_gain=current_gain, v_gain=v_gain, v_swing=v_swing,
                                     substeps=n_sub)
    wall = time.perf_counter() - start
    names = [f"l{ell}_{j}" for ell, xb in enumerate(layers, start=1) for j in range(xb.cols)]
    v_mx = np.concatenate(v_layers, axis=1)
    v_sp = np.stack([res[f"mem_{name}"] for name in names], axis=1)
    sp = {name: threshold_crossings(res["time"], v_sp[:, n], level) for n, name in enumerate(names)}
    mx = {name: threshold_crossings(t_mx, v_mx[:, n], level) for n, name in enumerate(names)}
    err_v, swing = _membrane_err(res["time"], v_sp, t_mx, v_mx)
    t_stop = w.shape[0] * dt
    err_t = _spike_err(sp, mx, t_stop)
    return NeuronValidationReport("network", t_stop, dt, dt / n_sub, "exact", w.shape[0] * n_sub, level, swing,
                                  err_v, err_t,
                                  sp, mx, t_spice=res.wall_time, t_torch=wall, spike_tolerance=spike_tolerance,
                                  membrane_tolerance=membrane_tolerance,
                                  passed=bool(err_t <= spike_tolerance and err_v <= membrane_tolerance),
                                  backend=res.backend)
