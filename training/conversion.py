r"""ANN→SNN conversion: a ReLU network trained in float, converted to IF neurons on crossbars.

Method (Diehl et al., IJCNN 2015; Rueckauer et al., Front. Neurosci. 11, 682 (2017)):

1. train a ReLU MLP ``a_l = max(0, W_l a_{l-1} + b_l)`` of the same widths as the SNN;
2. data-based normalisation: ``lambda_l`` = the ``percentile``-th percentile of layer l's ReLU
   activations on calibration data (``lambda_0 = 1``: inputs in [0, 1]), then
   ``W_l' = W_l lambda_{l-1}/lambda_l``, ``b_l' = b_l/lambda_l`` (the output layer keeps
   ``lambda_L = 1``: its scale does not change the arg-max), so every hidden activation becomes a
   firing probability per step in [0, 1] (clipped above the percentile);
3. IF neurons with reset by subtraction and threshold 1 fire at rate ``~ a_l'`` per step
   (Rueckauer's "reset by subtraction" removes the rate error of reset to zero); the output layer
   is integrated without leak (a leaky integrator with ``tau >> T dt``) and read out by its
   mean over time.

Crossbar range: the array holds weights in ``[-w_max, w_max]``. All hidden layers share one
factor ``k`` (>= 1) with ``W'' = W'/k`` and threshold ``v_th = 1/k`` — spike rates are
unchanged (``W'' s / (1/k) = W' s``); the output layer is divided by its own factor.
The result is a :class:`training.SpikingMLP` (``neuron = "if"``, direct encoding,
``readout = "mean"``) whose layers are :class:`training.CrossbarLinear` with the run's
hardware, so it is deployed and evaluated exactly like a surrogate-gradient SNN.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .config import RunConfig
from .model import SpikingMLP


def relu_mlp(widths: list[int], bias: bool = True) -> nn.Sequential:
    """``Linear-ReLU-...-Linear`` with the given widths (input, hidden..., classes)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_ann(config: RunConfig, splits, in_features: int, n_classes: int) -> nn.Sequential:
    """Train the ReLU twin of ``config.network`` in float32 (Adam/SGD and schedule of
    ``config.train``, seeded by ``config.seed``) on ``config.device`` (:func:`training.config.resolve_device`:
    the initial weights are drawn on the CPU, then moved, so every device starts alike); the
    trained network is returned on the CPU, where the conversion and the checkpoints work."""
    from .config import resolve_device
    from .data import make_loader
    from .loop import _optimizer

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    ann = relu_mlp([in_features, *config.network.hidden, n_classes], bias=config.network.bias).to(device)
    opt, sched = _optimizer(config, ann)
    loader = make_loader(splits.train, config.data.batch_size, shuffle=True, seed=config.seed)
    for _ in range(config.train.epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            nn.functional.cross_entropy(ann(x), y).backward()
            opt.step()
        sched.step()
    return ann.cpu()


@torch.no_grad()
def convert(ann: nn.Sequential, config: RunConfig, calibration_x: torch.Tensor, *,
            percentile: float = 99.9) -> SpikingMLP:
    """The converted SNN of ``ann`` (module docstring), on ``config.hardware``."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    linears = [m for m in ann if isinstance(m, nn.Linear)]
    if len(linears) != len(config.network.hidden) + 1:
        raise ValueError(f"ann has {len(linears)} linear layers, the network config needs "
                         f"{len(config.network.hidden) + 1}")
    # per-layer activation scales from the calibration data
    scales, a = [1.0], calibration_x
    for lin in linears[:-1]:
        a = torch.relu(lin(a))
        scales.append(max(float(torch.quantile(a.flatten().float(), percentile / 100.0)), 1e-12))
    scales.append(1.0)
    weights = [lin.weight * scales[k] / scales[k + 1] for k, lin in enumerate(linears)]
    biases = [(lin.bias / scales[k + 1]) if lin.bias is not None else None for k, lin in enumerate(linears)]
    hw = config.hardware
    bound = lambda w, b: max(float(w.abs().max()), float(b.abs().max()) / hw.x_max if b is not None else 0.0)  # noqa: E731
    k_hidden = max([1.0] + [bound(w, b) / hw.w_max for w, b in zip(weights[:-1], biases[:-1])])
    k_out = max(1.0, bound(weights[-1], biases[-1]) / hw.w_max)
    net = dataclasses.replace(config.network, neuron="if", v_th=1.0 / k_hidden, reset="subtract",
                              refractory_steps=0, encoding="direct", input_scale=1.0, readout="mean",
                              readout_tau_mem=1e3 * config.network.time_steps * config.network.dt,
                              readout_tau_syn=None)
    snn = SpikingMLP(linears[0].in_features, linears[-1].out_features, net, hw)
    for k, layer in enumerate(snn.layers):
        factor = k_out if k == len(snn.layers) - 1 else k_hidden
        layer.weight.copy_(weights[k] / factor)
        if layer.bias is not None and biases[k] is not None:
            layer.bias.copy_(biases[k] / factor)
    return snn

