r"""NIR (Neuromorphic Intermediate Representation) export and import of memxbar networks.

:func:`to_nir` writes a memxbar SNN (a :class:`~training.SpikingMLP`, a :class:`NIRNetwork`, or an
``nn.Sequential`` of crossbar layers, ``nn.Linear``/``nn.Conv2d``, ``nn.Flatten`` and the sequence
neurons ``LIF``/``IF``/``LeakyIntegrator``) as a ``nir.NIRGraph`` — with the **ideal** weights (the
master weights as the crossbars hold them, clipped to ``[-w_max, w_max]``) or the **effective**
weights of the deployed hardware (``layer.effective_weights()``: programmed devices read at the
inference time, drift-compensated, with IR drop and sneak paths in circuit mode). The graph's
metadata says which (``graph.metadata["memxbar"]``, JSON: ``weights``, ``mode``, ``t_inference``,
``family``, ``dt``, ``discretisation``, ...); every crossbar node carries its hardware config and
tracked ADC range, every neuron node its memxbar options, so :func:`from_nir` rebuilds the same
network. :func:`from_nir` turns a NIR chain (from memxbar, snnTorch or Norse) into a
:class:`NIRNetwork` of crossbar layers and memxbar neurons.

Neuron mapping. NIR's neurons are continuous-time: ``tau dv/dt = (v_leak - v) + R I``, spike when
``v > v_threshold``, then ``v = v_reset``. memxbar's LIF is discrete: the input ``x`` (= R I,
held over the step) is integrated exactly over ``dt``, ``v' = v_leak + (v - v_leak) a + (1 - a) x``
with ``a = exp(-dt/tau_mem)``; spike when ``v >= v_th``. Two discretisations are offered:

* ``"euler"`` (default): the graph describes a network that a simulator steps with forward
  Euler at ``dt`` (snnTorch: ``beta = 1 - dt/tau``, its importer fixes ``dt = 1e-4`` s; Norse's
  ``from_nir(dt=...)``, default 1e-3 s). Forward Euler gives ``v' = (1 - dt/tau) v + (dt/tau)
  (v_leak + R I)``, which is memxbar's step exactly when ``a = 1 - dt/tau``: export writes
  ``tau = dt/(1 - a)``, ``r = 1``; import sets ``tau_mem = -dt/ln(1 - dt/tau)`` (needs ``dt < tau``)
  and multiplies the input by ``r`` (a :class:`NeuronGain` before the neuron, when ``r != 1``).
  ``dt`` is the consumer's step, not necessarily memxbar's own: exporting for snnTorch with
  ``dt=1e-4`` rescales time so that one memxbar step is one snnTorch step.
* ``"exact"``: the graph's ODE itself, integrated exactly: ``tau = tau_mem``, ``r = 1``.
  Synaptic currents (``tau_syn``, NIR ``CubaLIF`` / ``CubaLI``, ``w_in``) map only here (memxbar
  integrates the coupled synapse-membrane system exactly, which no forward-Euler step reproduces).

IF: ``dv/dt = R I`` (Euler and exact agree for an input held over the step): memxbar's
``v' = v + x`` is ``r = 1/dt``. LI readouts map like LIF without threshold.

What does not map exactly: (1) reset by subtraction (memxbar's default, ``reset="subtract"``):
NIR resets to ``v_reset``; the node metadata keeps ``"subtract"`` for a memxbar import, other
consumers reset to ``v_reset`` — export networks with ``reset="zero"`` for the same spikes
elsewhere; (2) the spike condition at equality (memxbar ``v >= v_th``, NIR ``v > v_thr``): spikes
differ only where the membrane lands exactly on the threshold; (3) refractoriness (not in NIR:
export raises); (4) DAC/ADC quantisation, the tracked ADC range and device noise are hardware
options, not part of the graph (the crossbar nodes' metadata keeps them for memxbar); (5)
memxbar neuron parameters are one value per layer: per-neuron ``tau``/``v_threshold``/``v_leak``/
``v_reset`` must be uniform (``r`` may vary per neuron); (6) graphs written by Norse 1.1.0's
``to_nir`` store ``dt·tau`` instead of ``tau`` (``dt / tau_mem_inv``): import them with
``tau_scale = 1/dt``. Only feed-forward chains are imported (no recurrence or branches).

The memxbar input of a graph is the sequence the first layer receives (a ``SpikingMLP``'s encoded
input ``model.encode(x, T)``); :class:`NIRNetwork` maps a time-major sequence ``(T, batch, ...)``
(or batch-first with ``batch_first=True``) to the last node's output sequence.
"""
from __future__ import annotations

import json
import math

import numpy as np
import torch
from torch import nn

from devices.validation import check_choice, check_real, check_time

from .convert import _fit_w_max
from .crossbar_conv import CrossbarConv2d
from .crossbar_linear import CrossbarLinear
from .hardware import HardwareConfig
from .neurons import IF, LIF, IFParameters, LeakyIntegrator, LIFParameters, LIParameters

__all__ = ["to_nir", "from_nir", "NIRNetwork", "NeuronGain", "DISCRETISATIONS"]

DISCRETISATIONS = ("euler", "exact")
_KEY = "memxbar"


def _nir():
    try:
        import nir
    except ImportError as exc:  # optional extra
        raise ImportError("NIR export/import needs the 'nir' package: pip install nir (memxbar's test extra)") from exc
    return nir


class NeuronGain(nn.Module):
    """The neurons' input resistance ``R`` of a NIR neuron: ``x -> R x`` per feature (``(features,)``
    or ``(C, H, W)``, broadcast over the leading time and batch axes)."""

    def __init__(self, gain):
        super().__init__()
        self.register_buffer("gain", torch.as_tensor(np.asarray(gain, dtype=np.float32)))

    def forward(self, x):
        return x * self.gain.to(x.dtype)


class _Flatten(nn.Module):
    """Flatten every feature axis of a time-major sequence ``(T, batch, ...)`` -> ``(T, batch, F)``."""

    def forward(self, x):
        return x.flatten(2)


class NIRNetwork(nn.Module):
    """A chain of memxbar modules imported from NIR: ``forward(x)`` maps a time-major sequence
    ``(T, batch, ...)`` (``batch_first=True``: ``(batch, T, ...)``) to the last node's output sequence
    in the same layout. ``names``: the NIR node of each stage."""

    def __init__(self, stages: list[tuple[str, nn.Module]], *, batch_first: bool = False, metadata: dict | None = None):
        super().__init__()
        self.names = [n for n, _ in stages]
        self.stages = nn.ModuleList(m for _, m in stages)
        self.batch_first = bool(batch_first)
        self.metadata = dict(metadata or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"NIRNetwork runs over a sequence ({'batch, T' if self.batch_first else 'T, batch'}, "
                             f"features...), got shape {tuple(x.shape)}")
        s = x.transpose(0, 1) if self.batch_first else x
        for stage in self.stages:
            s = stage(s)
        return s.transpose(0, 1) if self.batch_first else s


# ============================================================================= export
def _chain(model: nn.Module) -> tuple[list[nn.Module], dict]:
    """The modules of ``model`` in execution order and graph-level metadata."""
    from .model import SpikingMLP

    if isinstance(model, SpikingMLP):
        net = model.network
        if net.memristive:
            raise ValueError(f"NIR has no model of memristive neurons (network.neuron = {net.neuron!r}); export a "
                             "LIF or IF network")
        mods: list[nn.Module] = []
        for layer, neuron in zip(model.layers[:-1], model.neurons):
            mods += [layer, neuron]
        mods += [model.layers[-1], model.readout]
        return mods, {"model": "SpikingMLP", "encoding": net.encoding, "input_scale": net.input_scale,
                      "readout": net.readout, "time_steps": net.time_steps, "network": net.to_dict()}
    if isinstance(model, NIRNetwork):
        return list(model.stages), {"model": "NIRNetwork"}
    if isinstance(model, nn.Sequential):
        return list(model), {"model": "Sequential"}
    raise ValueError(f"to_nir exports a SpikingMLP, a NIRNetwork or an nn.Sequential of crossbar layers and memxbar "
                     f"sequence neurons, got {type(model).__name__}")


def _layer_weights(layer, weights: str) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (out, in) or (out, C, kh, kw), bias (out,))`` of a crossbar or plain layer."""
    lin = layer.linear if isinstance(layer, CrossbarConv2d) else layer
    with torch.no_grad():
        if isinstance(lin, CrossbarLinear):  # array form (in+1, out): the bias row is driven at x_max
            w = lin.array_weights() if weights == "ideal" else lin.effective_weights()
            w_oi = w[:lin.in_features].t()
            bias = None if lin.bias is None else w[lin.in_features] * lin.hardware.x_max
        else:
            w_oi, bias = lin.weight, lin.bias
        w = w_oi.detach().double().cpu().numpy()
        b = np.zeros(w.shape[0]) if bias is None else bias.detach().double().cpu().numpy()
    if isinstance(layer, (CrossbarConv2d, nn.Conv2d)):
        out, cin = (layer.out_channels, layer.in_channels)
        w = w.reshape(out, cin, *layer.kernel_size)
    return w.astype(np.float32), b.astype(np.float32)


def _neuron_tau(tau_mem: float, dt: float, discretisation: str) -> float:
    return tau_mem if discretisation == "exact" else dt / -math.expm1(-dt / tau_mem)


def _export_neuron(nir, module, shape, dt_model: float, dt: float, discretisation: str):
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731  (float64: exact round trips)
    if isinstance(module, IF):
        p = module.p
        _no_refractory(p)
        meta = {"kind": "IF", "params": p._asdict()}
        return nir.IF(r=full(1.0 / dt), v_threshold=full(p.v_th), v_reset=full(p.v_reset),
                      metadata={_KEY: json.dumps(meta)})
    p = module.p
    meta = {"kind": type(module).__name__, "params": p._asdict(), "dt": dt_model}
    if module.dt != dt_model:
        raise ValueError(f"all neurons must share one dt, got {module.dt:g} s and {dt_model:g} s")
    tau_syn = p.tau_syn or None
    if tau_syn is not None and discretisation != "exact":
        raise ValueError("neurons with a synaptic current (tau_syn) map to NIR CubaLIF/CubaLI only with "
                         "discretisation='exact' (no forward-Euler step reproduces memxbar's exact synapse)")
    scale = 1.0 if discretisation == "exact" else dt / dt_model  # time rescaled to the consumer's step
    tau = _neuron_tau(p.tau_mem, dt_model, discretisation) * scale
    if isinstance(module, LeakyIntegrator):
        if tau_syn is not None:
            return nir.CubaLI(tau_syn=full(tau_syn), tau_mem=full(tau), r=full(1.0), v_leak=full(p.v_leak),
                              w_in=full(1.0), metadata={_KEY: json.dumps(meta)})
        return nir.LI(tau=full(tau), r=full(1.0), v_leak=full(p.v_leak), metadata={_KEY: json.dumps(meta)})
    _no_refractory(p)
    if tau_syn is not None:
        return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau), r=full(1.0), v_leak=full(p.v_leak),
                           v_threshold=full(p.v_th), v_reset=full(p.v_reset), w_in=full(1.0),
                           metadata={_KEY: json.dumps(meta)})
    return nir.LIF(tau=full(tau), r=full(1.0), v_leak=full(p.v_leak), v_threshold=full(p.v_th),
                   v_reset=full(p.v_reset), metadata={_KEY: json.dumps(meta)})


def _no_refractory(p) -> None:
    if p.refractory_steps:
        raise ValueError(f"NIR has no refractory period: export neurons with refractory_steps = 0, "
                         f"got {p.refractory_steps}")


def _hardware_meta(layer) -> dict:
    lin = layer.linear if isinstance(layer, CrossbarConv2d) else layer
    if not isinstance(lin, CrossbarLinear):
        return {"kind": type(layer).__name__}
    return {"kind": type(layer).__name__, "hardware": lin.hardware.to_dict(), "layer_id": lin.layer_id,
            "adc_peak": float(lin.adc_peak)}


def to_nir(model: nn.Module, *, weights: str = "ideal", t: float | None = None, dt: float | None = None,
           discretisation: str = "euler", input_shape=None):
    """The ``nir.NIRGraph`` of ``model`` (module docstring).

    Args:
        weights: ``"ideal"`` or ``"effective"`` (the deployed hardware's weights in the layers'
            present mode, ``"noisy"`` or ``"circuit"``; needs a deployed model).
        t: with ``"effective"``, read the deployed devices at ``t`` s first (as
            ``training.set_inference_time(model, t)`` does); None = the present read.
        dt: the time step (s) of the graph's consumer for ``discretisation="euler"`` (default:
            the network's own dt; snnTorch's importer steps at 1e-4 s).
        input_shape: ``(C, H, W)`` of one sample, needed when the chain starts with a convolution.
    """
    nir = _nir()
    check_choice("weights", weights, ("ideal", "effective"))
    check_choice("discretisation", discretisation, DISCRETISATIONS)
    mods, meta = _chain(model)
    neurons = [m for m in mods if isinstance(m, (LIF, LeakyIntegrator))]
    dt_model = neurons[0].dt if neurons else 1e-3
    dt = dt_model if dt is None else check_real("dt (s)", dt, low=0.0, low_open=True)
    layers = [m for m in mods if isinstance(m, (CrossbarLinear, CrossbarConv2d))]
    if weights == "effective":
        undeployed = [k for k, m in enumerate(layers) if not m.deployed]
        if not layers or undeployed:
            raise ValueError("weights='effective' exports the deployed hardware: deploy the model first "
                             "(training.deploy(model, t))")
        if t is not None:
            t = check_time("t (inference time)", t)
            for m in layers:
                m.set_inference_time(t)
        modes = {m.hardware.mode for m in layers}
        if "ideal" in modes:
            raise ValueError("weights='effective' needs the layers in mode 'noisy' or 'circuit' (in 'ideal' mode "
                             "the hardware realises the ideal weights: export weights='ideal')")
    nodes, edges, prev = {"input": None}, [], "input"
    shape = _first_shape(mods, input_shape)
    in_shape = shape
    for k, m in enumerate(mods):
        name = f"{k}"
        if isinstance(m, (CrossbarLinear, nn.Linear)):
            w, b = _layer_weights(m, weights)
            nodes[name] = nir.Affine(weight=w, bias=b, metadata={_KEY: json.dumps(_hardware_meta(m))})
            shape = (w.shape[0],)
        elif isinstance(m, (CrossbarConv2d, nn.Conv2d)):
            w, b = _layer_weights(m, weights)
            nodes[name] = nir.Conv2d(input_shape=tuple(shape[1:]), weight=w, stride=tuple(m.stride),
                                     padding=tuple(m.padding), dilation=(1, 1), groups=1, bias=b,
                                     metadata={_KEY: json.dumps(_hardware_meta(m))})
            shape = tuple(int(s) for s in nodes[name].output_type["output"])
        elif isinstance(m, (nn.Flatten, _Flatten)):
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            shape = (int(np.prod(shape)),)
        elif isinstance(m, (LIF, IF, LeakyIntegrator)):
            nodes[name] = _export_neuron(nir, m, shape, dt_model, dt, discretisation)
        elif isinstance(m, NeuronGain):
            raise ValueError("a NeuronGain (an imported neuron's input resistance) exports only together with its "
                             "neuron: re-export the NIR graph it came from instead")
        else:
            raise ValueError(f"module {k} ({type(m).__name__}) has no NIR node: export crossbar/linear/conv layers, "
                             "nn.Flatten and memxbar LIF/IF/LeakyIntegrator neurons")
        edges.append((prev, name))
        prev = name
    nodes["input"] = nir.Input(input_type={"input": np.array(in_shape)})
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    first = layers[0] if layers else None
    lin = None if first is None else (first.linear if isinstance(first, CrossbarConv2d) else first)
    meta |= {"weights": weights, "discretisation": discretisation, "dt": dt, "dt_memxbar": dt_model,
             "mode": None if lin is None else lin.hardware.mode,
             "t_inference": None if lin is None else lin.t_inference,
             "family": None if lin is None else lin.hardware.family,
             "reset_note": "NIR resets to v_reset; memxbar neurons with reset='subtract' keep it in node metadata"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={_KEY: json.dumps(meta)})


def _first_shape(mods, input_shape) -> tuple:
    first = next((m for m in mods if isinstance(m, (CrossbarLinear, nn.Linear, CrossbarConv2d, nn.Conv2d))), None)
    if isinstance(first, (CrossbarLinear, nn.Linear)) and mods.index(first) == 0:
        return (first.in_features,)
    if input_shape is None:
        raise ValueError("pass input_shape (one sample's shape, e.g. (C, H, W)): the chain does not start with a "
                         "linear layer")
    return tuple(int(s) for s in input_shape)


# ============================================================================= import
def _meta(node) -> dict:
    raw = (getattr(node, "metadata", None) or {}).get(_KEY)
    return json.loads(raw) if isinstance(raw, str) else {}


def _uniform(node_name: str, field: str, value) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 0 or not np.allclose(arr, arr[0], rtol=1e-6, atol=0.0):
        raise ValueError(f"node {node_name!r}: memxbar neurons take one {field} per layer, got per-neuron values "
                         f"from {arr.min():g} to {arr.max():g}")
    return float(arr[0])


def _gain(value, shape_like=None):
    arr = np.asarray(value, dtype=np.float64)
    return None if np.allclose(arr, 1.0) else arr


def _chain_order(graph) -> list[str]:
    nodes, edges = graph.nodes, graph.edges
    succ, pred = {}, {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    nir = _nir()
    starts = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(starts) != 1:
        raise ValueError(f"the graph must have exactly one Input node, got {starts}")
    order, node = [], starts[0]
    while True:
        nxt = succ.get(node, [])
        if len(nxt) != 1 or len(pred.get(nxt[0], [])) != 1:
            if not nxt and isinstance(nodes[node], nir.Output):
                return order
            raise ValueError(f"only feed-forward chains import into memxbar: node {node!r} has successors {nxt} "
                             f"(branches, recurrence and sub-graphs are not supported)")
        node = nxt[0]
        if isinstance(nodes[node], nir.Output):
            if succ.get(node):
                raise ValueError(f"the Output node {node!r} has successors")
            return order
        if node in order:
            raise ValueError(f"the graph has a cycle through {node!r}: recurrent networks do not import")
        order.append(node)


def _layer_hw(node_meta: dict, hardware, w_max, name, weight, bias) -> HardwareConfig:
    """The layer's hardware: the given one, else the exported layer's own (memxbar metadata: its
    window is kept when the weights fit it, as after an ideal export), else ``HardwareConfig()``;
    then ``w_max`` as in :func:`training.convert_to_crossbar`."""
    if hardware is not None:
        hw = hardware if isinstance(hardware, HardwareConfig) else HardwareConfig.from_dict(hardware)
    elif "hardware" in node_meta:
        hw = HardwareConfig.from_dict(node_meta["hardware"])
        if w_max == "fit" and not _exceeds(hw, weight, bias):
            w_max = None
    else:
        hw = HardwareConfig()
    return _fit_w_max(name, hw, weight, bias, w_max)


def _exceeds(hw: HardwareConfig, weight, bias) -> bool:
    bound = float(weight.abs().max()) if weight.numel() else 0.0
    if bias is not None and bias.numel():
        bound = max(bound, float(bias.abs().max()) / hw.x_max)
    return bound > hw.w_max * (1 + 1e-6)


def _import_layer(nir, name, node, hardware, w_max, layer_id):
    meta = _meta(node)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
        b = torch.as_tensor(np.asarray(node.bias, dtype=np.float32)) if isinstance(node, nir.Affine) else None
        hw = _layer_hw(meta, hardware, w_max, name, w, b)
        layer = CrossbarLinear(w.shape[1], w.shape[0], bias=b is not None, hardware=hw, layer_id=layer_id)
        with torch.no_grad():
            layer.weight.copy_(w)
            if b is not None:
                layer.bias.copy_(b)
            if "adc_peak" in meta and hardware is None:
                layer.adc_peak.fill_(meta["adc_peak"])
        return layer
    w = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
    groups, dilation = int(node.groups), tuple(np.broadcast_to(np.asarray(node.dilation), (2,)).tolist())
    if groups != 1 or dilation != (1, 1) or isinstance(node.padding, str):
        raise ValueError(f"node {name!r}: memxbar convolutions take groups=1, dilation=1 and numeric padding, got "
                         f"groups={groups}, dilation={dilation}, padding={node.padding!r}")
    b = torch.as_tensor(np.asarray(node.bias, dtype=np.float32)) if node.bias is not None else None
    hw = _layer_hw(meta, hardware, w_max, name, w, b)
    stride = tuple(int(s) for s in np.broadcast_to(np.asarray(node.stride), (2,)))
    padding = tuple(int(s) for s in np.broadcast_to(np.asarray(node.padding), (2,)))
    layer = CrossbarConv2d(w.shape[1], w.shape[0], tuple(w.shape[-2:]), stride=stride, padding=padding,
                           bias=b is not None, hardware=hw, layer_id=layer_id)
    with torch.no_grad():
        layer.linear.weight.copy_(w.reshape(w.shape[0], -1))
        if b is not None:
            layer.linear.bias.copy_(b)
        if "adc_peak" in meta and hardware is None:
            layer.linear.adc_peak.fill_(meta["adc_peak"])
    return layer


def _memxbar_tau(name, tau, dt, discretisation, tau_scale) -> float:
    tau = _uniform(name, "tau", tau) * tau_scale
    if discretisation == "exact":
        return tau
    if not dt < tau:
        raise ValueError(f"node {name!r}: forward Euler at dt = {dt:g} s needs tau > dt, got tau = {tau:g} s "
                         "(check dt, or tau_scale for graphs written by Norse)")
    return -dt / math.log1p(-dt / tau)


def _import_neuron(nir, name, node, dt, discretisation, tau_scale) -> list[nn.Module]:
    meta = _meta(node)
    extra = {k: v for k, v in meta.get("params", {}).items() if k in ("reset", "surrogate", "slope", "detach_reset")}
    if isinstance(node, nir.IF):
        p = IFParameters(v_th=_uniform(name, "v_threshold", node.v_threshold),
                         v_reset=_uniform(name, "v_reset", node.v_reset), **{"reset": "zero", **extra})
        gain = _gain(np.asarray(node.r, dtype=np.float64) * dt)
        return ([NeuronGain(gain)] if gain is not None else []) + [IF(p)]
    cuba = isinstance(node, (nir.CubaLIF, nir.CubaLI))
    if cuba and discretisation != "exact":
        raise ValueError(f"node {name!r} ({type(node).__name__}) has a synaptic current: import it with "
                         "discretisation='exact' (its forward-Euler form has no exact memxbar equivalent)")
    tau = node.tau_mem if cuba else node.tau
    tau_mem = _memxbar_tau(name, tau, dt, discretisation, tau_scale)
    tau_syn = _uniform(name, "tau_syn", node.tau_syn) * tau_scale if cuba else None
    gain = np.asarray(node.r, dtype=np.float64) * (np.asarray(node.w_in, dtype=np.float64) if cuba else 1.0)
    v_leak = _uniform(name, "v_leak", node.v_leak)
    if isinstance(node, (nir.LI, nir.CubaLI)):
        neuron = LeakyIntegrator(LIParameters(tau_mem=tau_mem, tau_syn=tau_syn, v_leak=v_leak), dt=dt)
    else:
        p = LIFParameters(tau_mem=tau_mem, tau_syn=tau_syn, v_th=_uniform(name, "v_threshold", node.v_threshold),
                          v_reset=_uniform(name, "v_reset", node.v_reset), v_leak=v_leak,
                          **{"reset": "zero", **extra})
        neuron = LIF(p, dt=dt)
    gain = _gain(gain)
    return ([NeuronGain(gain)] if gain is not None else []) + [neuron]


def from_nir(graph, hardware: HardwareConfig | dict | None = None, *, dt: float = 1e-3,
             discretisation: str = "euler", w_max="fit", tau_scale: float = 1.0,
             batch_first: bool = False) -> NIRNetwork:
    """A :class:`NIRNetwork` of crossbar layers and memxbar neurons from a NIR chain (module docstring).

    Args:
        graph: a ``nir.NIRGraph`` (or a path to a ``.nir`` file).
        hardware: every layer's :class:`HardwareConfig`; None = each node's memxbar hardware
            metadata (graphs from :func:`to_nir`), else ``HardwareConfig()``.
        dt: memxbar's time step (s); with ``"euler"`` also the step the graph's source simulated
            (1e-4 s for snnTorch exports).
        w_max: each layer's weight window: ``"fit"`` (its largest weight), None (the hardware's;
            raises if exceeded) or a number (:func:`training.convert_to_crossbar`).
        tau_scale: multiplies every time constant (1/dt for Norse 1.1.0 exports).

    The network is returned in eval mode (a tracked ADC range stays frozen; ``.train()`` to
    fine-tune it).
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    check_choice("discretisation", discretisation, DISCRETISATIONS)
    dt = check_real("dt (s)", dt, low=0.0, low_open=True)
    tau_scale = check_real("tau_scale", tau_scale, low=0.0, low_open=True)
    if not (w_max is None or w_max == "fit"):
        w_max = check_real("w_max", w_max, low=0.0, low_open=True)
    stages, layer_id = [], 0
    for name in _chain_order(graph):
        node = graph.nodes[name]
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            stages.append((name, _import_layer(nir, name, node, hardware, w_max, layer_id)))
            layer_id += 1
        elif isinstance(node, nir.Flatten):
            stages.append((name, _Flatten()))
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF)):
            mods = _import_neuron(nir, name, node, dt, discretisation, tau_scale)
            stages += [(name + (".gain" if isinstance(m, NeuronGain) else ""), m) for m in mods]
        else:
            raise ValueError(f"node {name!r} ({type(node).__name__}) has no memxbar equivalent; supported: Affine, "
                             "Linear, Conv2d, Flatten, LIF, CubaLIF, LI, CubaLI, IF")
    meta = json.loads(graph.metadata[_KEY]) if isinstance((graph.metadata or {}).get(_KEY), str) else {}
    return NIRNetwork(stages, batch_first=batch_first, metadata=meta).eval()
