r"""ANN→SNN conversion: a ReLU network trained in float, converted to IF neurons on crossbars.

Method (Diehl et al., IJCNN 2015; Rueckauer et al., Front. Neurosci. 11, 682 (2017)):

1. train a ReLU network ``a_l = max(0, W_l a_{l-1} + b_l)`` of the same shape as the SNN (an
   MLP of the same widths, or for ``network.kind = "conv"`` the same convolutions, 2×2 average
   pooling after each, and the same dense layers: :func:`relu_twin`);
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
The result is a :class:`training.SpikingMLP` or :class:`training.SpikingConvNet`
(``neuron = "if"``, direct encoding, ``readout = "mean"``) whose layers are crossbar layers with
the run's hardware, so it is deployed and evaluated exactly like a surrogate-gradient SNN.

Convolutional networks. A convolution is a linear layer on image patches, so steps 2-3 carry
over unchanged (``lambda_l`` is the percentile of the convolution's ReLU outputs over all
channels and pixels). Pooling must be ``"avg"``: the average of spike trains has the average
rate, so it commutes with the rate code; the maximum of spike trains (any spike in the 2×2
window) fires more often than the most active of its inputs, and the converted network would
overestimate every pooled activation (Rueckauer et al. 2017, Sec. 2.2.6): ``pool = "max"`` is
refused with that reason.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .conv_model import ConvNetworkConfig, SpikingConvNet
from .model import SpikingMLP


def relu_mlp(widths: list[int], bias: bool = True) -> nn.Sequential:
    """``Linear-ReLU-...-Linear`` with the given widths (input, hidden..., classes)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def relu_convnet(in_shape: tuple, n_classes: int, network: ConvNetworkConfig) -> nn.Sequential:
    """The ReLU twin of a :class:`training.SpikingConvNet`: ``[Conv2d-ReLU-AvgPool2d] × L``,
    ``Flatten``, ``[Linear-ReLU]`` per hidden width, ``Linear``; images ``(batch, C, H, W)`` or
    flattened ``(batch, C·H·W)`` in."""
    _check_pool(network)
    c, h, w = (int(v) for v in in_shape)
    k = network.kernel_size
    layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
    for c_in, c_out in zip([c, *network.channels[:-1]], network.channels):
        layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=network.bias), nn.ReLU(), nn.AvgPool2d(2)]
    layers.append(nn.Flatten())
    c_last, h_last, w_last = network.feature_shape((c, h, w))
    widths = [c_last * h_last * w_last, *network.hidden, n_classes]
    for j, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=network.bias))
        if j < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def relu_twin(network, in_features, n_classes: int) -> nn.Sequential:
    """The ReLU network that :func:`convert` turns into ``network`` (an MLP config: widths
    ``[in_features, *hidden, n_classes]``; a conv config: :func:`relu_convnet` on the image shape
    ``in_features``)."""
    if isinstance(network, ConvNetworkConfig):
        return relu_convnet(in_features, n_classes, network)
    return relu_mlp([in_features, *network.hidden, n_classes], bias=network.bias)


def _check_pool(network) -> None:
    if isinstance(network, ConvNetworkConfig) and network.pool != "avg":
        raise ValueError(f"network.pool must be 'avg' for train.method = 'conversion' (the max of spike trains "
                         f"fires more often than its most active input, so max pooling does not convert), "
                         f"got {network.pool!r}")


def _flat_input(x: torch.Tensor) -> torch.Tensor:
    """Samples as rows: images ``(n, C, H, W)`` are flattened for the twin's ``Unflatten``."""
    return x.reshape(len(x), -1)


def _percentile(a: torch.Tensor, percentile: float) -> float:
    """The ``percentile``-th percentile of all entries of ``a`` (linear interpolation, as
    ``torch.quantile``; numpy has no size limit on the input)."""
    return float(np.percentile(a.detach().double().flatten().numpy(), percentile))


def train_ann(config: RunConfig, splits, in_features, n_classes: int) -> nn.Sequential:
    """Train the ReLU twin (:func:`relu_twin`) of ``config.network`` in float32 (Adam/SGD and schedule of
    ``config.train``, seeded by ``config.seed``) on ``config.device`` (:func:`training.config.resolve_device`:
    the initial weights are drawn on the CPU, then moved, so every device starts alike); the
    trained network is returned on the CPU, where the conversion and the checkpoints work."""
    from .config import resolve_device
    from .data import make_loader
    from .loop import _optimizer

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    ann = relu_twin(config.network, in_features, n_classes).to(device)
    opt, sched = _optimizer(config, ann)
    loader = make_loader(splits.train, config.data.batch_size, shuffle=True, seed=config.seed)
    for _ in range(config.train.epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            nn.functional.cross_entropy(ann(_flat_input(x)), y).backward()
            opt.step()
        sched.step()
    return ann.cpu()


@torch.no_grad()
def convert(ann: nn.Sequential, config: RunConfig, calibration_x: torch.Tensor, *,
            percentile: float = 99.9) -> SpikingMLP | SpikingConvNet:
    """The converted SNN of ``ann`` (module docstring), on ``config.hardware``: a
    :class:`SpikingConvNet` when ``config.network`` is a conv network (``ann`` then from
    :func:`relu_convnet`), else a :class:`SpikingMLP`."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    network = config.network
    is_conv = isinstance(network, ConvNetworkConfig)
    _check_pool(network)
    synapses = [m for m in ann if isinstance(m, (nn.Linear, nn.Conv2d))]
    n_layers = len(network.hidden) + 1 + (len(network.channels) if is_conv else 0)
    if len(synapses) != n_layers or any(isinstance(m, nn.Conv2d) for m in synapses) != is_conv:
        what = "convolution and linear" if is_conv else "linear"
        raise ValueError(f"ann has {len(synapses)} weight layers ({sum(isinstance(m, nn.Conv2d) for m in synapses)} "
                         f"convolutions), the network config needs {n_layers} {what} layers")
    # per-layer activation scales: the percentile of every ReLU's output on the calibration data
    scales, a = [1.0], _flat_input(calibration_x) if is_conv else calibration_x
    for module in ann:
        a = module(a)
        if isinstance(module, nn.ReLU):
            scales.append(max(_percentile(a, percentile), 1e-12))
    scales.append(1.0)
    weights = [m.weight * scales[k] / scales[k + 1] for k, m in enumerate(synapses)]
    biases = [(m.bias / scales[k + 1]) if m.bias is not None else None for k, m in enumerate(synapses)]
    hw = config.hardware
    bound = lambda w, b: max(float(w.abs().max()), float(b.abs().max()) / hw.x_max if b is not None else 0.0)  # noqa: E731
    k_hidden = max([1.0] + [bound(w, b) / hw.w_max for w, b in zip(weights[:-1], biases[:-1])])
    k_out = max(1.0, bound(weights[-1], biases[-1]) / hw.w_max)
    changes = dict(neuron="if", v_th=1.0 / k_hidden, reset="subtract", refractory_steps=0, input_scale=1.0,
                   readout="mean", readout_tau_mem=1e3 * network.time_steps * network.dt, readout_tau_syn=None)
    if is_conv:
        net = dataclasses.replace(network, **changes)
        in_shape = next(tuple(m.unflattened_size) for m in ann if isinstance(m, nn.Unflatten))
        snn = SpikingConvNet(in_shape, synapses[-1].out_features, net, hw)
    else:
        net = dataclasses.replace(network, encoding="direct", **changes)
        snn = SpikingMLP(synapses[0].in_features, synapses[-1].out_features, net, hw)
    for k, layer in enumerate(snn.layers):
        factor = k_out if k == len(snn.layers) - 1 else k_hidden
        layer = getattr(layer, "linear", layer)  # a CrossbarConv2d keeps its kernel matrix in .linear
        layer.weight.copy_(weights[k].reshape(layer.weight.shape) / factor)
        if layer.bias is not None and biases[k] is not None:
            layer.bias.copy_(biases[k] / factor)
    return snn
