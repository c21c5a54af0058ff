r"""Fully memristive spiking networks: crossbar synapses feeding memristive neurons, trained
with exact BPTT through the device and membrane dynamics (MEMprop-style; Zhou et al., IEEE
JETCAS 2022). No surrogate gradient, no comparator, no reset, no ADC between layers.

Signal chain of layer ``l`` (``(T, batch, ·)`` time-major; one neuron step = ``dt`` s)::

    y_l[t]   = CrossbarLinear_l(x_l[t])                  (weight units: x @ W_eff, tiles/modes as usual)
    i_l[t]   = current_gain · y_l[t] · v_unit · s        (A, into the membranes)
    v_l[t]   = neuron_l(i_l)[t]                          (V, MIF or relaxation oscillator)
    x_l+1[t] = row_gain · (v_l[t] − v_row_ref) / v_unit' (input units of the next crossbar)
    logits   = R(v_L) / readout_scale,   R = mean_t or max_t ("readout" = "mean" | "max")

Column current. A crossbar layer's output ``y`` (weight units) is the physical differential
column current ``i_col = y · v_unit · s`` with ``v_unit = v_read/x_max`` (V per input unit) and
``s = (g_max − g_min)/w_max`` (S per weight unit) of that layer's hardware. A current mirror
(or TIA + transconductor) of gain ``current_gain`` copies it into the neuron's membrane node:
``i = current_gain · i_col``. The row tiles of a layer are wired to the same membrane, so their
partial currents add (KCL): every layer runs without ADC (``adc_bits`` forced to None).

Which ``current_gain`` makes the default MIF neurons fire. At rest both MIF memristors sit at
x = 0.0238, G_tot = 2 × 33.6 µS = 67 µS, v_rest = E2/2 = 25 mV, membrane time constant
C/G_tot ≈ 1.5 µs, so within a few steps ``v ≈ v_rest + i / G_tot``. M1 switches ON (a graded
spike that repolarises v toward E1 = 0) once v − E1 exceeds v_on + 2 k_th ≈ 0.14 V, i.e. for
``i ≳ 67 µS × 0.115 V ≈ 8 µA``. With the default PCM window (g_max − g_min = 24.9 µS, w_max 1)
and v_read 0.2 V one weight unit of column current is 5.0 µA at x_max = 1 (the hidden → output
layers: a hidden membrane at 0.1 V is 0.5 input units) and 1.0 µA on the first layer, whose
x_max grows with ``input_scale`` = 5 (direct encoding). Typical |y| after initialisation is
1–3 weight units, i.e. 1–15 µA at gain 1: mostly the neurons' linear RC range, and the network
trains like a linear classifier (measured: 63 % on Yin-Yang after 8 epochs). ``current_gain =
10`` (the default) puts typical inputs at 10–150 µA, across the switching threshold of M1, so
the network uses the neurons' nonlinear switching range (Yin-Yang, 4-120-3, 20 steps of 1 µs,
ideal synapses: gain 4 → 86 % after 8 epochs, 10 → 96.3 %, 20 → 97.8 % after 15 epochs).
Families with another window need the gain scaled by 24.9 µS / (g_max − g_min).

Next-layer input. A buffer of gain ``row_gain`` (1, default) referenced to ``v_row_ref`` (default
0 V) drives the next crossbar's row, and its output saturates smoothly at ±V_s like an amplifier
at its rails::

    V_row = V_s · tanh(row_gain · (v − v_row_ref) / V_s),    V_s = row_swing · v_read

``row_swing`` (default 1) is a fraction of the next layer's read voltage, so the synapses are
never driven beyond the voltage they are read at (a membrane at 1 V on a PCM row would program
it); ``x = V_row / v_unit`` input units. ``row_swing = "none"`` gives a linear, unbounded buffer
(rows follow the membrane wherever it goes; not physical for large excursions). v_row_ref = 25 mV
(the MIF resting potential) makes a resting neuron drive 0 V. The membrane voltage is
analog and continuous (the MIF "spike" is a graded excursion), so this signal is
differentiable; there is no DAC on these rows (``dac_bits`` forced to None for layers ≥ 1; the
first layer keeps its DAC for the digital input features and its straight-through quantiser
gradient, as the LIF path: set ``dac_bits = None`` for an exactly differentiable network end to
end).

Membrane range. The current mirrors that drive the MIF membranes have compliance rails: unless
``neuron_params`` sets them, ``v_low = −0.5 V`` and ``v_high = 0.5 V`` (:data:`MIF_RAILS`; a
mirror on ±0.5 V supplies), so no membrane leaves [−0.5, 0.5] V whatever the weights — without
them, trained networks drove membranes to several volts and milliamperes through the neuron
memristors. The update is the exact hard-rail solution of each step, smoothed over ``v_knee``
(default 0.1 V, about the saturation voltage of the output transistor; :mod:`circuits.neurons.mif`,
"Input compliance"). ``"none"`` for both: ideal sources. The oscillator neuron has no rails (its
membrane is bounded by its switch's threshold from above; its input is an ideal source).

Readout and loss. The output layer is a layer of the same memristive neurons; its membrane
waveform is reduced over the sample to one value per class (``"mean"``: the time average, i.e.
the integral ∫v dt / (T dt), smooth in every parameter; ``"max"``: the peak voltage) and divided
by ``readout_scale`` (V per logit unit; a fixed softmax temperature, argmax-invariant). The loss
of the training loop is the cross-entropy of these logits: the class whose output membrane is
most depolarised wins. The readout voltages are what an ADC would digitise once per sample.

Gradients. Every operation from the weights to the logits is smooth: the membrane update is
``v ← E_eff + (v − E_eff) exp(−G_tot Δt / C)``, the device update the exact MSS step
``x ← x∞ + (x − x∞)(1 − exp(−(a + b) Δt))`` with logistic rates (:mod:`circuits.neurons.mif`,
:mod:`devices.volatile`); autograd unrolls them over time (BPTT). Spike counts
(:func:`circuits.neurons.count_spikes`) are detached diagnostics only.

Time. Each sample is held for ``time_steps`` neuron steps of ``dt`` s (MIF: ``dt`` ≤ 10 µs, the
membrane relaxes in ≈ 1.5 µs and the memristors switch in tens of µs; default example 20 steps of
1 µs. Oscillator (NbO₂ switch, τ = 1 ns): ``dt`` ≤ 10 ns).

Neurons. Each layer's neurons get their own memristors with D2D variation (``neuron_params``
``d2d``) drawn with the device seed ``derive_seed(seed, "layer", k)`` of layer k
(:func:`devices.seeding.derive_seed`, ``seed = neuron_params["seed"]``, default 0); C2C noise
(``c2c_sigma``) draws from one generator of the network, ``make_generator(seed, "neurons", "c2c")``.
"""
from __future__ import annotations

import torch
from torch import nn

from circuits.neurons import MIFNeuron, OscillatorNeuron
from circuits.neurons.mif import clip_to_rails
from devices.seeding import derive_seed, make_generator
from devices.validation import check_int, check_real, check_seed

from .crossbar_linear import CrossbarLinear
from .hardware import HardwareConfig

Tensor = torch.Tensor

MEMRISTIVE_NEURONS = ("mif", "oscillator")
#: largest neuron step (s) per neuron kind (see the module docstring: "Time").
DT_MAX = {"mif": 1e-5, "oscillator": 1e-8}
#: keyword options of each neuron class accepted in ``NetworkConfig.neuron_params``.
NEURON_OPTIONS = {
    "mif": ("c", "e1", "e2", "v_spike", "v_init", "x_init", "device_preset", "device_overrides", "d2d", "c2c_sigma",
            "splitting", "v_low", "v_high", "v_knee", "seed"),
    "oscillator": ("c", "r_load", "g_leak", "x_spike", "v_init", "device_preset", "device_overrides", "d2d",
                   "c2c_sigma", "substep_gain", "max_substeps", "seed"),
}
READOUT_REDUCTIONS = ("mean", "max")
#: compliance rails (V) of the current mirrors that drive MIF membranes in a network, unless
#: ``neuron_params`` sets ``v_low``/``v_high`` (``"none"``: an ideal source); module docstring.
MIF_RAILS = {"v_low": -0.5, "v_high": 0.5}


def _positive(name: str, value) -> float:
    return check_real(name, value, low=0.0, low_open=True)


def validate_memristive_options(neuron: str, dt, current_gain, row_gain, readout_scale, neuron_params,
                                v_row_ref=0.0, row_swing=1.0) -> None:
    """Raise ``ValueError`` naming the option: ``dt`` in (0, DT_MAX[neuron]], gains and
    ``readout_scale`` > 0, ``row_swing`` in (0, 1] or None, ``neuron_params`` a table of the
    neuron's options with valid values."""
    if neuron not in MEMRISTIVE_NEURONS:
        raise ValueError(f"neuron must be one of {list(MEMRISTIVE_NEURONS)} for a memristive network, got {neuron!r}")
    dt = _positive("dt", dt)
    if dt > DT_MAX[neuron]:
        raise ValueError(f"dt must be in (0, {DT_MAX[neuron]:g}] s for neuron={neuron!r} (its devices switch on "
                         f"that time scale; e.g. dt = {DT_MAX[neuron] / 10:g}), got {dt:g}")
    _positive("current_gain", current_gain)
    _positive("row_gain", row_gain)
    _positive("readout_scale", readout_scale)
    if row_swing is not None:
        try:
            check_real("row_swing", row_swing, low=0.0, high=1.0, low_open=True)
        except ValueError as exc:
            raise ValueError(f"{exc} (a fraction of the synapses' read voltage: more would drive the rows beyond "
                             f"v_read; or \"none\": a linear buffer)") from None
    check_real("v_row_ref (V)", v_row_ref)
    if not isinstance(neuron_params, dict):
        raise ValueError(f"neuron_params must be a table of neuron options, got {neuron_params!r}")
    unknown = sorted(set(neuron_params) - set(NEURON_OPTIONS[neuron]))
    if unknown:
        raise ValueError(f"unknown neuron_params option(s) {unknown} for neuron={neuron!r}; "
                         f"allowed: {sorted(NEURON_OPTIONS[neuron])}")
    check_seed("neuron_params.seed", neuron_params.get("seed", 0))
    try:
        make_neuron(neuron, 1, dt, neuron_params, layer=0)
    except (TypeError, ValueError) as exc:  # the neuron's own validation names the field
        raise ValueError(f"neuron_params: {exc}") from exc


def make_neuron(neuron: str, n: int, dt: float, neuron_params: dict, layer: int,
                dtype: torch.dtype = torch.float32, device=None) -> nn.Module:
    """A layer of ``n`` memristive neurons (``"mif"`` | ``"oscillator"``) with step ``dt`` s on
    ``device`` (default CPU); device seed ``derive_seed(neuron_params["seed"], "layer", layer)``."""
    opts = dict(neuron_params)
    opts["seed"] = derive_seed(check_seed("neuron_params.seed", opts.get("seed", 0)), "layer",
                               check_int("layer", layer, low=0))
    if neuron == "mif":
        for name, value in MIF_RAILS.items():
            opts.setdefault(name, value)
    if opts.get("device_overrides") is not None:
        opts["device_overrides"] = dict(opts["device_overrides"])
    cls = MIFNeuron if neuron == "mif" else OscillatorNeuron
    return cls(n, dt=dt, dtype=dtype, device="cpu" if device is None else device, **opts)


def layer_hardware(hardware: HardwareConfig, k: int, encoding: str, input_scale: float) -> HardwareConfig:
    """Hardware of crossbar layer ``k`` of a memristive network: no ADC anywhere (the column
    currents flow into membranes); no DAC on layers ≥ 1 (analog membrane voltages drive the
    rows); the first layer's DAC spans the encoded input (``input_scale · x_max``, direct)."""
    changes = {"adc_bits": None}
    if k > 0:
        changes["dac_bits"] = None
    elif encoding == "direct" and input_scale != 1.0:
        changes["x_max"] = hardware.x_max * input_scale
    return hardware.replace(**changes)


def volts_per_unit(layer: CrossbarLinear) -> float:
    """``v_unit = v_read / x_max`` (V per input unit) of a crossbar layer."""
    return layer.hardware.v_read / layer.hardware.x_max


def column_current(y: Tensor, layer: CrossbarLinear, current_gain: float) -> Tensor:
    """Membrane input current (A): ``i = current_gain · y · v_unit · s``, s = (g_max − g_min)/w_max."""
    return y * (current_gain * volts_per_unit(layer) * layer.mapping.scale)


def saturate(u: Tensor, limit: float | None) -> Tensor:
    """``limit · tanh(u / limit)``: a buffer whose output (V) saturates smoothly at ±``limit``
    (slope 1 at 0); ``limit`` None: ``u`` unchanged (ideal linear buffer)."""
    return u if limit is None else limit * torch.tanh(u / limit)


def row_voltage(v: Tensor, next_layer: CrossbarLinear, row_gain: float, v_row_ref: float = 0.0,
                row_swing: float | None = 1.0) -> Tensor:
    """Row voltages (V) driven by the buffers of membranes ``v`` (V):
    ``V_s tanh(row_gain (v − v_row_ref) / V_s)``, ``V_s = row_swing · v_read`` of ``next_layer``
    (``row_swing`` None: ``row_gain (v − v_row_ref)``, unbounded)."""
    limit = None if row_swing is None else row_swing * next_layer.hardware.v_read
    return saturate((v - v_row_ref) * row_gain, limit)


def row_input(v: Tensor, next_layer: CrossbarLinear, row_gain: float, v_row_ref: float = 0.0,
              row_swing: float | None = 1.0) -> Tensor:
    """Next crossbar's input (input units) for membrane voltages ``v`` (V): the
    :func:`row_voltage` divided by ``v_unit``."""
    return row_voltage(v, next_layer, row_gain, v_row_ref, row_swing) / volts_per_unit(next_layer)


def readout_logits(v_out: Tensor, reduction: str, readout_scale: float) -> Tensor:
    """Logits ``R(v)/readout_scale`` of the output membranes ``(T, batch, classes)`` (V):
    ``R`` = time mean (∝ ∫v dt) or peak."""
    if reduction not in READOUT_REDUCTIONS:
        raise ValueError(f"readout must be one of {list(READOUT_REDUCTIONS)}, got {reduction!r}")
    r = v_out.mean(0) if reduction == "mean" else v_out.max(0).values
    return r / readout_scale


def memristive_forward(layers, neurons, s: Tensor, *, current_gain: float, row_gain: float, readout: str,
                       readout_scale: float, v_row_ref: float = 0.0, row_swing: float | None = 1.0,
                       generator: torch.Generator | None = None, return_traces: bool = False):
    """Run the encoded input ``s`` ``(T, batch, in)`` through crossbar ``layers`` and the
    neuron layers ``neurons`` (one per crossbar layer, the last being the output neurons).

    Returns the logits ``(batch, classes)``, or with ``return_traces`` ``(logits, [v_l])`` with
    every layer's membrane trace ``(T, batch, n_l)`` (V).
    """
    if len(layers) != len(neurons):
        raise ValueError(f"need one neuron layer per crossbar layer, got {len(layers)} and {len(neurons)}")
    traces = []
    x = s
    for k, (layer, neuron) in enumerate(zip(layers, neurons)):
        v = run_neurons(neuron, column_current(layer(x), layer, current_gain), generator)
        traces.append(v)
        if k + 1 < len(layers):
            x = row_input(v, layers[k + 1], row_gain, v_row_ref, row_swing)
    logits = readout_logits(traces[-1], readout, readout_scale)
    return (logits, traces) if return_traces else logits


def has_c2c(neuron: nn.Module) -> bool:
    """Whether the neuron layer's switches draw cycle-to-cycle noise (a generator is used)."""
    return float(neuron._switch["c2c_sigma"]) > 0


def run_neurons(neuron: nn.Module, i_in: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Membrane trace ``(T, batch, n)`` (V) of a neuron layer for input currents ``i_in`` (A):
    :func:`mif_sequence` for deterministic pure-MSS MIF layers, else the neuron's own forward."""
    if isinstance(neuron, MIFNeuron) and not has_c2c(neuron) and float(neuron._switch["feedback"]) == 0:
        return mif_sequence(neuron, i_in)
    return neuron(i_in, generator=generator if has_c2c(neuron) else None)


def mif_sequence(neuron: MIFNeuron, i_in: Tensor) -> Tensor:
    r"""The Strang-split MIF trace of :meth:`circuits.neurons.MIFNeuron.forward`, computed with
    fewer operations (same equations, equal to rounding; pure MSS, no C2C noise).

    Two exact rewrites: (1) M1 and M2 are stacked into one ``(2, batch, n)`` state so each device
    operation runs once for both; (2) the closing half step of the devices at ``v_t`` and the
    opening half step of the next step, also at ``v_t``, are one exact step of ``Δt`` (the MSS
    update at a frozen voltage is the exact flow of a linear ODE, and two exact flows of the
    same autonomous ODE compose): half step, T × (membrane step, device step of Δt with the last
    one a half step). The device step at voltage V_k = v − E_k across memristor k::

        a = σ((V − v_on)/k_th)/τ_on,  b = σ((v_off − V)/k_th)/τ,
        x ← x + (a/(a + b) − x)(1 − exp(−(a + b) Δt)),   G = 1/R_off + x (1/R_on − 1/R_off)

    and the membrane step ``v ← E_eff + (v − E_eff) exp(−G_tot Δt/C)``, ``E_eff = (I + Σ G_k E_k)/G_tot``
    (then :func:`circuits.neurons.mif.clip_to_rails` when the input source has compliance rails).
    """
    p = neuron.parameters_tuple()
    dev = _stacked_switches(neuron, i_in.dtype)
    e = torch.tensor([neuron.e1, neuron.e2], dtype=i_in.dtype, device=i_in.device).view(2, 1, 1)
    state = neuron.initial_state(i_in.shape[1])
    v = state.v.to(i_in.dtype)
    x = torch.stack((state.x1, state.x2)).to(i_in.dtype)
    scalar = lambda value: torch.tensor(value, dtype=i_in.dtype, device=i_in.device)  # noqa: E731
    dt = neuron.dt
    neg_dt, neg_half_dt, neg_dt_c = scalar(-dt), scalar(-dt / 2), scalar(-dt / p.c)
    rails = p.v_low is not None or p.v_high is not None
    if rails:
        lo, hi, knee = (None if r is None else scalar(r) for r in (p.v_low, p.v_high, p.v_knee))
    if p.splitting == "strang":
        x = _device_step(x, v, e, neg_half_dt, dev)
    vs = []
    for t in range(i_in.shape[0]):
        if p.splitting == "lie":
            x = _device_step(x, v, e, neg_dt, dev)
        g = torch.addcmul(dev["g_off"], x, dev["dg"])
        g_tot = g.sum(0)
        e_eff = (i_in[t] + (g * e).sum(0)) / g_tot
        v = torch.addcmul(e_eff, v - e_eff, torch.exp(g_tot * neg_dt_c))
        if rails:
            v = clip_to_rails(v, lo, hi, knee)
        vs.append(v)
        if p.splitting == "strang" and t + 1 < i_in.shape[0]:
            x = _device_step(x, v, e, neg_dt, dev)
    return torch.stack(vs)


def _stacked_switches(neuron: MIFNeuron, dtype: torch.dtype) -> dict:
    """Per-device constants of M1, M2 stacked as ``(2, 1, n)`` tensors."""
    def both(field):
        return torch.stack((getattr(neuron, f"m1_{field}"), getattr(neuron, f"m2_{field}"))).to(dtype)[:, None]

    sw = neuron._switch
    r_on, r_off = both("r_on"), both("r_off")
    scalar = lambda value: torch.tensor(value, dtype=dtype, device=r_on.device)  # noqa: E731
    # scalars as 0-d tensors of the working dtype: Python floats in the hot loop cost a dtype
    # conversion per operation in forward and backward (~20 % of the step time)
    return {"g_off": 1 / r_off, "dg": 1 / r_on - 1 / r_off, "a_c": both("v_on") / sw["k_th"],
            "b_c": scalar(sw["v_off"] / sw["k_th"]), "inv_k": scalar(1 / sw["k_th"]), "inv_tau": 1 / both("tau"),
            "inv_tau_on": 1 / both("tau_on"), "bipolar": bool(sw["bipolar"])}


def _device_step(x: Tensor, v: Tensor, e: Tensor, neg_dt: Tensor, d: dict) -> Tensor:
    """Exact MSS update of the stacked states ``x (2, batch, n)`` over ``Δt = −neg_dt`` at V = v − E_k."""
    vv = v - e
    z = (vv.abs() if d["bipolar"] else vv) * d["inv_k"]
    a = torch.sigmoid(z - d["a_c"]) * d["inv_tau_on"]
    b = torch.sigmoid(d["b_c"] - z) * d["inv_tau"]
    rate = a + b
    return (x - (a / rate - x) * torch.expm1(rate * neg_dt)).clamp(0.0, 1.0)


def build_neurons(neuron: str, widths, dt: float, neuron_params: dict, dtype: torch.dtype = torch.float32,
                  device=None):
    """``nn.ModuleList`` of neuron layers for the widths after the input (hidden..., classes)."""
    return nn.ModuleList(make_neuron(neuron, n, dt, neuron_params, layer=k, dtype=dtype, device=device)
                         for k, n in enumerate(widths))


def neuron_generator(neuron_params: dict, device=None) -> torch.Generator:
    """The network's C2C-noise generator on ``device`` (default CPU):
    ``make_generator(neuron_params["seed"], "neurons", "c2c")``."""
    return make_generator(check_seed("neuron_params.seed", neuron_params.get("seed", 0)), "neurons", "c2c",
                          device="cpu" if device is None else device)


@torch.no_grad()
def spike_counts(traces, neurons) -> list[Tensor]:
    """Detached spike counts per neuron ``(batch, n)`` of each layer's trace (diagnostics only;
    MIF: upward crossings of ``v_spike``; oscillator: crossings of the membrane level at which
    the switch fires, estimated as its switch threshold v_on)."""
    from circuits.neurons import count_spikes

    out = []
    for v, neuron in zip(traces, neurons):
        level = neuron.v_spike if isinstance(neuron, MIFNeuron) else float(neuron.m_v_on.mean())
        out.append(count_spikes(v, level))
    return out
