r"""Leaky and non-leaky integrate-and-fire neurons: a pure functional core and thin modules.

Units. Time constants and the step ``dt`` are in seconds. Voltages are dimensionless: they are
measured in the units of the threshold (``v_th = 1`` by default), and the input ``x`` is the
drive "R·I" (membrane resistance × input current) in the same units, so a constant ``x`` drives
the leaky membrane towards ``v_leak + x``.

Leaky integrate-and-fire (LIF), continuous time, with an optional current-based synapse::

    tau_syn di/dt = -i + x(t)                     (tau_syn > 0; unit DC gain)
    tau_mem dv/dt = -(v - v_leak) + i(t)          (i = x when there is no synapse)
    v >= v_th  ->  spike, then reset

Discretisation: the input ``x`` is held constant over each step of length ``dt`` (zero-order
hold) and the linear ODEs are integrated *exactly* over the step (exponential / "exact
integration" as in Rotter & Diesmann, Biol. Cybern. 81, 381 (1999)). With
``a_m = exp(-dt/tau_mem)`` and ``a_s = exp(-dt/tau_syn)``::

    no synapse:   v' = v_leak + (v - v_leak) a_m + (1 - a_m) x
    synapse:      i' = x + (i - x) a_s
                  v' = v_leak + (v - v_leak) a_m + (1 - a_m) x + (i - x) kappa
                  kappa = tau_syn/(tau_syn - tau_mem) (a_s - a_m)   [-> (dt/tau) e^(-dt/tau) if equal]

Because the synapse has unit DC gain, a constant drive ``x`` takes the membrane to
``v_leak + x`` with or without it; a drive lasting one step (an input spike of weight ``x``) is
low-pass filtered, raising ``i`` by ``x (1 - a_s)`` during that step, then decaying with
``tau_syn``. ``tau_syn = None`` or ``0.0`` (the limit tau_syn -> 0) means no synapse.

Spike, reset and refractoriness, applied after the integration of each step::

    refractory (counter r > 0):  v' = v_reset, z = 0, r <- r - 1
    otherwise:                   z = H(v' - v_th)        (surrogate gradient in the backward pass)
      reset == "subtract":       v' <- v' - z v_th        (keeps the overshoot; Rueckauer et al. 2017)
      reset == "zero":           v' <- v' (1 - z) + z v_reset
      after a spike:             r <- refractory_steps

``H(0) = 1`` (a membrane exactly at threshold spikes). At most one spike per neuron and step.
During the refractory period the membrane is clamped to ``v_reset`` whatever the reset mode.
By default (``detach_reset=True``) the spike used in the reset term is detached from the
graph, so gradients flow through the membrane but not through the reset — the choice of
snnTorch, which Zenke & Vogels (Neural Comput. 33, 899 (2021)) found to train at least as well;
set ``detach_reset=False`` to differentiate through the reset as Norse does.

Integrate-and-fire (IF): ``v' = v + x`` (no leak, no synapse), then the same spike/reset rules.

Leaky integrator (LI) readout: the LIF membrane (with optional synapse) without threshold or
reset; its membrane trace is the network output, commonly reduced by its maximum or mean over
time (:func:`membrane_max`, :func:`membrane_mean`).

Sequences are time-major: ``(T, batch, features)`` (any trailing shape works elementwise), as in
Norse and snnTorch. The sequence modules (:class:`LIF`, :class:`IF`, :class:`LeakyIntegrator`)
also take batch-first input ``(batch, T, features)`` with ``batch_first=True`` (their output then
has the same layout), and refuse what they cannot read unambiguously: a tensor with fewer than 3
dimensions (``(8, 64)`` could be 8 steps of 64 features or 8 samples of one step: use the
single-step cells :class:`LIFCell` / :class:`IFCell` for one step), and, when ``time_steps`` is
given, a time axis of another length (the message says when the *other* axis has that length,
i.e. the input looks batch-first or time-major instead). A ``(8, 16, 64)`` input is read as
``T = 8`` only because the module's documented default says so (``batch_first=False``).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn

from training.surrogate import SURROGATES, check_surrogate, get_surrogate

__all__ = [
    "LIFParameters", "LIFState", "IFParameters", "IFState", "LIParameters", "LIState",
    "lif_initial_state", "if_initial_state", "li_initial_state",
    "lif_step", "if_step", "li_step", "lif_sequence", "if_sequence", "li_sequence",
    "LIF", "IF", "LIFCell", "IFCell", "LeakyIntegrator",
    "spike_count", "membrane_max", "membrane_mean", "RESETS", "SURROGATE_NAMES",
]

#: allowed ``reset`` values
RESETS = ("subtract", "zero")
#: allowed ``surrogate`` values
SURROGATE_NAMES = tuple(sorted(SURROGATES))


# ============================================================================= validation helpers
def _real(name: str, value, *, low: float | None = None, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, inf), got {value:g}")
    return value


def _check_dt(dt) -> float:
    return _real("dt", dt, low=0.0, low_open=True)


def _check_spiking(p) -> None:
    """Checks shared by LIF and IF parameters."""
    v_th = _real("v_th", p.v_th)
    v_reset = _real("v_reset", p.v_reset)
    if not v_reset < v_th:
        raise ValueError(f"v_reset must be < v_th (= {v_th:g}), got v_reset = {v_reset:g}")
    if p.reset not in RESETS:
        raise ValueError(f"reset must be one of {list(RESETS)}, got {p.reset!r}")
    if isinstance(p.refractory_steps, bool) or not isinstance(p.refractory_steps, int) or p.refractory_steps < 0:
        raise ValueError(f"refractory_steps must be an int in [0, inf), got {p.refractory_steps!r}")
    if not isinstance(p.detach_reset, bool):
        raise ValueError(f"detach_reset must be a bool, got {p.detach_reset!r}")
    check_surrogate(p.surrogate, p.slope)


def _check_leaky(p) -> None:
    _real("tau_mem", p.tau_mem, low=0.0, low_open=True)
    if p.tau_syn is not None:
        _real("tau_syn", p.tau_syn, low=0.0)
    _real("v_leak", p.v_leak)


def _check_input(x) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))


def _check_sequence(x) -> None:
    _check_input(x)
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"x must be time-major with T >= 1 steps, shape (T, ...), got {tuple(x.shape)}")


def _check_layout(batch_first, time_steps) -> tuple[bool, Optional[int]]:
    if not isinstance(batch_first, bool):
        raise ValueError(f"batch_first must be a bool, got {batch_first!r}")
    if time_steps is not None and (isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1):
        raise ValueError(f"time_steps must be None or an int in [1, inf), got {time_steps!r}")
    return batch_first, time_steps


def _to_time_major(module: str, cell: str, x, batch_first: bool, time_steps: Optional[int]):
    """``x`` as a time-major sequence for a sequence module, or a ValueError that says why the
    layout cannot be read (module docstring)."""
    if batch_first:
        _check_input(x)
    else:
        _check_sequence(x)  # T >= 1
    layout = "(batch, T, features, ...)" if batch_first else "(T, batch, features, ...)"
    if x.dim() < 3:
        raise ValueError(f"{module} runs over a sequence {layout} (batch_first={batch_first}), got a {x.dim()}-D "
                         f"tensor of shape {tuple(x.shape)}, which does not say which axis is time: add the missing "
                         f"axis (x[None] for T = 1, x[:, None] for one sample), or use {cell} for one time step")
    t_axis = 1 if batch_first else 0
    if time_steps is not None and x.shape[t_axis] != time_steps:
        hint = ""
        if x.shape[1 - t_axis] == time_steps:
            hint = (f"; axis {1 - t_axis} has {time_steps} entries: the input looks "
                    f"{'time-major' if batch_first else 'batch-first'}, so pass batch_first={not batch_first}")
        raise ValueError(f"{module} expects {time_steps} time steps on axis {t_axis} of a {layout} input, got shape "
                         f"{tuple(x.shape)}{hint}")
    return x.transpose(0, 1) if batch_first else x


# ============================================================================= parameters and state
class LIFParameters(NamedTuple):
    """LIF parameters (plain values; ``p._asdict()`` serialises them).

    tau_mem: membrane time constant in s, (0, inf).
    tau_syn: synaptic current time constant in s; ``None`` or ``0.0`` = no synapse (the input
        drives the membrane directly), else (0, inf).
    v_th: threshold (dimensionless voltage units); v_reset: reset value, < v_th (used by
        ``reset="zero"`` and during refractoriness); v_leak: resting potential.
    reset: ``"subtract"`` (v − z·v_th) or ``"zero"`` (v ← v_reset).
    refractory_steps: steps after a spike with clamped membrane and no spike, int >= 0.
    surrogate, slope: surrogate-gradient name and slope (see :mod:`training.surrogate`).
    detach_reset: detach the spike in the reset term from the autograd graph.
    """

    tau_mem: float = 10e-3
    tau_syn: Optional[float] = None
    v_th: float = 1.0
    v_reset: float = 0.0
    v_leak: float = 0.0
    reset: str = "subtract"
    refractory_steps: int = 0
    surrogate: str = "fast_sigmoid"
    slope: float = 25.0
    detach_reset: bool = True

    def validate(self) -> "LIFParameters":
        """Raise ``ValueError`` naming the first bad field and its allowed range; return self."""
        _check_leaky(self)
        _check_spiking(self)
        return self


class LIFState(NamedTuple):
    """LIF state: membrane ``v``, synaptic current ``i`` and refractory counter ``refrac`` (steps left)."""

    v: torch.Tensor
    i: torch.Tensor
    refrac: torch.Tensor


class IFParameters(NamedTuple):
    """IF parameters; same meaning as in :class:`LIFParameters` (no leak, no synapse)."""

    v_th: float = 1.0
    v_reset: float = 0.0
    reset: str = "subtract"
    refractory_steps: int = 0
    surrogate: str = "fast_sigmoid"
    slope: float = 25.0
    detach_reset: bool = True

    def validate(self) -> "IFParameters":
        """Raise ``ValueError`` naming the first bad field and its allowed range; return self."""
        _check_spiking(self)
        return self


class IFState(NamedTuple):
    """IF state: membrane ``v`` and refractory counter ``refrac`` (steps left)."""

    v: torch.Tensor
    refrac: torch.Tensor


class LIParameters(NamedTuple):
    """Leaky-integrator readout parameters: ``tau_mem`` (s), ``tau_syn`` (s, None/0 = none), ``v_leak``."""

    tau_mem: float = 10e-3
    tau_syn: Optional[float] = None
    v_leak: float = 0.0

    def validate(self) -> "LIParameters":
        """Raise ``ValueError`` naming the first bad field and its allowed range; return self."""
        _check_leaky(self)
        return self


class LIState(NamedTuple):
    """Leaky-integrator state: membrane ``v`` and synaptic current ``i``."""

    v: torch.Tensor
    i: torch.Tensor


def lif_initial_state(x: torch.Tensor, p: LIFParameters = LIFParameters()) -> LIFState:
    """Resting state shaped like one time step ``x``: v = v_leak, i = 0, not refractory."""
    return LIFState(v=torch.full_like(x, float(p.v_leak)), i=torch.zeros_like(x),
                    refrac=torch.zeros(x.shape, dtype=torch.int64, device=x.device))


def if_initial_state(x: torch.Tensor, p: IFParameters = IFParameters()) -> IFState:
    """Resting state shaped like one time step ``x``: v = 0, not refractory."""
    return IFState(v=torch.zeros_like(x), refrac=torch.zeros(x.shape, dtype=torch.int64, device=x.device))


def li_initial_state(x: torch.Tensor, p: LIParameters = LIParameters()) -> LIState:
    """Resting state shaped like one time step ``x``: v = v_leak, i = 0."""
    return LIState(v=torch.full_like(x, float(p.v_leak)), i=torch.zeros_like(x))


# ============================================================================= functional core
def _propagators(tau_mem: float, tau_syn: Optional[float], dt: float) -> tuple[float, float, float]:
    """Exact-integration coefficients ``(a_m, a_s, kappa)`` (a_s = kappa = 0 without synapse).

    ``kappa = tau_syn/(tau_syn - tau_mem) (a_s - a_m)`` is evaluated as
    ``a_m (dt/tau_mem) expm1(d)/d`` with ``d = dt (tau_syn - tau_mem)/(tau_mem tau_syn)``, which is
    free of cancellation and has the right limit ``a_m dt/tau_mem`` at ``tau_syn = tau_mem``.
    """
    a_m = math.exp(-dt / tau_mem)
    if not tau_syn:
        return a_m, 0.0, 0.0
    a_s = math.exp(-dt / tau_syn)
    d = dt * (tau_syn - tau_mem) / (tau_mem * tau_syn)
    ratio = 1.0 if d == 0.0 else math.expm1(d) / d
    return a_m, a_s, a_m * (dt / tau_mem) * ratio


def _integrate(x, v, i, p, dt: float):
    """Exact integration of the (v, i) membrane/synapse ODEs over one step with constant ``x``."""
    a_m, a_s, kappa = _propagators(p.tau_mem, p.tau_syn, dt)
    v_new = p.v_leak + (v - p.v_leak) * a_m + (1.0 - a_m) * x
    if not p.tau_syn:
        return v_new, x
    return v_new + (i - x) * kappa, x + (i - x) * a_s


def _fire(v, refrac, p):
    """Refractory clamp, threshold crossing with surrogate gradient, reset; returns (z, v, refrac)."""
    spike_fn = get_surrogate(p.surrogate, p.slope)
    refractory = refrac > 0
    if p.refractory_steps > 0:
        v = torch.where(refractory, torch.full_like(v, float(p.v_reset)), v)
    z = spike_fn(v - p.v_th)
    if p.refractory_steps > 0:
        z = z * (~refractory).to(z.dtype)
    zr = z.detach() if p.detach_reset else z
    if p.reset == "subtract":
        v = v - zr * p.v_th
    else:
        v = v * (1.0 - zr) + zr * p.v_reset
    if p.refractory_steps > 0:
        refrac = torch.where(z.detach() > 0, torch.full_like(refrac, p.refractory_steps),
                             torch.clamp(refrac - 1, min=0))
    return z, v, refrac


def _lif_step(x, state: LIFState, p: LIFParameters, dt: float):
    v, i = _integrate(x, state.v, state.i, p, dt)
    z, v, refrac = _fire(v, state.refrac, p)
    return z, LIFState(v, i, refrac)


def _if_step(x, state: IFState, p: IFParameters):
    z, v, refrac = _fire(state.v + x, state.refrac, p)
    return z, IFState(v, refrac)


def _li_step(x, state: LIState, p: LIParameters, dt: float):
    v, i = _integrate(x, state.v, state.i, p, dt)
    return v, LIState(v, i)


def lif_step(x: torch.Tensor, state: Optional[LIFState], p: LIFParameters = LIFParameters(),
             dt: float = 1e-3) -> tuple[torch.Tensor, LIFState]:
    """One LIF step of length ``dt`` (s) with input ``x`` (drive R·I, threshold units).

    Returns ``(z, new_state)`` with spikes ``z`` in {0, 1} (surrogate gradient). ``state=None``
    starts from rest. See the module docstring for the equations.
    """
    p.validate()
    dt = _check_dt(dt)
    _check_input(x)
    if state is None:
        state = lif_initial_state(x, p)
    return _lif_step(x, state, p, dt)


def if_step(x: torch.Tensor, state: Optional[IFState], p: IFParameters = IFParameters()
            ) -> tuple[torch.Tensor, IFState]:
    """One IF step: ``v ← v + x``, spike if ``v >= v_th``, reset. Returns ``(z, new_state)``."""
    p.validate()
    _check_input(x)
    if state is None:
        state = if_initial_state(x, p)
    return _if_step(x, state, p)


def li_step(x: torch.Tensor, state: Optional[LIState], p: LIParameters = LIParameters(),
            dt: float = 1e-3) -> tuple[torch.Tensor, LIState]:
    """One leaky-integrator step (LIF membrane without threshold). Returns ``(v, new_state)``."""
    p.validate()
    dt = _check_dt(dt)
    _check_input(x)
    if state is None:
        state = li_initial_state(x, p)
    return _li_step(x, state, p, dt)


def lif_sequence(x: torch.Tensor, p: LIFParameters = LIFParameters(), dt: float = 1e-3,
                 state: Optional[LIFState] = None) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run LIF over a time-major ``x`` of shape ``(T, ...)``.

    Returns ``(spikes, membrane, final_state)``; ``spikes`` and ``membrane`` (after reset) are
    ``(T, ...)``.
    """
    p.validate()
    dt = _check_dt(dt)
    _check_sequence(x)
    if state is None:
        state = lif_initial_state(x[0], p)
    zs, vs = [], []
    for t in range(x.shape[0]):
        z, state = _lif_step(x[t], state, p, dt)
        zs.append(z)
        vs.append(state.v)
    return torch.stack(zs), torch.stack(vs), state


def if_sequence(x: torch.Tensor, p: IFParameters = IFParameters(), state: Optional[IFState] = None
                ) -> tuple[torch.Tensor, torch.Tensor, IFState]:
    """Run IF over a time-major ``x`` ``(T, ...)``; returns ``(spikes, membrane, final_state)``."""
    p.validate()
    _check_sequence(x)
    if state is None:
        state = if_initial_state(x[0], p)
    zs, vs = [], []
    for t in range(x.shape[0]):
        z, state = _if_step(x[t], state, p)
        zs.append(z)
        vs.append(state.v)
    return torch.stack(zs), torch.stack(vs), state


def li_sequence(x: torch.Tensor, p: LIParameters = LIParameters(), dt: float = 1e-3,
                state: Optional[LIState] = None) -> tuple[torch.Tensor, LIState]:
    """Run the leaky integrator over ``x`` ``(T, ...)``; returns ``(membrane (T, ...), final_state)``."""
    p.validate()
    dt = _check_dt(dt)
    _check_sequence(x)
    if state is None:
        state = li_initial_state(x[0], p)
    vs = []
    for t in range(x.shape[0]):
        v, state = _li_step(x[t], state, p, dt)
        vs.append(v)
    return torch.stack(vs), state


# ============================================================================= readouts
def spike_count(spikes: torch.Tensor) -> torch.Tensor:
    """Number of spikes per neuron over time: sum over dim 0 of a ``(T, ...)`` spike train."""
    _check_sequence(spikes)
    return spikes.sum(dim=0)


def membrane_max(v: torch.Tensor) -> torch.Tensor:
    """Maximum over time (dim 0) of a ``(T, ...)`` membrane trace (gradient to the argmax step)."""
    _check_sequence(v)
    return v.max(dim=0).values


def membrane_mean(v: torch.Tensor) -> torch.Tensor:
    """Mean over time (dim 0) of a ``(T, ...)`` membrane trace."""
    _check_sequence(v)
    return v.mean(dim=0)


# ============================================================================= modules
class LIF(nn.Module):
    """LIF layer over a sequence → spikes of the same shape: time-major ``(T, batch, features, ...)``
    by default, ``(batch, T, features, ...)`` with ``batch_first=True``; ``time_steps`` (optional)
    makes the module refuse a time axis of another length (module docstring).

    ``forward(x, state=None)`` returns the spikes, or ``(spikes, membrane)`` if
    ``record_membrane=True``. Use :func:`lif_sequence` to also get the final state.
    """

    def __init__(self, p: LIFParameters = LIFParameters(), dt: float = 1e-3, record_membrane: bool = False, *,
                 batch_first: bool = False, time_steps: Optional[int] = None):
        super().__init__()
        self.p = p.validate()
        self.dt = _check_dt(dt)
        self.record_membrane = bool(record_membrane)
        self.batch_first, self.time_steps = _check_layout(batch_first, time_steps)

    def forward(self, x: torch.Tensor, state: Optional[LIFState] = None):
        x = _to_time_major("LIF", "the single-step LIFCell", x, self.batch_first, self.time_steps)
        z, v, _ = lif_sequence(x, self.p, self.dt, state)
        if self.batch_first:
            z, v = z.transpose(0, 1), v.transpose(0, 1)
        return (z, v) if self.record_membrane else z

    def extra_repr(self) -> str:
        return (f"p={self.p}, dt={self.dt:g}, record_membrane={self.record_membrane}, "
                f"batch_first={self.batch_first}, time_steps={self.time_steps}")


class IF(nn.Module):
    """IF layer over a sequence → spikes of the same shape (layout options as :class:`LIF`)."""

    def __init__(self, p: IFParameters = IFParameters(), record_membrane: bool = False, *,
                 batch_first: bool = False, time_steps: Optional[int] = None):
        super().__init__()
        self.p = p.validate()
        self.record_membrane = bool(record_membrane)
        self.batch_first, self.time_steps = _check_layout(batch_first, time_steps)

    def forward(self, x: torch.Tensor, state: Optional[IFState] = None):
        x = _to_time_major("IF", "the single-step IFCell", x, self.batch_first, self.time_steps)
        z, v, _ = if_sequence(x, self.p, state)
        if self.batch_first:
            z, v = z.transpose(0, 1), v.transpose(0, 1)
        return (z, v) if self.record_membrane else z

    def extra_repr(self) -> str:
        return (f"p={self.p}, record_membrane={self.record_membrane}, batch_first={self.batch_first}, "
                f"time_steps={self.time_steps}")


class LIFCell(nn.Module):
    """Single-step LIF module: ``forward(x, state=None) -> (spikes, new_state)`` (snnTorch style)."""

    def __init__(self, p: LIFParameters = LIFParameters(), dt: float = 1e-3):
        super().__init__()
        self.p = p.validate()
        self.dt = _check_dt(dt)

    def forward(self, x: torch.Tensor, state: Optional[LIFState] = None):
        _check_input(x)
        if state is None:
            state = lif_initial_state(x, self.p)
        return _lif_step(x, state, self.p, self.dt)

    def extra_repr(self) -> str:
        return f"p={self.p}, dt={self.dt:g}"


class IFCell(nn.Module):
    """Single-step IF module: ``forward(x, state=None) -> (spikes, new_state)``."""

    def __init__(self, p: IFParameters = IFParameters()):
        super().__init__()
        self.p = p.validate()

    def forward(self, x: torch.Tensor, state: Optional[IFState] = None):
        _check_input(x)
        if state is None:
            state = if_initial_state(x, self.p)
        return _if_step(x, state, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LeakyIntegrator(nn.Module):
    """Non-spiking leaky-integrator readout: a sequence → membrane trace, same shape and layout
    (time-major by default; options as :class:`LIF`).

    Reduce the trace with :func:`membrane_max` or :func:`membrane_mean` (time-major: over dim 0)
    to get logits.
    """

    def __init__(self, p: LIParameters = LIParameters(), dt: float = 1e-3, *, batch_first: bool = False,
                 time_steps: Optional[int] = None):
        super().__init__()
        self.p = p.validate()
        self.dt = _check_dt(dt)
        self.batch_first, self.time_steps = _check_layout(batch_first, time_steps)

    def forward(self, x: torch.Tensor, state: Optional[LIState] = None) -> torch.Tensor:
        x = _to_time_major("LeakyIntegrator", "li_step", x, self.batch_first, self.time_steps)
        v, _ = li_sequence(x, self.p, self.dt, state)
        return v.transpose(0, 1) if self.batch_first else v

    def extra_repr(self) -> str:
        return f"p={self.p}, dt={self.dt:g}, batch_first={self.batch_first}, time_steps={self.time_steps}"
