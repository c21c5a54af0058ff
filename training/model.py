r"""A feed-forward spiking network whose synapses are :class:`training.CrossbarLinear` layers.

Per time step ``t`` (time-major sequences ``(T, batch, features)``)::

    s_0[t] = encode(x)[t]                                  (direct / rate / latency)
    s_l[t] = LIF( CrossbarLinear_l(s_{l-1}[t]) )            l = 1 .. L-1   (hidden, spiking)
    u[t]   = LI( CrossbarLinear_L(s_{L-1}[t]) )             (leaky-integrator readout)
    logits = max_t u[t]  |  mean_t u[t]                      (``readout``)

The linear layers act on whole sequences at once (their weights do not change within an
inference, as on a chip); the neurons step through time (:mod:`training.neurons`).
:class:`NetworkConfig` holds the architecture as plain values.

With ``neuron = "mif"`` or ``"oscillator"`` the network is fully memristive
(:mod:`training.memristive`): every layer, the output included, is a layer of memristive
neurons driven by its crossbar's column currents, the next crossbar's rows are driven by the
membrane voltages, the logits are the output membranes' mean or peak voltage, and gradients flow
through the exact device dynamics (no surrogate)::

    v_l = neuron_l(current_gain · y_l · v_unit · s),  x_{l+1} = row_gain · (v_l − v_row_ref) / v_unit,
    logits = mean_t|max_t v_L / readout_scale
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from .crossbar_linear import CrossbarLinear
from .encoding import direct_encode, latency_encode, rate_encode
from .hardware import HardwareConfig, none_from_strings
from .memristive import (MEMRISTIVE_NEURONS, build_neurons, layer_hardware, memristive_forward, neuron_generator,
                         validate_memristive_options)
from .neurons import IF, LIF, IFParameters, LeakyIntegrator, LIFParameters, LIParameters, membrane_max, membrane_mean

ENCODINGS = ("direct", "rate", "latency")
READOUTS = ("max", "mean")
NEURONS = ("lif", "if", *MEMRISTIVE_NEURONS)


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture (plain values). Times in s; membrane voltages in units of the threshold.

    hidden: widths of the spiking hidden layers; neuron: "lif" or "if"; tau_mem, tau_syn
    (None = no synaptic current), v_th, reset ("subtract"/"zero"), refractory_steps, surrogate
    (``training.surrogate``) and slope: the hidden neurons; readout_tau_mem/readout_tau_syn:
    the LI readout; readout: "max" or "mean" of the readout membrane over time; encoding:
    "direct" (the features as a constant current), "rate" (Bernoulli spikes, probability =
    feature) or "latency" (one spike, earlier for larger features); time_steps: T; dt: step (s);
    input_scale: multiplies the features before encoding (direct); the first layer's DAC full
    scale grows with it (``SpikingMLP._layer_hardware``).

    The weights on the crossbar are bounded by ``HardwareConfig.w_max`` (1 by default), so the
    gain of a layer lives in the neurons: the defaults (``v_th = 0.2``, ``input_scale = 5``, no
    synaptic filter, 20 steps of 1 ms) train the Yin-Yang task to > 96 % in 30 epochs for every
    training seed.

    The readout is the *mean* over time of an LI membrane *without* synaptic filter
    (``readout = "mean"``, ``readout_tau_syn = None``; issue 14). The former max-over-time readout
    through a 5 ms synapse left 3 training seeds of 5 stuck at ~82 % on Yin-Yang, for two reasons:
    (1) the filtered membrane starts with almost zero slope (``u_1 = 0.009 x`` for 10 ms / 5 ms /
    1 ms), so an output whose drive turned negative had its max-over-time logit pinned at the
    first step with ~1/80 of the gradient of a positively driven one, and the "dot" class, once
    pushed negative, was never learnt (~50 %); (2) the max passes the gradient through one time
    step per sample, and short or noisy trainings plateau with yin and yang confused (~65-85 %
    after 8-12 epochs). The mean passes the same gradient for either sign of the drive through
    every step (tests/test_recipes.py).

    Memristive neurons (``neuron = "mif" | "oscillator"``, :mod:`training.memristive`): ``dt``
    is the neuron step (MIF ≤ 10 µs, e.g. 1e-6; oscillator ≤ 10 ns) and each sample lasts
    ``time_steps`` steps; current_gain: column-current → membrane-current gain (default 10 makes
    the default MIF neurons switch for typical PCM-window inputs); row_gain, v_row_ref (V), row_swing:
    next-row voltage = V_s tanh(row_gain · (v − v_row_ref)/V_s) with V_s = row_swing · v_read (None:
    linear); readout_scale: V per logit unit of the output
    membranes' ``readout`` ("mean" or "max" over time); neuron_params: options of the neuron class (MIF: c, e1, e2,
    v_spike, v_init, x_init, device_preset, device_overrides, d2d, c2c_sigma, splitting, v_low, v_high, v_knee, seed;
    oscillator: c, r_load, g_leak, x_spike, v_init, device_preset, device_overrides, d2d,
    c2c_sigma, seed; MIF v_low/v_high/v_knee: the mirrors' compliance rails, default ±0.5 V). The
    LIF-only fields (tau_mem, surrogate, readout_tau_*, ...) are unused then; the memristive fields are unused by "lif"/"if" (``neuron_params`` must be empty).
    """

    hidden: tuple = (120,)
    neuron: str = "lif"
    tau_mem: float = 10e-3
    tau_syn: float | None = None
    v_th: float = 0.2
    reset: str = "subtract"
    refractory_steps: int = 0
    surrogate: str = "fast_sigmoid"
    slope: float = 25.0
    readout: str = "mean"
    readout_tau_mem: float = 10e-3
    readout_tau_syn: float | None = None
    encoding: str = "direct"
    time_steps: int = 20
    dt: float = 1e-3
    input_scale: float = 5.0
    bias: bool = True
    current_gain: float = 10.0
    row_gain: float = 1.0
    v_row_ref: float = 0.0
    readout_scale: float = 0.01
    row_swing: float | None = 1.0
    neuron_params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.hidden, (list, tuple)):
            raise ValueError(f"hidden must be a list of layer widths (e.g. [120]), got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty list of layer widths >= 1, got {list(self.hidden)}")
        for name, value, allowed in (("neuron", self.neuron, NEURONS), ("readout", self.readout, READOUTS),
                                     ("encoding", self.encoding, ENCODINGS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        if isinstance(self.time_steps, bool) or not isinstance(self.time_steps, int) or self.time_steps < 1:
            raise ValueError(f"time_steps must be an integer >= 1, got {self.time_steps!r}")
        if not (isinstance(self.input_scale, (int, float)) and self.input_scale > 0):
            raise ValueError(f"input_scale must be > 0, got {self.input_scale!r}")
        if self.extra:
            raise ValueError(f"unknown network option(s) {sorted(self.extra)}")
        self.lif_parameters().validate()
        self.li_parameters().validate()
        if self.memristive:
            validate_memristive_options(self.neuron, self.dt, self.current_gain, self.row_gain, self.readout_scale,
                                        self.neuron_params, self.v_row_ref, self.row_swing)
        elif self.neuron_params:
            raise ValueError(f"neuron_params applies only to neuron in {list(MEMRISTIVE_NEURONS)}, "
                             f"got neuron={self.neuron!r} with {sorted(self.neuron_params)}")

    @property
    def memristive(self) -> bool:
        """True for fully memristive neurons ("mif", "oscillator")."""
        return self.neuron in MEMRISTIVE_NEURONS

    def lif_parameters(self) -> LIFParameters:
        return LIFParameters(tau_mem=self.tau_mem, tau_syn=self.tau_syn, v_th=self.v_th, reset=self.reset,
                             refractory_steps=self.refractory_steps, surrogate=self.surrogate, slope=self.slope)

    def if_parameters(self) -> IFParameters:
        return IFParameters(v_th=self.v_th, reset=self.reset, refractory_steps=self.refractory_steps,
                            surrogate=self.surrogate, slope=self.slope)

    def li_parameters(self) -> LIParameters:
        return LIParameters(tau_mem=self.readout_tau_mem, tau_syn=self.readout_tau_syn)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, values: dict) -> "NetworkConfig":
        if not isinstance(values, dict):
            raise ValueError(f"[network] must be a table, got {values!r}")
        values = none_from_strings(values)
        if isinstance(values.get("neuron_params"), dict):  # e.g. v_high = "none": no compliance rail
            values["neuron_params"] = none_from_strings(values["neuron_params"])
        allowed = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown network option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**values)


ENCODE_SEED = 12345  # seed of the rate-encoding generator


class SpikingMLP(nn.Module):
    """Spiking MLP on crossbars (module docstring): ``forward(x (batch, in))`` → logits
    ``(batch, classes)``; ``forward(x, time_steps=T)`` overrides ``T`` (evaluation vs T).

    ``device``: where the network lives (default CPU); ``model.to(device)`` moves every layer,
    neuron, deployed device model and random generator (generators are re-seeded on the new device)."""

    def __init__(self, in_features: int, n_classes: int, network: NetworkConfig | dict | None = None,
                 hardware: HardwareConfig | dict | None = None, *, device=None):
        super().__init__()
        net = NetworkConfig.from_dict(network) if isinstance(network, dict) else (network or NetworkConfig())
        self.network = net
        widths = [in_features, *net.hidden, n_classes]
        hardware = HardwareConfig.from_dict(hardware) if isinstance(hardware, dict) else (hardware or HardwareConfig())
        self.layers = nn.ModuleList(CrossbarLinear(a, b, bias=net.bias, hardware=self._layer_hardware(hardware, k),
                                                   layer_id=k, device=device)
                                    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        self.encode_generator = self._new_encode_generator(device)
        if net.memristive:  # hidden and output neurons are memristive; no LI readout
            self.neurons = build_neurons(net.neuron, widths[1:], net.dt, net.neuron_params, device=device)
            self.readout = None
            self.neuron_generator = neuron_generator(net.neuron_params, device)
            return
        neuron = (lambda: LIF(net.lif_parameters(), dt=net.dt)) if net.neuron == "lif" else \
            (lambda: IF(net.if_parameters()))
        self.neurons = nn.ModuleList(neuron() for _ in net.hidden)
        self.readout = LeakyIntegrator(net.li_parameters(), dt=net.dt)
        if device is not None:
            self.to(device)

    # -------------------------------------------------------------- device placement
    @staticmethod
    def _new_encode_generator(device) -> torch.Generator:
        return torch.Generator(device=torch.device("cpu" if device is None else device)).manual_seed(ENCODE_SEED)

    @property
    def device(self) -> torch.device:
        return self.layers[0].weight.device

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        device = self.device
        if self.encode_generator.device != device:  # re-created on the new device from its seed
            self.encode_generator = self._new_encode_generator(device)
        if self.network.memristive and self.neuron_generator.device != device:
            self.neuron_generator = neuron_generator(self.network.neuron_params, device)
        return self

    # -------------------------------------------------------------- hardware
    def _layer_hardware(self, hardware: HardwareConfig, k: int) -> HardwareConfig:
        """Layer ``k``'s options: ``x_max`` is the full scale of a unit input (a spike); the first
        layer's DAC spans the encoded input, ``input_scale·x_max`` for direct encoding. Memristive
        networks: :func:`training.memristive.layer_hardware` (no ADC; no DAC after layer 0)."""
        if self.network.memristive:
            return layer_hardware(hardware, k, self.network.encoding, self.network.input_scale)
        if k == 0 and self.network.encoding == "direct" and self.network.input_scale != 1.0:
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
        """Program every layer (:meth:`CrossbarLinear.deploy`; ``repeat`` = the deployment's index in
        the device-seed path)."""
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
    def encode(self, x: torch.Tensor, time_steps: int) -> torch.Tensor:
        net = self.network
        if net.encoding == "direct":
            return direct_encode(x * net.input_scale, time_steps)
        if net.encoding == "rate":
            return rate_encode(x.clamp(0, 1), time_steps, self.encode_generator)
        return latency_encode(x.clamp(0, 1), time_steps, dt=net.dt)

    def forward(self, x: torch.Tensor, time_steps: int | None = None) -> torch.Tensor:
        steps = self.network.time_steps if time_steps is None else time_steps
        s = self.encode(x, steps)
        net = self.network
        if net.memristive:
            return memristive_forward(self.layers, self.neurons, s, current_gain=net.current_gain,
                                      row_gain=net.row_gain, readout=net.readout, readout_scale=net.readout_scale,
                                      v_row_ref=net.v_row_ref, row_swing=net.row_swing,
                                      generator=self.neuron_generator)
        for layer, neuron in zip(self.layers[:-1], self.neurons):
            s = neuron(layer(s))
        u = self.readout(self.layers[-1](s))
        return membrane_max(u) if self.network.readout == "max" else membrane_mean(u)

    def get_extra_state(self):
        state = {"encode_generator": self.encode_generator.get_state(),
                 "encode_generator_device": self.encode_generator.device.type}
        if self.network.memristive:
            state["neuron_generator"] = self.neuron_generator.get_state()
            state["neuron_generator_device"] = self.neuron_generator.device.type
        return state

    def set_extra_state(self, state) -> None:
        """Restore the generators (a state saved on another device type cannot continue there: the
        generator keeps its fresh seed)."""
        if state.get("encode_generator_device", "cpu") == self.encode_generator.device.type:
            self.encode_generator.set_state(state["encode_generator"])
        if "neuron_generator" in state and self.network.memristive and \
                state.get("neuron_generator_device", "cpu") == self.neuron_generator.device.type:
            self.neuron_generator.set_state(state["neuron_generator"])
