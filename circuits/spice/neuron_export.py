r"""SPICE netlists of memxbar's memristive neurons and of a small fully memristive network.

Volatile memristor (:mod:`devices.volatile`, mean-metastable-switch model) as a subcircuit
``.subckt <name> p n x params: x0=...`` (pins: device terminals ``p``, ``n`` and its state node
``x``, exposed so that every state has a deterministic top-level name). As in
:mod:`circuits.spice.device_models`, the state x lives on a 1 F capacitor from ``x`` to ground
(``IC = x0``), charged by a behavioural current equal to dx/dt, so ``dV(x)/dt = dx/dt``::

    I(p→n) = G(x) · V,          G(x) = x / R_on + (1 − x) / R_off,     V = V(p) − V(n)
    dx/dt  = a (1 − x) − b x,   a = σ((V' − v_on + ρ x w) / k_th) / τ_on
                                b = σ((v_off + ρ (1 − x) w − V') / k_th) / τ,     w = v_on − v_off

with ``V' = V`` (polar) or ``|V|`` (bipolar) and ρ the regenerative ``feedback``. The logistic
function is written ``σ(z) = (1 + tanh(z/2)) / 2``, which cannot overflow (``exp`` of a large
argument would). A 1e15 Ω resistor gives the state node a DC path (leak time 1e15 s). The
device parameters are baked into the subcircuit as formatted numbers (one definition per
parameter set); per-device (D2D) tensors with differing values are refused.

MIF neuron (:mod:`circuits.neurons.mif`) — nodes ``mem`` (membrane), ``rev1``/``rev2`` (reversal
sources), ``x1``/``x2`` (states)::

    Iin 0 mem PWL(...)           input current into the membrane
    Cmem mem 0 C   IC=v0         C dv/dt = I − G1 (v − E1) − G2 (v − E2)
    Xm1 mem rev1 x1 mss_m1       Vrev1 rev1 0 DC E1
    Xm2 mem rev2 x2 mss_m2       Vrev2 rev2 0 DC E2

With compliance rails (``MIFParameters.v_low``/``v_high``) a stiff clamp ``Brail`` from the
membrane to the rails takes the input's excess current once v reaches a rail (:func:`_rail_clamp`).

Relaxation oscillator (:mod:`circuits.neurons.oscillator`) — ``Cmem mem 0 C``, switch ``Xsw mem
load xsw``, ``Rload load 0 R_L`` (R_L = 0: the switch goes straight to ground), optional
``Rleak mem 0 1/g_leak`` and the input current source.

Input waveforms are piecewise constant, ``value[k]`` on ``[k Δt, (k + 1) Δt)`` as the torch
steps use them; the PWL source changes level with a linear ramp of width ``edge`` centred on
``k Δt``, which carries exactly the charge of the ideal step.

Network (:func:`network_netlist`): layer ℓ is a linear crossbar (wires, drivers and sense
resistors as in :mod:`circuits.spice.crossbar_export`, cells ``1/G``) wrapped in a subcircuit
``xbar_l<ℓ>`` with pins ``in_0 … in_{rows−1}`` (row drivers) and ``sense_0 … sense_{cols−1}``
(column sense ends). Per column j of layer ℓ::

    Vsense_l<ℓ>_<j> sense_l<ℓ>_<j> 0 DC 0                 virtual ground, measures i_col
    Fmir_l<ℓ>_<j> 0 mem_l<ℓ>_<j> Vsense_l<ℓ>_<j> gain    I_in = current_gain · i_col

``current_gain`` is the gain of the TIA / current mirror that copies the sensed column current
into the neuron's membrane (an ideal CCCS: no loading, infinite output resistance). Layer 1's
rows are driven by PWL voltage sources ``Vin_l1_<i>`` (node ``in_l1_<i>``); layer ℓ > 1's row i is
driven by a voltage buffer of the previous layer's membrane voltage: ideal and linear,
``Ebuf_l<ℓ>_<i> in_l<ℓ>_<i> 0 mem_l<ℓ−1>_<i> 0 v_gain`` (VCVS), or, with ``v_swing`` (V), saturating
smoothly at ±v_swing like a buffer with rails (the row voltage then never exceeds the synapses'
read voltage): ``Bbuf_l<ℓ>_<i> in_l<ℓ>_<i> 0 V = v_swing·tanh(v_gain·V(mem_l<ℓ−1>_<i>)/v_swing)``. Every MIF neuron uses the same reversal sources
(``rev1``, ``rev2``; ideal, so sharing is exact) and has states ``x1_l<ℓ>_<j>``, ``x2_l<ℓ>_<j>``.
"""
from __future__ import annotations

import math

import torch

from circuits.neurons.mif import X_INIT_KANG2021, MIFParameters, validate_mif_parameters
from circuits.neurons.oscillator import (OscillatorParameters, oscillator_initial_state,
                                         validate_oscillator_parameters)
from devices.validation import check_real
from devices.volatile import SwitchParameters

from .crossbar_export import _cells, _two_terminal
from .netlist import Expr, Netlist, const, func, ident, node, num, volt

__all__ = ["volatile_subcircuit", "volatile_instance", "mif_netlist", "oscillator_netlist", "network_netlist",
           "pwl_points", "NEURON_OPTIONS"]

#: ngspice options of the neuron transients: tight tolerances (currents are µA, charges ~1e-13 C)
NEURON_OPTIONS = {"reltol": 1e-6, "abstol": 1e-15, "vntol": 1e-9, "chgtol": 1e-20}


# ----------------------------------------------------------------------------- helpers
def _scalar(name: str, value) -> float:
    """A finite float; a tensor must hold one value (the export has no per-device parameters)."""
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf), got {value!r}")
    if t.numel() > 1 and not bool((t == t[0]).all()):
        raise ValueError(f"{name} must be one value for the SPICE export (per-device values are not "
                         f"supported), got {t.numel()} different values")
    return float(t[0])


def _sigmoid(z: Expr) -> Expr:
    """``σ(z) = (1 + tanh(z/2)) / 2`` (bounded; no overflow)."""
    return const(0.5) + const(0.5) * func("tanh", z * const(0.5))


def _waveform(name: str, values, dt) -> tuple[torch.Tensor, float]:
    """Validated ``(T, ...)`` float64 samples and step ``dt`` (s)."""
    w = torch.as_tensor(values, dtype=torch.float64)
    if w.dim() == 0 or w.shape[0] < 1:
        raise ValueError(f"{name} must be a time-major waveform with at least one sample, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    if torch.is_tensor(dt) and dt.numel() == 1:
        dt = dt.item()
    return w, check_real("dt (time step, s)", dt, low=0.0, low_open=True)


def pwl_points(values, dt: float, edge: float | None = None) -> list[tuple[float, float]]:
    """PWL points of a piecewise-constant waveform: ``values[k]`` on ``[k dt, (k+1) dt)``.

    A change of level at ``k dt`` becomes a linear ramp over ``[k dt − edge/2, k dt + edge/2]``
    (same charge as the ideal step). ``edge`` defaults to ``dt/100`` and must be in (0, dt).
    """
    w, dt = _waveform("values", values, dt)
    if w.dim() != 1:
        raise ValueError(f"values must be 1-D (one sample per step), got shape {tuple(w.shape)}")
    edge = dt / 100 if edge is None else float(edge)
    if not (math.isfinite(edge) and 0 < edge < dt):
        raise ValueError(f"edge must be in (0, dt) = (0, {dt:g}) s, got {edge!r}")
    vals = w.tolist()
    points = [(0.0, vals[0])]
    for k in range(1, len(vals)):
        if vals[k] != vals[k - 1]:
            points += [(k * dt - edge / 2, vals[k - 1]), (k * dt + edge / 2, vals[k])]
    points.append((len(vals) * dt, vals[-1]))
    return points


def check_swing(v_swing) -> float | None:
    """``v_swing`` (V) as a float in (0, inf), or None."""
    if v_swing is None:
        return None
    v_swing = _scalar("v_swing", v_swing)
    if v_swing <= 0:
        raise ValueError(f"v_swing (buffer output limit, V) must be in (0, inf) or None, got {v_swing!r}")
    return v_swing


def _card(net: Netlist, text: str) -> None:
    """Append a card assembled from validated names and formatted numbers only."""
    net.body.append(text)


def _vcvs(net: Netlist, name: str, out_p: str, out_n: str, ctl_p: str, ctl_n: str, gain: float) -> None:
    """``E`` element: ``V(out_p, out_n) = gain · V(ctl_p, ctl_n)`` (ideal voltage buffer)."""
    _card(net, f"E{ident(name)} {node(out_p)} {node(out_n)} {node(ctl_p)} {node(ctl_n)} {num(gain, 'v_gain')}")


def _buffer(net: Netlist, name: str, out: str, ctl: str, gain: float, swing: float | None) -> None:
    """Row buffer ``V(out) = gain · V(ctl)`` (``swing`` None, an ``E`` element) or
    ``swing · tanh(gain · V(ctl) / swing)`` (a ``B`` source)."""
    if swing is None:
        _vcvs(net, name, out, "0", ctl, "0", gain)
    else:
        net.bsource_voltage(name, out, "0", const(swing) * func("tanh", volt(ctl) * const(gain / swing)))


def _cccs(net: Netlist, name: str, n_plus: str, n_minus: str, vsense: str, gain: float) -> None:
    """``F`` element: ``gain · I(V<vsense>)`` flows from ``n_plus`` through it to ``n_minus``."""
    _card(net, f"F{ident(name)} {node(n_plus)} {node(n_minus)} V{ident(vsense)} {num(gain, 'current_gain')}")


def _transient(net: Netlist, t_stop: float, max_step: float) -> None:
    net.tran(max_step, t_stop, max_step=max_step, uic=True)
    net.set_options(**NEURON_OPTIONS)


def _max_step(max_step, default: float) -> float:
    step = default if max_step is None else float(max_step)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"max_step must be a time in (0, inf) s, got {max_step!r}")
    return step


# ----------------------------------------------------------------------------- volatile memristor
def volatile_subcircuit(net: Netlist, name: str, p: SwitchParameters) -> str:
    """Define the MSS volatile-memristor subcircuit ``name`` (pins ``p n x``, parameter ``x0``)
    with the numbers of ``p`` (equations in the module docstring). Returns ``name``."""
    ident(name, "subcircuit")
    r_on, r_off = _scalar("r_on", p.r_on), _scalar("r_off", p.r_off)
    v_on, v_off = _scalar("v_on", p.v_on), _scalar("v_off", p.v_off)
    tau, tau_on, k_th = _scalar("tau", p.tau), _scalar("tau_on", p.tau_on), _scalar("k_th", p.k_th)
    rho = _scalar("feedback", p.feedback)
    if not (0 < r_on < r_off and v_off < v_on and tau > 0 and tau_on > 0 and k_th > 0 and 0 <= rho <= 1):
        raise ValueError("switch parameters out of range: need 0 < r_on < r_off, v_off < v_on, tau, tau_on, "
                         "k_th > 0 and feedback in [0, 1]")
    if float(p.c2c_sigma) != 0.0:
        raise ValueError("c2c_sigma must be 0 for the SPICE export (cycle-to-cycle noise is not deterministic)")
    x, v_dev = volt("x"), volt("p", "n")
    v_eff = func("abs", v_dev) if p.bipolar else v_dev
    w = v_on - v_off
    th_on, th_off = const(v_on), const(v_off)
    if rho > 0:  # regenerative thresholds θ_on = v_on − ρ w x, θ_off = v_off + ρ w (1 − x)
        th_on = th_on - const(rho * w) * x
        th_off = const(v_off + rho * w) - const(rho * w) * x
    rate_on = _sigmoid((v_eff - th_on) / const(k_th)) / const(tau_on)
    rate_off = _sigmoid((th_off - v_eff) / const(k_th)) / const(tau)
    body = Netlist(name)
    body.bsource_current("mem", "p", "n", (const(1.0 / r_on) * x + const(1.0 / r_off) * (const(1.0) - x)) * v_dev)
    _card(body, "Cstate x 0 1 IC={x0}")
    body.bsource_current("rate", "0", "x", rate_on * (const(1.0) - x) - rate_off * x)
    body.resistor("state", "x", "0", 1e15)
    net.subcircuit(name, ["p", "n", "x"], body.body_lines(), params={"x0": 0.0})
    return name


def volatile_instance(net: Netlist, name: str, n_plus: str, n_minus: str, state: str, subckt: str,
                      x0: float) -> str:
    """Instance ``X<name>`` of a volatile-memristor subcircuit between ``n_plus`` and ``n_minus``
    with its state on node ``state`` starting at ``x0`` ∈ [0, 1]. Returns the state node."""
    x0 = _scalar("x0", x0)
    if not 0.0 <= x0 <= 1.0:
        raise ValueError(f"x0 (initial memristor state) must be in [0, 1], got {x0:g}")
    net.instance(name, [n_plus, n_minus, state], subckt, {"x0": x0})
    return node(state)


# ----------------------------------------------------------------------------- MIF neuron
def _mif_subcircuits(net: Netlist, p: MIFParameters) -> tuple[str, str]:
    return volatile_subcircuit(net, "mss_m1", p.m1), volatile_subcircuit(net, "mss_m2", p.m2)


def _mif_neuron(net: Netlist, suffix: str, mem: str, p: MIFParameters, v0: float, x0: float) -> tuple[str, str]:
    """Membrane capacitor and both memristor branches of one MIF neuron (reversal nodes ``rev1``,
    ``rev2`` must exist). Returns the state nodes ``(x1<suffix>, x2<suffix>)``."""
    net.capacitor(f"mem{suffix}", mem, "0", _scalar("c", p.c), ic=v0)
    _rail_clamp(net, f"rail{suffix}", mem, p)
    x1 = volatile_instance(net, f"m1{suffix}", mem, "rev1", f"x1{suffix}", "mss_m1", x0)
    x2 = volatile_instance(net, f"m2{suffix}", mem, "rev2", f"x2{suffix}", "mss_m2", x0)
    return x1, x2


#: conductance (S) of the clamp that stands for the input source's compliance rails in the export
G_RAIL_CLAMP = 10.0


def _rail_clamp(net: Netlist, name: str, mem: str, p: MIFParameters) -> None:
    """The input source's compliance rails (``p.v_low``/``p.v_high``; nothing if both are None) as
    a stiff clamp from the membrane to the rails: ``I(mem→0) = G (max(v − v_high, 0) − max(v_low − v, 0))``
    with ``G = G_RAIL_CLAMP``. It takes the excess of the ideal input current once v reaches a
    rail — the hard-rail source of :mod:`circuits.neurons.mif` (whose torch update smooths the
    clip over ``v_knee``; compare with a small ``v_knee``)."""
    if p.v_low is None and p.v_high is None:
        return
    v = volt(mem)
    current = const(0.0)
    if p.v_high is not None:
        current = current + func("max", v - const(_scalar("v_high", p.v_high)), const(0.0))
    if p.v_low is not None:
        current = current - func("max", const(_scalar("v_low", p.v_low)) - v, const(0.0))
    net.bsource_current(name, mem, "0", const(G_RAIL_CLAMP) * current)


def _reversal_sources(net: Netlist, p: MIFParameters) -> None:
    net.vsource("rev1", "rev1", "0", dc=_scalar("e1", p.e1))
    net.vsource("rev2", "rev2", "0", dc=_scalar("e2", p.e2))


def mif_netlist(i_in, dt: float, p: MIFParameters = MIFParameters(), *, v0: float = 0.0,
                x0: float = X_INIT_KANG2021, max_step: float | None = None, edge: float | None = None,
                title: str = "memxbar MIF neuron") -> Netlist:
    """Transient netlist of one MIF neuron driven by ``i_in`` (A; ``i_in[k]`` on ``[k dt, (k+1) dt)``).

    Nodes ``mem``, ``rev1``, ``rev2``, ``x1``, ``x2`` (see the module docstring); the analysis runs
    to ``len(i_in) · dt`` with ngspice steps of at most ``max_step`` (default ``dt/10``) s.
    """
    validate_mif_parameters(p)
    w, dt = _waveform("i_in", i_in, dt)
    net = Netlist(title)
    net.comment("produced by memxbar (circuits.spice.neuron_export): MIF neuron, Kang et al. 2021", header=True)
    _mif_subcircuits(net, p)
    net.section("input current, reversal sources, membrane and memristor branches")
    net.isource("in", "0", "mem", pwl=pwl_points(w.reshape(-1), dt, edge))
    _reversal_sources(net, p)
    _mif_neuron(net, "", "mem", p, v0, x0)
    _transient(net, w.shape[0] * dt, _max_step(max_step, dt / 10))
    return net


# ----------------------------------------------------------------------------- oscillator
def oscillator_netlist(i_in, dt: float, p: OscillatorParameters = OscillatorParameters(), *, v0: float = 0.0,
                       x0: float | None = None, max_step: float | None = None, edge: float | None = None,
                       title: str = "memxbar relaxation oscillator") -> Netlist:
    """Transient netlist of the threshold-switch relaxation oscillator driven by ``i_in`` (A).

    Nodes ``mem``, ``load``, ``xsw``. ``x0`` defaults to the rest state of
    :func:`circuits.neurons.oscillator.oscillator_initial_state` at ``v0``.
    """
    validate_oscillator_parameters(p)
    w, dt = _waveform("i_in", i_in, dt)
    if x0 is None:
        x0 = float(oscillator_initial_state((1,), p, v=v0, dtype=torch.float64).x.reshape(-1)[0])
    net = Netlist(title)
    net.comment("produced by memxbar (circuits.spice.neuron_export): relaxation oscillator", header=True)
    volatile_subcircuit(net, "mss_sw", p.m)
    net.section("input current, membrane, switch and load")
    net.isource("in", "0", "mem", pwl=pwl_points(w.reshape(-1), dt, edge))
    net.capacitor("mem", "mem", "0", _scalar("c", p.c), ic=v0)
    r_load = _scalar("r_load", p.r_load)
    low = "load" if r_load > 0 else "0"
    volatile_instance(net, "sw", "mem", low, "xsw", "mss_sw", x0)
    if r_load > 0:
        net.resistor("load", "load", "0", r_load)
    g_leak = _scalar("g_leak", p.g_leak)
    if g_leak > 0:
        net.resistor("leak", "mem", "0", 1.0 / g_leak)
    _transient(net, w.shape[0] * dt, _max_step(max_step, dt / 10))
    return net


# ----------------------------------------------------------------------------- network
def _crossbar_subcircuit(net: Netlist, name: str, crossbar) -> None:
    """A linear crossbar as subcircuit ``name`` with pins ``in_i`` (row drivers) and ``sense_j``
    (column sense ends); inside, the node names of :mod:`.crossbar_export` (``row_i_j``, ...)."""
    if not crossbar.is_linear or crossbar.device_cells is not None:
        raise ValueError("network layers must be linear crossbars (conductances as a tensor, topology 0T1R or "
                         "1T1R with transistor='linear')")
    cfg, rows, cols = crossbar.config, crossbar.rows, crossbar.cols
    body = Netlist(name)
    drive_cols = {"first": [0], "last": [cols - 1], "both": sorted({0, cols - 1})}[cfg.row_drive]
    sense_rows = {"last": [rows - 1], "first": [0], "both": sorted({0, rows - 1})}[cfg.col_sense]
    for i in range(rows):
        for j in drive_cols:
            _two_terminal(body, f"src_{i}_{j}", f"in_{i}", f"row_{i}_{j}", cfg.r_source)
        for j in range(cols - 1):
            _two_terminal(body, f"row_{i}_{j}", f"row_{i}_{j}", f"row_{i}_{j + 1}", cfg.r_row)
    for j in range(cols):
        for i in range(rows - 1):
            _two_terminal(body, f"col_{i}_{j}", f"col_{i}_{j}", f"col_{i + 1}_{j}", cfg.r_col)
        for i in sense_rows:
            _two_terminal(body, f"sns_{i}_{j}", f"col_{i}_{j}", f"sense_{j}", cfg.r_sense)
    _cells(body, crossbar)
    pins = [f"in_{i}" for i in range(rows)] + [f"sense_{j}" for j in range(cols)]
    net.subcircuit(name, pins, body.body_lines())


def _check_layers(crossbars) -> list:
    layers = list(crossbars)
    if not layers:
        raise ValueError("crossbars must hold at least one layer")
    for k in range(1, len(layers)):
        if layers[k].rows != layers[k - 1].cols:
            raise ValueError(f"crossbars[{k}] has {layers[k].rows} rows but layer {k} has {layers[k - 1].cols} "
                             "neurons (rows of a layer = neurons of the previous one)")
    return layers


def network_netlist(crossbars, v_in, dt: float, p: MIFParameters = MIFParameters(), *, current_gain: float = 1.0,
                    v_gain: float = 1.0, v_swing: float | None = None, v0: float = 0.0, x0: float = X_INIT_KANG2021,
                    max_step: float | None = None, edge: float | None = None,
                    title: str = "memxbar fully memristive network") -> Netlist:
    """Transient netlist of crossbar layers feeding MIF neurons (see the module docstring).

    Args:
        crossbars: linear :class:`xbar.Crossbar` per layer; layer ℓ+1 has as many rows as layer ℓ columns.
        v_in: ``(T, rows of layer 1)`` row voltages (V), ``v_in[k]`` on ``[k dt, (k+1) dt)``.
        current_gain: TIA / current-mirror gain from column current to membrane input current.
        v_gain: gain of the voltage buffers from a membrane to the next layer's row.
        v_swing: output limit (V) of those buffers (``tanh`` saturation); None: linear.
    """
    validate_mif_parameters(p)
    layers = _check_layers(crossbars)
    w, dt = _waveform("v_in", v_in, dt)
    if w.dim() != 2 or w.shape[1] != layers[0].rows:
        raise ValueError(f"v_in must have shape (T, {layers[0].rows}) in V, got {tuple(w.shape)}")
    current_gain = _scalar("current_gain", current_gain)
    v_gain = _scalar("v_gain", v_gain)
    v_swing = check_swing(v_swing)
    net = Netlist(title)
    net.comment(f"produced by memxbar (circuits.spice.neuron_export): {len(layers)} crossbar layers + MIF neurons, "
                f"current_gain={current_gain:g} (TIA/mirror), v_gain={v_gain:g} (buffers)", header=True)
    _mif_subcircuits(net, p)
    _reversal_sources(net, p)
    for ell, xb in enumerate(layers, start=1):
        tag = f"l{ell}"
        _crossbar_subcircuit(net, f"xbar_{tag}", xb)
        net.section(f"layer {ell}: {xb.rows}x{xb.cols} crossbar, row drivers, sense, mirrors, MIF neurons")
        for i in range(xb.rows):
            if ell == 1:
                net.vsource(f"in_{tag}_{i}", f"in_{tag}_{i}", "0", pwl=pwl_points(w[:, i], dt, edge))
            else:
                _buffer(net, f"buf_{tag}_{i}", f"in_{tag}_{i}", f"mem_l{ell - 1}_{i}", v_gain, v_swing)
        nodes = [f"in_{tag}_{i}" for i in range(xb.rows)] + [f"sense_{tag}_{j}" for j in range(xb.cols)]
        net.instance(f"xbar_{tag}", nodes, f"xbar_{tag}")
        for j in range(xb.cols):
            net.vsource(f"sense_{tag}_{j}", f"sense_{tag}_{j}", "0", dc=0.0)
            _cccs(net, f"mir_{tag}_{j}", "0", f"mem_{tag}_{j}", f"sense_{tag}_{j}", current_gain)
            _mif_neuron(net, f"_{tag}_{j}", f"mem_{tag}_{j}", p, v0, x0)
    _transient(net, w.shape[0] * dt, _max_step(max_step, dt / 10))
    return net

