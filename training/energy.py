r"""Energy and latency per inference of a network on crossbars, from its measured activity.

:class:`EnergyMeter` watches every crossbar layer of any model (``SpikingMLP``, ``SpikingConvNet``,
a converted snnTorch/Norse/torch model) while it runs and counts, for every read (MVM) of every
layer, what the chip does (:mod:`xbar.energy` for the figures and their sources)::

    array   t_read · Σ_tiles v Y_rc vᵀ        v = DAC codes · v_unit (V) of the layer's rows (bias
                                              row at full scale), Y_rc the tile's row admittance (S)
                                              of its present conductances (deployed devices at the
                                              inference time, else the programming targets), wire
                                              and driver/sense resistances included; nonlinear
                                              tiles (1S1R, EKV) are solved for every input instead
    DAC     n_col_tiles · (driven rows) · dac_energy(bits)    driven = non-zero inputs with
                                              ``event_driven`` (else all rows); bits = 1 for spike
                                              inputs (every input 0 or one value, not all 0), else
                                              dac_bits; the bias row is a 1-bit drive every read
    ADC     n_row_tiles · outputs · adc_energy(adc_bits)       one conversion per tile output
    sense   n_row_tiles · outputs · sense_energy
    digital (n_row_tiles − 1) · outputs · partial_sum_energy
    neurons outputs · neuron_update_energy  +  spikes · (neuron_spike_energy + spike_route_energy)

where "spikes" are the non-zero entries of spike inputs (binary-valued inputs) of the crossbar
layers: the events that reach a layer.

Fully memristive networks (``SpikingMLP`` with ``neuron = "mif" | "oscillator"``,
:mod:`training.memristive`) have no ADC or digital neuron between layers: each layer's column
currents, summed over its row tiles on the membrane node (KCL), drive the memristive neurons
through a current mirror, and the membranes drive the next layer's rows through analog buffers.
The meter runs every neuron layer once more on the currents it received (same generator state,
so the same C2C draws; the model's own results are untouched) and costs per read::

    sense   outputs · sense_energy                one current mirror per column pair
    digital 0                                     partial currents add on the membrane
    ADC     0 per read; the output layer's membranes are digitised once per inference:
            outputs · adc_energy(ideal_converter_bits)
    DAC     as above (analog buffers of rows ≥ layer 1 at ideal_converter_bits: an estimate)
    neurons MIF: the energy drawn from the neurons' supplies, input mirror and reversal sources
            (:func:`circuits.neurons.energy.mif_supply_energy`), from the simulated v, x1, x2;
            oscillator: its circuit is not modelled, the CMOS figures above are charged
            (``neuron_model`` of the report says which)

and "spikes" are the spikes the memristive neurons emit (:func:`circuits.neurons.count_spikes` of
their membrane traces).

Static power of always-on circuits beyond these per-read figures (bias currents, clock trees,
leakage) is not modelled. With zero input only the sense, ADC, partial-sum and neuron-update terms
remain (and the bias row's array and drive energy; a memristive network's resting neurons still
draw from their reversal sources).

Latency: the tiles of one layer are read in parallel; reads of one layer follow each other (a
convolution's positions), layers follow each other within a time step::

    latency per inference = Σ_layers (reads of the layer per inference) · read_latency
    latency per time step = latency per inference / T

``T`` is ``time_steps`` if given, else the model's ``network.time_steps``, else the number of reads of
the first crossbar layer per inference and output position.

Usage::

    report = measure_energy(model, x)                      # one forward pass model(x)
    report.energy_per_inference_J, report.breakdown_J, report.latency_per_step_s

    with EnergyMeter(model) as meter:                      # any forward code, e.g. a time loop
        for t in range(T): out = net_step(x[t])
    report = meter.report(n_inferences=batch)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from devices.validation import check_int
from xbar.crossbar import Crossbar
from xbar.energy import EnergyConfig, quadratic_energy, row_admittance

from circuits.neurons import MIFNeuron, count_spikes
from circuits.neurons.energy import mif_supply_energy

from .crossbar_conv import CrossbarConv2d
from .crossbar_linear import CrossbarLinear
from .memristive import column_current, has_c2c, spike_counts

Tensor = torch.Tensor

__all__ = ["EnergyMeter", "EnergyReport", "measure_energy", "energy_metrics", "COMPONENTS"]

#: reads (input vectors) of one layer costed at a time (float64 row voltages of at most
#: RECORD_CHUNK x rows; the totals do not depend on it)
RECORD_CHUNK = 1 << 15

#: energy components of a report, in this order
COMPONENTS = ("array", "dac", "adc", "sense", "digital", "neuron")


@dataclass
class EnergyReport:
    """Energy (J) and latency (s) per inference; ``breakdown_J`` by component (:data:`COMPONENTS`),
    ``layers`` one dict per crossbar layer (name, reads, energies)."""

    energy_per_inference_J: float
    breakdown_J: dict
    latency_per_inference_s: float
    latency_per_step_s: float
    time_steps: int
    spikes_per_inference: float
    reads_per_inference: float
    n_inferences: int
    layers: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    #: how the neurons were costed: "cmos figures" (per update and spike, EnergyConfig), "mif
    #: circuit" (supply energy of the simulated MIF circuits), or "cmos figures (oscillator
    #: circuit not modelled)"
    neuron_model: str = "cmos figures"

    def metrics(self) -> dict:
        """Flat numeric metrics (CSV/JSON-ready, names with units)."""
        out = {"energy_per_inference_J": self.energy_per_inference_J,
               "latency_per_step_s": self.latency_per_step_s,
               "latency_per_inference_s": self.latency_per_inference_s,
               "spikes_per_inference": self.spikes_per_inference}
        out |= {f"energy_{k}_J": v for k, v in self.breakdown_J.items()}
        return out

    def to_dict(self) -> dict:
        return asdict(self)


class _LayerStats:
    """Running sums of one crossbar layer (per read counts summed over all reads seen)."""

    def __init__(self, name: str):
        self.name = name
        self.reads = 0
        self.positions = 1
        self.energy = dict.fromkeys(COMPONENTS, 0.0)
        self.spikes = 0.0
        self.token = None
        self.admittance: list[Tensor] | None = None  # per row tile: Σ_c Y_rc (used rows only)


class EnergyMeter:
    """Counts what every crossbar layer of ``model`` does while the meter is active (module
    docstring). Use as a context manager (hooks are removed on exit) and call :meth:`report`."""

    def __init__(self, model: nn.Module, config: EnergyConfig | None = None):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.config = EnergyConfig() if config is None else config
        if not isinstance(self.config, EnergyConfig):
            raise ValueError(f"config must be an xbar.energy.EnergyConfig, got {type(self.config).__name__}")
        self.model = model
        self._layers: list[tuple[str, CrossbarLinear, bool]] = []  # (name, linear, inside a conv)
        convs = {id(m.linear) for m in model.modules() if isinstance(m, CrossbarConv2d)}
        for name, m in model.named_modules():
            if isinstance(m, CrossbarLinear) and not any(m is layer for _, layer, _ in self._layers):
                self._layers.append((name, m, id(m) in convs))
        if not self._layers:
            raise ValueError("the model has no crossbar layers: convert it first (training.convert_to_crossbar)")
        self._stats = {id(m): _LayerStats(name) for name, m, _ in self._layers}
        self._handles = []
        # fully memristive networks: id(crossbar layer) -> (its neuron layer, whether it is the output layer)
        self._memristive: dict[int, tuple[nn.Module, bool]] = {}
        self.neuron_model = "cmos figures"
        if getattr(getattr(model, "network", None), "memristive", False):
            layers, neurons = list(model.layers), list(model.neurons)
            self._memristive = {id(layer): (neuron, k == len(layers) - 1)
                                for k, (layer, neuron) in enumerate(zip(layers, neurons))}
            self.neuron_model = ("mif circuit" if all(isinstance(n, MIFNeuron) for n in neurons)
                                 else "cmos figures (oscillator circuit not modelled)")

    # ------------------------------------------------------------------ hooks
    def __enter__(self) -> "EnergyMeter":
        self._handles = [m.register_forward_hook(self._make_hook(in_conv)) for _, m, in_conv in self._layers]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        """Forget the counts; the tiles' admittances are kept while the conductances they were
        computed from stay the same (same deployment and read, or same weights)."""
        old = self._stats
        self._stats = {id(m): _LayerStats(name) for name, m, _ in self._layers}
        for key, stats in self._stats.items():
            stats.admittance, stats.token = old[key].admittance, old[key].token

    def _make_hook(self, in_conv: bool):
        def hook(module, inputs, output):
            with torch.no_grad():
                self._record(module, inputs[0], in_conv, output)
        return hook

    @staticmethod
    def _token(layer: CrossbarLinear) -> tuple:
        """What the tiles' admittances depend on: the read conductance tensor itself (a new
        tensor at every read) or the weights' versions, and the array options."""
        dep = layer._deployment
        options = repr(layer.hardware.crossbar_config())
        if dep is not None:
            return ("deployed", dep.g, options)
        return ("target", layer.weight, layer.weight._version,
                None if layer.bias is None else layer.bias._version, repr(layer.hardware.to_dict()))

    @staticmethod
    def _same(a: tuple | None, b: tuple) -> bool:
        return a is not None and len(a) == len(b) and all(
            (x is y) if torch.is_tensor(x) or torch.is_tensor(y) else x == y for x, y in zip(a, b))

    def _conductances(self, layer: CrossbarLinear) -> Tensor:
        """The padded conductances (S) the chip holds: deployed devices at the inference time
        (without the digital drift-compensation factor), else the programming targets."""
        dep = layer._deployment
        return dep.g if dep is not None else layer.target_conductances().detach()

    def _admittances(self, layer: CrossbarLinear, stats: _LayerStats) -> list[Tensor]:
        token = self._token(layer)
        if stats.admittance is None or not self._same(stats.token, token):
            arr, g = layer.array, self._conductances(layer)
            lay = arr.layout
            per_band = []
            for r in range(lay.n_row_tiles):
                rows_used = lay.used(r, 0)[0]
                total = None
                for c in range(lay.n_col_tiles):
                    y = row_admittance(Crossbar(g[lay.tile_slices(r, c)], config=arr.config), rows_used)
                    total = y if total is None else total + y
                per_band.append(total)
            stats.admittance, stats.token = per_band, token
        return stats.admittance

    def _array_energy(self, layer: CrossbarLinear, stats: _LayerStats, rows_in: Tensor) -> float:
        """Σ over the reads of the array energy (J) for the row inputs ``rows_in (reads, rows)``."""
        arr, t_read = layer.array, self.config.t_read
        v = rows_in.to(torch.float64) * arr.v_unit
        lay = arr.layout
        if arr.is_linear:
            admittances = self._admittances(layer, stats)
            total = 0.0
            for r, y in enumerate(admittances):
                v_r = v[:, r * lay.tile_rows:r * lay.tile_rows + y.shape[0]]
                total += float(quadratic_energy(v_r, y, t_read).sum())
            return total
        g = self._conductances(layer)
        v = torch.nn.functional.pad(v, (0, lay.padded_rows - v.shape[1]))
        total = 0.0
        for r in range(lay.n_row_tiles):
            v_r = v[:, r * lay.tile_rows:(r + 1) * lay.tile_rows]
            for c in range(lay.n_col_tiles):
                sol = Crossbar(g[lay.tile_slices(r, c)], config=arr.config).full_solution(v_r)
                total += float(sol.power.sum()) * t_read
        return total

    def _memristive_neurons(self, layer: CrossbarLinear, neuron: nn.Module, y: Tensor) -> tuple[float, float]:
        """(energy (J), spikes) of the memristive neuron layer fed by ``layer``'s output ``y``
        ``(T, batch, out)`` (module docstring), from a replay with the model's generator state."""
        model, cfg = self.model, self.config
        i_in = column_current(y.detach(), layer, model.network.current_gain)
        generator = None
        if has_c2c(neuron):  # a copy: the same draws the model is about to make, its state untouched
            source = model.neuron_generator
            generator = torch.Generator(device=source.device)
            generator.set_state(source.get_state())
        if isinstance(neuron, MIFNeuron):
            v, states = neuron(i_in, return_states=True, generator=generator)
            energy = mif_supply_energy(i_in, states, neuron.initial_state(i_in.shape[1]), neuron.parameters_tuple(),
                                       neuron.dt)
            return float(energy.sum()), float(count_spikes(v, neuron.v_spike).sum())
        v = neuron(i_in, generator=generator)
        spikes = float(spike_counts([v], [neuron])[0].sum())
        updates = float(v.numel())
        return updates * cfg.neuron_update_energy + spikes * (cfg.neuron_spike_energy + cfg.spike_route_energy), spikes

    def _record(self, layer: CrossbarLinear, x: Tensor, in_conv: bool, output: Tensor | None = None) -> None:
        cfg, hw, stats = self.config, layer.hardware, self._stats[id(layer)]
        lay = layer.array.layout
        flat = x.detach().reshape(-1, layer.in_features)
        reads = flat.shape[0]
        if in_conv and x.dim() >= 2:
            stats.positions = int(x.shape[-2])
        # the reads in chunks of RECORD_CHUNK (memory stays bounded for a conv layer's T x batch x
        # positions reads). Spike inputs: every input 0 or one common non-zero value, at least one
        # of them non-zero, over all reads (an all-zero batch is costed at the DAC resolution)
        nonzero, common, same = 0.0, None, True
        for part in flat.split(RECORD_CHUNK):
            codes = layer.array.input_codes(part.to(layer.weight.dtype))
            nz = codes[codes != 0]
            if nz.numel():
                common = nz[0] if common is None else common
                same = same and bool((nz == common).all())
            nonzero += float(nz.numel())
            rows_in = codes if layer.bias is None else torch.cat([codes, codes.new_full((len(codes), 1), hw.x_max)], 1)
            stats.energy["array"] += self._array_energy(layer, stats, rows_in)
        spikes = common is not None and same
        driven = nonzero if cfg.event_driven else float(reads * layer.in_features)
        bits = 1 if spikes else hw.dac_bits
        e = stats.energy
        e["dac"] += lay.n_col_tiles * (driven * cfg.dac_energy(bits)
                                       + (reads * cfg.dac_energy(1) if layer.bias is not None else 0.0))
        memristive = self._memristive.get(id(layer))
        if memristive is not None:
            neuron, last = memristive
            if last:  # the output membranes, digitised once per inference
                e["adc"] += x.shape[-2] * layer.out_features * cfg.adc_energy(None)
            e["sense"] += reads * layer.out_features * cfg.sense_energy
            energy, emitted = self._memristive_neurons(layer, neuron, output)
            e["neuron"] += energy
            stats.spikes += emitted
            stats.reads += reads
            return
        conversions = reads * lay.n_row_tiles * layer.out_features
        e["adc"] += conversions * cfg.adc_energy(hw.adc_bits)
        e["sense"] += conversions * cfg.sense_energy
        e["digital"] += reads * (lay.n_row_tiles - 1) * layer.out_features * cfg.partial_sum_energy
        layer_spikes = nonzero if spikes else 0.0
        e["neuron"] += (reads * layer.out_features * cfg.neuron_update_energy
                        + layer_spikes * (cfg.neuron_spike_energy + cfg.spike_route_energy))
        stats.spikes += layer_spikes
        stats.reads += reads

    # ------------------------------------------------------------------ report
    def report(self, n_inferences: int, time_steps: int | None = None) -> EnergyReport:
        """Energy and latency per inference of everything recorded, for ``n_inferences``
        inferences (samples); ``time_steps`` as in the module docstring."""
        n = check_int("n_inferences", n_inferences, low=1)
        stats = [self._stats[id(m)] for _, m, _ in self._layers]
        if sum(s.reads for s in stats) == 0:
            raise ValueError("the meter saw no crossbar reads: run the model inside `with meter:`")
        if time_steps is None:
            time_steps = getattr(getattr(self.model, "network", None), "time_steps", None)
        if time_steps is None:
            first = next(s for s in stats if s.reads)
            time_steps = max(1, round(first.reads / (n * first.positions)))
        time_steps = check_int("time_steps", time_steps, low=1)
        breakdown = {k: sum(s.energy[k] for s in stats) / n for k in COMPONENTS}
        latency = sum(s.reads / n for s in stats) * self.config.read_latency
        layers = [{"name": s.name, "reads_per_inference": s.reads / n, "spikes_per_inference": s.spikes / n,
                   "energy_per_inference_J": sum(s.energy.values()) / n,
                   **{f"{k}_J": v / n for k, v in s.energy.items()}} for s in stats]
        total = sum(breakdown.values())
        if not math.isfinite(total):
            raise FloatingPointError(f"energy per inference is {total}: a conductance or input is not finite")
        return EnergyReport(energy_per_inference_J=total, breakdown_J=breakdown, latency_per_inference_s=latency,
                            latency_per_step_s=latency / time_steps, time_steps=time_steps,
                            spikes_per_inference=sum(s.spikes for s in stats) / n,
                            reads_per_inference=sum(s.reads for s in stats) / n, n_inferences=n, layers=layers,
                            config=self.config.to_dict(), neuron_model=self.neuron_model)


def measure_energy(model: nn.Module, x, *, forward=None, n_inferences: int | None = None,
                   time_steps: int | None = None, config: EnergyConfig | None = None) -> EnergyReport:
    """Run ``forward(model, x)`` (default ``model(x)``) once without gradients, in eval mode (the
    model's mode is restored), and report the energy per inference; ``n_inferences`` defaults to
    ``len(x)`` (batch first; pass it for time-major inputs)."""
    n = len(x) if n_inferences is None else n_inferences
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), EnergyMeter(model, config) as meter:
            forward(model, x) if forward is not None else model(x)
    finally:
        model.train(was_training)
    return meter.report(n, time_steps)


def energy_metrics(model: nn.Module, x, *, forward=None, time_steps: int | None = None,
                   config: EnergyConfig | None = None) -> dict:
    """:meth:`EnergyReport.metrics` of :func:`measure_energy` (for result tables)."""
    return measure_energy(model, x, forward=forward, time_steps=time_steps, config=config).metrics()
