r"""A convolutional spiking network whose synapses are crossbar layers (:class:`CrossbarConv2d`,
:class:`CrossbarLinear`): ``[network] kind = "conv"`` of a run config.

Architecture (``channels = (c_1, ..., c_L)``, odd ``kernel_size`` k with "same" padding k//2,
``pool`` of size 2 after every convolution; time-major sequences ``(T, batch, C, H, W)``)::

    h_1    = CrossbarConv2d_1(input_scale · x)                 (direct encoding: computed ONCE,
    s_1[t] = pool( LIF(h_1)[t] )                                 the same current at every step)
    s_l[t] = pool( LIF( CrossbarConv2d_l(s_{l-1}[t]) ) )          l = 2 .. L
    f[t]   = flatten(s_L[t]);  f[t] = LIF( CrossbarLinear(f[t]) )  for each width in ``hidden``
    u[t]   = LI( CrossbarLinear_out(f[t]) ),  logits = mean_t u[t] | max_t u[t]   (``readout``)

Cost: the first convolution is computed once per image (its input does not change over time);
the later layers see the whole sequence at once, ``(T·batch, C, H, W)`` (one im2col and one
crossbar matmul per layer, no per-step Python work beyond the neuron recurrence), so a forward
pass costs about ``T`` times the image-wise convolutions of layers 2..L plus the LIF updates.
``pool = "max"`` keeps the pooled activity binary (spikes, i.e. read pulses on the next
crossbar's rows); ``"avg"`` passes fractions.

:class:`ConvNetworkConfig` holds the architecture as plain values; the neuron and readout options
mean what they mean in :class:`training.model.NetworkConfig`. The hardware options are one
:class:`training.HardwareConfig` for every layer; as in :class:`training.SpikingMLP`, the first
layer's DAC full scale is ``input_scale · x_max``. Layers are numbered (``layer_id``) in order:
convolutions ``0 .. L-1``, then the linear layers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from devices.validation import check_choice, check_int, check_real

from .crossbar_conv import CrossbarConv2d
from .crossbar_linear import CrossbarLinear
from .hardware import HardwareConfig, none_from_strings
from .neurons import IF, LIF, IFParameters, LeakyIntegrator, LIFParameters, LIParameters, membrane_max, membrane_mean

POOLS = ("max", "avg")
#: spiking neurons of the hidden layers: "lif" (trained by surrogate gradients) or "if" (no leak;
#: the neurons of an ANN->SNN-converted network, :mod:`training.conversion`)
CONV_NEURONS = ("lif", "if")
READOUTS = ("mean", "max")

__all__ = ["ConvNetworkConfig", "SpikingConvNet", "POOLS", "CONV_NEURONS"]


def _widths(name: str, value, allow_empty: bool) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of integers >= 1 (e.g. [16, 32]), got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must be a non-empty list of integers >= 1, got {list(value)}")
    return tuple(check_int(f"{name} entries", v, low=1) for v in value)


#: most samples x time steps one inference forward pass holds at once: every layer runs on the
#: whole ``(T, batch, ...)`` sequence, so without gradients a larger batch is split into chunks of
#: ``MAX_SAMPLE_STEPS // T`` samples (samples are independent: the same outputs). Small chunks are
#: also the fast ones: the Fashion-MNIST network's first feature map holds 11 k neurons per
#: sample-step, so 400 sample-steps keep every intermediate tensor near 18 MB, which the allocator
#: reuses; at 8192 each tensor (360 MB) was freshly mapped and zero-filled, and inference on 1 core
#: was 5x slower (measured: 10 000 test images in 10 s vs 53 s, identical predictions)
MAX_SAMPLE_STEPS = 400


@dataclass(frozen=True)
class ConvNetworkConfig:
    """Convolutional SNN architecture (module docstring). Times in s; voltages in threshold units.

    kind: "conv" (the ``[network] kind`` switch of a run config); channels: output channels of
    the convolutions (>= 1 layer); kernel_size: odd int >= 1 ("same" padding); pool: "max" or
    "avg" (2×2, stride 2, after every convolution); hidden: widths of spiking fully connected
    layers before the readout (may be empty); neuron: "lif" or "if" (integrate-and-fire without
    leak: ``tau_mem``, ``tau_syn``, ``dt`` do not apply to it); tau_mem, tau_syn (None = no synaptic current),
    v_th, reset, refractory_steps, surrogate, slope: the LIF neurons; readout_tau_mem,
    readout_tau_syn: the LI readout; readout: "mean" or "max" over time; time_steps: T;
    dt: step (s); input_scale: multiplies the pixels (in [0, 1]) before the first convolution;
    bias: bias rows on the crossbars.

    Defaults = the MNIST / Fashion-MNIST recipe (``training/configs/*_conv.toml``): 14 and 32
    channels of 3×3 kernels (the second kernel, 14·9 weights + 1 bias row = 127 rows, fills one
    128-row tile), a 128-neuron spiking layer, T = 4 steps of 1 ms. The membranes are short
    (``tau_mem = readout_tau_mem = 2 ms``, no synaptic filter) so that the few steps reach the
    steady state: with the MLP's 10 ms membranes and 5 ms readout synapse a 4-step readout charges
    to ~5 % of its input (the logits stay near zero) and the second convolution and the dense
    layer do not fire at all at initialisation, so no surrogate gradient reaches them; with
    2 ms membranes every layer fires (4-8 % of the neuron-steps on MNIST) from the start.
    """

    kind: str = "conv"
    channels: tuple = (14, 32)
    kernel_size: int = 3
    pool: str = "max"
    hidden: tuple = (128,)
    neuron: str = "lif"
    tau_mem: float = 2e-3
    tau_syn: float | None = None
    v_th: float = 0.2
    reset: str = "subtract"
    refractory_steps: int = 0
    surrogate: str = "fast_sigmoid"
    slope: float = 25.0
    readout: str = "mean"
    readout_tau_mem: float = 2e-3
    readout_tau_syn: float | None = None
    time_steps: int = 4
    dt: float = 1e-3
    input_scale: float = 2.0
    bias: bool = True

    def __post_init__(self):
        check_choice("kind", self.kind, ("conv",))
        object.__setattr__(self, "channels", _widths("channels", self.channels, allow_empty=False))
        object.__setattr__(self, "hidden", _widths("hidden", self.hidden, allow_empty=True))
        k = check_int("kernel_size", self.kernel_size, low=1, high=31)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer in [1, 31] ('same' padding), got {k}")
        check_choice("pool", self.pool, POOLS)
        check_choice("neuron", self.neuron, CONV_NEURONS)
        check_choice("readout", self.readout, READOUTS)
        check_int("time_steps", self.time_steps, low=1)
        check_real("input_scale", self.input_scale, low=0.0, low_open=True)
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be true or false, got {self.bias!r}")
        self.lif_parameters().validate()
        self.if_parameters().validate()
        self.li_parameters().validate()

    @property
    def memristive(self) -> bool:
        """Always False: the convolutional network uses LIF neurons (API of NetworkConfig)."""
        return False

    def lif_parameters(self) -> LIFParameters:
        return LIFParameters(tau_mem=self.tau_mem, tau_syn=self.tau_syn, v_th=self.v_th, reset=self.reset,
                             refractory_steps=self.refractory_steps, surrogate=self.surrogate, slope=self.slope)

    def if_parameters(self) -> IFParameters:
        return IFParameters(v_th=self.v_th, reset=self.reset, refractory_steps=self.refractory_steps,
                            surrogate=self.surrogate, slope=self.slope)

    def li_parameters(self) -> LIParameters:
        return LIParameters(tau_mem=self.readout_tau_mem, tau_syn=self.readout_tau_syn)

    def feature_shape(self, in_shape: tuple) -> tuple[int, int, int]:
        """``(C, H, W)`` after the last convolution and pooling for an input ``(C, H, W)``."""
        _, h, w = in_shape
        for _ in self.channels:
            h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise ValueError(f"{len(self.channels)} convolution + 2x2 pooling stages need an input of at least "
                                 f"{2 ** len(self.channels)} pixels per side, got {tuple(in_shape)}")
        return self.channels[-1], h, w

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"], d["hidden"] = list(self.channels), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, values: dict) -> "ConvNetworkConfig":
        if not isinstance(values, dict):
            raise ValueError(f"[network] must be a table, got {values!r}")
        values = none_from_strings(values)
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown network option(s) {unknown} for kind = 'conv'; allowed: {sorted(allowed)}")
        return cls(**values)


class SpikingConvNet(nn.Module):
    """Convolutional SNN on crossbars (module docstring).

    ``forward(x)`` with images ``(batch, C, H, W)`` (or flattened ``(batch, C·H·W)``) returns
    logits ``(batch, n_classes)``; ``forward(x, time_steps=T)`` overrides ``T``. The weights are
    initialised from torch's global RNG (seed it, as :func:`training.loop.build_model` does).
    ``device``: where the network lives (default CPU; ``model.to(device)`` moves it).
    """

    def __init__(self, in_shape, n_classes: int, network: ConvNetworkConfig | dict | None = None,
                 hardware: HardwareConfig | dict | None = None, *, device=None):
        super().__init__()
        net = ConvNetworkConfig.from_dict(network) if isinstance(network, dict) else (network or ConvNetworkConfig())
        if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
            raise ValueError(f"in_shape must be (channels, height, width), got {in_shape!r}")
        self.in_shape = tuple(check_int("in_shape entries", v, low=1) for v in in_shape)
        n_classes = check_int("n_classes", n_classes, low=2)
        self.network = net
        hardware = HardwareConfig.from_dict(hardware) if isinstance(hardware, dict) else (hardware or HardwareConfig())
        k = net.kernel_size
        in_channels = [self.in_shape[0], *net.channels[:-1]]
        self.convs = nn.ModuleList(
            CrossbarConv2d(c_in, c_out, k, stride=1, padding=k // 2, bias=net.bias,
                           hardware=self._layer_hardware(hardware, i), layer_id=i)
            for i, (c_in, c_out) in enumerate(zip(in_channels, net.channels)))
        c, h, w = net.feature_shape(self.in_shape)
        widths = [c * h * w, *net.hidden, n_classes]
        n_conv = len(self.convs)
        self.linears = nn.ModuleList(
            CrossbarLinear(a, b, bias=net.bias, hardware=hardware, layer_id=n_conv + j)
            for j, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        neuron = (lambda: LIF(net.lif_parameters(), dt=net.dt)) if net.neuron == "lif" else \
            (lambda: IF(net.if_parameters()))
        self.neurons = nn.ModuleList(neuron() for _ in (*net.channels, *net.hidden))
        self.readout = LeakyIntegrator(net.li_parameters(), dt=net.dt)
        if device is not None:
            self.to(device)

    @property
    def device(self) -> torch.device:
        return self.linears[-1].weight.device

    @property
    def layers(self) -> list[nn.Module]:
        """Every crossbar layer in order: the convolutions, then the linear layers."""
        return [*self.convs, *self.linears]

    # -------------------------------------------------------------- hardware
    def _layer_hardware(self, hardware: HardwareConfig, k: int) -> HardwareConfig:
        """The first layer's DAC spans the scaled pixels, ``input_scale · x_max``."""
        if k == 0 and self.network.input_scale != 1.0:
            return hardware.replace(x_max=hardware.x_max * self.network.input_scale)
        return hardware

    def set_hardware(self, hardware: HardwareConfig | dict) -> None:
        hardware = HardwareConfig.from_dict(hardware) if isinstance(hardware, dict) else hardware
        for k, layer in enumerate(self.layers):
            layer.set_hardware(self._layer_hardware(hardware, k))

    def set_mode(self, mode: str) -> None:
        for layer in self.layers:
            layer.set_mode(mode)

    def deploy(self, t_inference: float = 0.0, *, repeat: int = 0) -> list:
        """Program every layer (``repeat``: the deployment's index in the device-seed path)."""
        return [layer.deploy(t_inference, repeat=repeat) for layer in self.layers]

    def set_inference_time(self, t: float) -> None:
        for layer in self.layers:
            layer.set_inference_time(t)

    def undeploy(self) -> None:
        for layer in self.layers:
            layer.undeploy()

    def clip_weights_(self) -> None:
        for layer in self.layers:
            layer.clip_weights_()

    # -------------------------------------------------------------- forward
    def _pool(self, s: torch.Tensor) -> torch.Tensor:
        """2×2 pooling of a ``(T, batch, C, H, W)`` sequence (time folded into the batch)."""
        pool = nn.functional.max_pool2d if self.network.pool == "max" else nn.functional.avg_pool2d
        return pool(s.flatten(0, 1), 2).unflatten(0, s.shape[:2])

    def forward(self, x: torch.Tensor, time_steps: int | None = None) -> torch.Tensor:
        net = self.network
        steps = net.time_steps if time_steps is None else check_int("time_steps", time_steps, low=1)
        if x.dim() == 2 and x.shape[1] == self.in_shape[0] * self.in_shape[1] * self.in_shape[2]:
            x = x.reshape(len(x), *self.in_shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            c, h, w = self.in_shape
            raise ValueError(f"input must be images (batch, {c}, {h}, {w}) or flattened (batch, {c * h * w}), "
                             f"got {tuple(x.shape)}")
        chunk = max(1, MAX_SAMPLE_STEPS // steps)
        if len(x) > chunk and not torch.is_grad_enabled():  # inference: bounded memory, same numbers
            return torch.cat([self._forward(part, steps) for part in x.split(chunk)])
        return self._forward(x, steps)

    def _forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """The network on ``x`` (batch, C, H, W) over ``steps`` time steps, every layer on the
        whole ``(T, batch, ...)`` sequence at once."""
        net = self.network
        current = self.convs[0](x * net.input_scale)                          # (batch, C1, H, W), once
        s = self._pool(self.neurons[0](current.unsqueeze(0).expand(steps, *current.shape)))
        for conv, neuron in zip(self.convs[1:], self.neurons[1:len(self.convs)]):
            s = self._pool(neuron(conv(s)))                                    # conv on (T, batch, C, H, W)
        f = s.flatten(2)                                                       # (T, batch, features)
        for linear, neuron in zip(self.linears[:-1], self.neurons[len(self.convs):]):
            f = neuron(linear(f))
        u = self.readout(self.linears[-1](f))
        return membrane_max(u) if net.readout == "max" else membrane_mean(u)
