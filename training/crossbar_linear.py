r"""``CrossbarLinear``: a linear layer whose weights live on tiled memristive crossbars.

A thin ``nn.Module`` shell over the tiled-array core :class:`xbar.tiles.TiledArray` (the same
pipeline as :class:`xbar.TiledCrossbar`). The layer keeps a digital master weight ``W (out, in)``
and bias ``b (out,)`` like :class:`torch.nn.Linear`. The bias is one more crossbar row driven at
full-scale input ``x_max``, so the array holds ``W_aug = [W^T; b^T/x_max]`` (``(in+1, out)``),
clipped to ``[-w_max, w_max]`` and mapped to differential pairs (:mod:`training.hardware`) on
tiles of ``tile_rows x tile_cols`` cells (pair k on columns 2k, 2k+1)::

    x --DAC--> x_q --tile (r, c)--> partial_rc = x_q[r-block] @ W_eff[r-block, c-block]
      --ADC--> sum over row tiles r (digital partial sums) --> y (out units)

``W_eff`` is what the hardware realises, by forward mode (``HardwareConfig.mode``):

* ``ideal``:   ``W_eff = clip(W_aug)``;
* ``noisy``:   training: the weight-level draw of the calibrated device noise
  (:mod:`training.noise_model`: one ``randn`` per weight in the working dtype); after
  :meth:`deploy`: ``(G+ - G-)/s`` of the programmed devices read at the inference time, times
  each tile's drift-compensation factor;
* ``circuit``: the exact crossbar: ``W_eff[r, c] = (A_rc[:, 0::2] - A_rc[:, 1::2]) / s`` from each
  tile's transfer matrix ``A_rc`` (S) of device-level noisy or deployed conductances, IR drop and
  sneak paths included; nonlinear tiles (1S1R, EKV 1T1R) are solved per input with Newton
  instead. While training, the circuit is solved every ``circuit_refresh`` steps and the
  correction ``W_circuit - W_noisy`` of the last solve is added to fresh noisy weights in between.

Gradients: ``backward="ste"`` uses the gradient of the clipped ideal weights
(``W_eff = W_c + (W_eff - W_c).detach()``); ``"exact"`` differentiates the transfer matrices
(circuit mode). DAC/ADC quantisers pass gradients straight through inside their range.
Inputs may have any leading shape (``(T, batch, in)`` sequences included); every time step
sees the same realised conductances, as on a chip.

Layer API (what model-wide helpers build on): :meth:`deploy`, :meth:`set_inference_time`,
:meth:`undeploy`, :meth:`set_mode`, :attr:`hardware` / :meth:`set_hardware`,
:meth:`clip_weights_`, :meth:`effective_weights` (in circuit mode after deployment: the exact
weights of the deployed hardware at time t). Every tensor, generator and device model of the
layer lives on the layer's device; ``layer.to(device)`` moves them and re-creates the noise
generators on the new device from their seed paths (deterministic, but a CUDA stream differs
from a CPU one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from devices.seeding import make_generator
from devices.validation import check_choice, check_int, check_time
from xbar.drift_compensation import GlobalDriftCompensation
from xbar.peripherals import clip, running_peak_
from xbar.programming import TileDevices

from .hardware import MODES, HardwareConfig
from .noise_model import WeightNoise, calibrate_noise

Tensor = torch.Tensor

#: options that change neither the chip nor its programming (deployed devices are kept)
_RUNTIME_OPTIONS = ("mode", "backward", "circuit_refresh", "train_noise", "drift_compensation", "adc_range",
                    "adc_headroom", "adc_bits", "dac_bits")


@dataclass
class _Deployment:
    """Programmed devices of a layer and their latest read."""

    devices: TileDevices
    compensation: GlobalDriftCompensation
    repeat: int
    t: float | None = None
    g: Tensor | None = None        # padded read at t (S, float64)
    alpha: Tensor | None = None    # per-tile compensation factors at t

    def to(self, device) -> None:
        self.devices.to(device)
        self.compensation.to(device)
        self.g = None if self.g is None else self.g.to(device)
        self.alpha = None if self.alpha is None else self.alpha.to(device)


class CrossbarLinear(nn.Module):
    """Linear layer on crossbars (module docstring).

    Args:
        in_features, out_features: sizes; bias: add a bias row.
        hardware: :class:`HardwareConfig` or its dict (default: ideal PCM 128x128 tiles).
        layer_id: distinguishes the seeds of layers sharing one config.
        dtype: dtype of the master weights and outputs (float32 for training); device: where
            the layer lives.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 hardware: HardwareConfig | dict | None = None, *, layer_id: int = 0,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.layer_id = check_int("layer_id", layer_id, low=0)
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=dtype, device=device)) if bias else None
        self.register_buffer("adc_peak", torch.zeros((), dtype=torch.float64, device=device))
        self._hardware: HardwareConfig | None = None
        self._generator = self._fault_generator = None
        self._deployment: _Deployment | None = None
        self.set_hardware(hardware if hardware is not None else HardwareConfig())
        self.reset_parameters()

    # ------------------------------------------------------------------ configuration
    @property
    def hardware(self) -> HardwareConfig:
        """The layer's hardware options (change them with :meth:`set_hardware`)."""
        return self._hardware

    @property
    def mapping(self):
        return self.array.mapping

    @property
    def n_rows(self) -> int:
        return self.array.layout.rows

    @property
    def n_row_tiles(self) -> int:
        return self.array.layout.n_row_tiles

    @property
    def n_col_tiles(self) -> int:
        return self.array.layout.n_col_tiles

    def set_hardware(self, hardware: HardwareConfig | dict) -> None:
        """Switch hardware options (mode, noise, ...); deployed devices are kept unless the
        device, array or programming options change."""
        hw = HardwareConfig.from_dict(hardware) if isinstance(hardware, dict) else hardware
        if not isinstance(hw, HardwareConfig):
            raise ValueError(f"hardware must be a HardwareConfig or a dict, got {type(hardware).__name__}")
        old = self._hardware
        chip = lambda cfg: {k: v for k, v in cfg.to_dict().items() if k not in _RUNTIME_OPTIONS}  # noqa: E731
        same_chip = old is not None and chip(old) == chip(hw)
        self._hardware = hw
        self.array = hw.tiled_array(self.in_features + (1 if self.bias is not None else 0), self.out_features)
        if old is None or old.seed != hw.seed:
            self._generator = self._fault_generator = None  # re-seeded from the new seed on first use
        if not same_chip:
            self._deployment = None
        self._clear_caches()

    def _clear_caches(self) -> None:
        self._w_deployed = None          # deployed noisy weights (working dtype)
        self._w_circuit = None           # deployed circuit weights (working dtype)
        self._correction, self._steps_since_refresh = None, 0
        self._weight_noise = None

    def set_mode(self, mode: str) -> None:
        """Change the forward mode (``"ideal"``, ``"noisy"``, ``"circuit"``)."""
        check_choice("mode", mode, MODES)
        self.set_hardware(self.hardware.replace(mode=mode, backward="ste" if mode != "circuit"
                                                else self.hardware.backward))

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialisation (uses torch's global RNG: seed it for repeatable runs)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    @torch.no_grad()
    def clip_weights_(self) -> None:
        """Clip the master weights to what the pairs can hold (call after each optimiser step)."""
        w_max = self.hardware.w_max
        self.weight.clamp_(-w_max, w_max)
        if self.bias is not None:
            self.bias.clamp_(-w_max * self.hardware.x_max, w_max * self.hardware.x_max)

    # ------------------------------------------------------------------ device placement
    def _generators(self) -> tuple[torch.Generator, torch.Generator]:
        """The training-noise generator (on the layer's device) and the CPU generator of fault
        counts, seeded from ``(seed, "layer", layer_id, ...)``."""
        device = self.weight.device
        if self._generator is None or self._generator.device != device:
            seed = self.hardware.seed
            self._generator = make_generator(seed, "layer", self.layer_id, "train_noise", device=device)
            self._fault_generator = make_generator(seed, "layer", self.layer_id, "train_fault_count")
        return self._generator, self._fault_generator

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        device = self.weight.device
        if self._deployment is not None:
            self._deployment.to(device)
        if self._generator is not None and self._generator.device != device:
            self._generator = self._fault_generator = None
        self._clear_caches()  # dtype- or device-bound constants are rebuilt on use
        return self

    # ------------------------------------------------------------------ weights <-> conductances
    def _clipped_parts(self) -> tuple[Tensor, Tensor | None]:
        """The clipped weights of the input rows in ``weight``'s layout ``(out, in)`` and of the
        bias row ``(out,)`` (None without bias), differentiable."""
        w_max = self.hardware.w_max
        bias = None if self.bias is None else clip(self.bias / self.hardware.x_max, w_max)
        return clip(self.weight, w_max), bias

    def array_weights(self) -> Tensor:
        """Clipped array weights ``W_aug`` (in+1, out), in the master dtype, differentiable."""
        return self._array_form(*self._clipped_parts())

    @staticmethod
    def _array_form(w_oi: Tensor, bias: Tensor | None) -> Tensor:
        """``(out, in)`` weights and bias row -> ``(in+1, out)`` array weights."""
        return w_oi.t() if bias is None else torch.cat([w_oi.t(), bias[None]], dim=0)

    def _layer_form(self, w: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(in+1, out)`` array weights -> contiguous ``(out, in)`` weights and bias row."""
        if self.bias is None:
            return w.t().contiguous(), None
        return w[:self.in_features].t().contiguous(), w[self.in_features].contiguous()

    def target_conductances(self, w: Tensor | None = None, *, padded: bool = True) -> Tensor:
        """Interleaved target conductances (S, float64): ``(rows_padded, 2 outs_padded)``, or only
        the used cells ``(in+1, 2 out)`` with ``padded=False`` (unused cells sit at ``g_min``)."""
        return self.array.target_conductances(self.array_weights() if w is None else w, padded=padded, clip=True)

    def weights_from_conductances(self, g: Tensor) -> Tensor:
        """Array weights ``(in+1, out)`` represented by interleaved conductances ``g`` (S)."""
        return self.array.weights_from_conductances(g)

    # ------------------------------------------------------------------ deployment
    @property
    def deployed(self) -> bool:
        return self._deployment is not None

    @property
    def t_inference(self) -> float | None:
        """Inference time (s) of the present read of the deployed devices (None if not deployed)."""
        return None if self._deployment is None else self._deployment.t

    @torch.no_grad()
    def deploy(self, t_inference: float = 0.0, *, repeat: int = 0):
        """Program the present weights into real devices, one array per tile, seeded by hashing
        ``(hardware.seed, "layer", layer_id, "tile", r, c, "repeat", repeat)``, store a calibration
        read of every tile's weight cells (drift compensation) and read them at ``t_inference`` s.
        Returns the list of :class:`devices.ProgramResult` (one per tile, row-major)."""
        lay = self.array.layout
        target = self.target_conductances()
        tiles = TileDevices(self.hardware.device_spec(), lay, layer=self.layer_id, repeat=repeat,
                            device=self.weight.device)
        results = tiles.program(target)
        comp = GlobalDriftCompensation().calibrate(lay.stack(tiles.read(0.0)), lay.weight_mask(target.device))
        self._deployment = _Deployment(tiles, comp, repeat)
        self.set_inference_time(t_inference)
        return results

    @torch.no_grad()
    def set_inference_time(self, t: float) -> None:
        """Read every deployed tile ``t`` s after programming (drift, read noise, faults); the
        per-tile global drift compensation is applied when ``hardware.drift_compensation``."""
        if self._deployment is None:
            raise ValueError("the layer is not deployed: call deploy() first")
        t = check_time("t (inference time)", t)
        dep = self._deployment
        dep.g = dep.devices.read(t)
        dep.alpha = dep.compensation.factor(self.array.layout.stack(dep.g))
        dep.t = t
        self._clear_caches()

    def undeploy(self) -> None:
        self._deployment = None
        self._clear_caches()

    def _alpha(self) -> Tensor | None:
        dep = self._deployment
        return dep.alpha if dep is not None and self.hardware.drift_compensation else None

    def deployed_conductances(self) -> Tensor:
        """The padded deployed conductances (S) at the inference time, each tile scaled by its
        drift-compensation factor when compensation is on (the linear equivalent of scaling its
        outputs)."""
        if self._deployment is None:
            raise ValueError("the layer is not deployed: call deploy() first")
        alpha = self._alpha()
        g = self._deployment.g
        lay = self.array.layout
        return g if alpha is None else lay.unstack(lay.stack(g) * alpha[:, :, None, None])

    # ------------------------------------------------------------------ effective weights
    def _noise(self) -> WeightNoise:
        w = self.weight
        if self._weight_noise is None:
            self._weight_noise = calibrate_noise(self.hardware).weight_noise(
                self.hardware.w_max, self.hardware.train_noise, dtype=w.dtype, device=w.device)
        return self._weight_noise

    def _noise_delta(self, w_c: Tensor) -> Tensor | None:
        """A weight-level draw of the training noise ``w~ - w`` at ``w_c`` (no gradient; None when off)."""
        if self.hardware.train_noise == 0:
            return None
        gen, count = self._generators()
        return self._noise()(w_c.detach(), gen, count)

    def _noisy_conductances(self) -> Tensor:
        """Padded conductances (S) of a device-level noise draw on the weight cells (padding at g_min)."""
        g = self.target_conductances(padded=False).detach()
        if self.hardware.train_noise > 0:
            gen, count = self._generators()
            g = calibrate_noise(self.hardware).sample(g, gen, self.hardware.train_noise, count)
        return self.array.embed(g)

    def _deployed_weights(self, dtype) -> tuple[Tensor, Tensor | None]:
        """Weights of the deployed devices at the inference time (compensated), in layer form."""
        if self._w_deployed is None:
            w = self.weights_from_conductances(self._deployment.g)
            alpha = self._alpha()
            self._w_deployed = self._layer_form((w if alpha is None else w * self.array.layout.per_weight(alpha))
                                                .to(dtype))
        return self._w_deployed

    def effective_weights(self) -> Tensor:
        """``W_eff`` (in+1, out) in the master dtype (module docstring), with the configured
        gradient. For nonlinear circuits this is the noisy weight (the circuit acts per input)."""
        return self._array_form(*self._effective_parts())

    def _effective_parts(self) -> tuple[Tensor, Tensor | None]:
        """:meth:`effective_weights` in layer form: ``(out, in)`` weights and bias row ``(out,)``."""
        hw = self.hardware
        parts = self._clipped_parts()
        if hw.mode == "ideal":
            return parts
        linear_circuit = hw.mode == "circuit" and self.array.is_linear
        if self._deployment is None and not linear_circuit:  # training noise: one weight-level draw
            w_oi, bias = parts
            if hw.train_noise == 0:
                return parts
            gen, count = self._generators()
            if bias is None:
                return w_oi + self._noise()(w_oi, gen, count), None
            d_w, d_b = self._noise().with_bias(w_oi, bias, gen, count)
            return w_oi + d_w, bias + d_b
        if hw.backward == "exact":  # gradient through the circuit: array form, differentiable
            g = self._deployment.g if self._deployment is not None else self._noisy_conductances()
            alpha = self._alpha() if self._deployment is not None else None
            w = self._exact_circuit_weights(g, alpha).to(parts[0].dtype)
            return (w[:self.in_features].t(), w[self.in_features]) if self.bias is not None else (w.t(), None)
        if self._deployment is not None:
            if not linear_circuit:
                target = self._deployed_weights(parts[0].dtype)
            else:
                if self._w_circuit is None:
                    with torch.no_grad():
                        w = self.array.circuit_weights(self._deployment.g, alpha=self._alpha())
                        self._w_circuit = self._layer_form(w.to(parts[0].dtype))
                target = self._w_circuit
        elif not self.training:
            with torch.no_grad():
                target = self._layer_form(self.array.circuit_weights(self._noisy_conductances()).to(parts[0].dtype))
        else:
            target = self._layer_form(self._training_circuit_weights(self.array_weights()))
        return tuple(None if p is None else p + (t - p).detach() for p, t in zip(parts, target))

    def _exact_circuit_weights(self, g: Tensor, alpha: Tensor | None) -> Tensor:
        """Circuit weights of conductances ``g`` with the gradient of the targets (straight through
        the device error, exact through the circuit)."""
        target = self.target_conductances()
        return self.array.circuit_weights(target + (g - target).detach(), exact=True, alpha=alpha)

    def _training_circuit_weights(self, w_c: Tensor) -> Tensor:
        """Circuit weights while training (no gradient): the exact circuit of a device-level draw
        every ``circuit_refresh`` steps, else the last correction ``W_circuit - W_noisy`` added to a
        fresh weight-level draw."""
        with torch.no_grad():
            if self._correction is None or self._steps_since_refresh >= self.hardware.circuit_refresh:
                g = self._noisy_conductances()
                w_circuit = self.array.circuit_weights(g)
                self._correction = (w_circuit - self.weights_from_conductances(g)).to(w_c.dtype)
                self._steps_since_refresh = 1
                return w_circuit.to(w_c.dtype)
            self._steps_since_refresh += 1
            delta = self._noise_delta(w_c)
            w_noisy = w_c.detach() if delta is None else w_c.detach() + delta
            return w_noisy + self._correction

    # ------------------------------------------------------------------ forward
    def _adc(self, groups: list[Tensor]) -> Tensor:
        """Quantise every tile's partial output with the layer's ADC and sum them digitally."""
        if not self.array.quantises_outputs:
            return self.array.total(groups)
        hw = self.hardware
        if hw.adc_range is not None:
            return self.array.total(self.array.digitise(groups, hw.adc_range))
        peak = self.array.peak(groups)
        if self.training:
            running_peak_(self.adc_peak, peak)
        tracked = self.adc_peak.to(peak.dtype)
        full_scale = hw.adc_headroom * torch.where(tracked > 0, tracked, peak)
        return self.array.total(self.array.digitise(groups, full_scale))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input must have {self.in_features} features in its last dimension, "
                             f"got shape {tuple(x.shape)}")
        if x.device != self.weight.device:
            raise ValueError(f"input is on {x.device} but the layer is on {self.weight.device}: move one of them")
        lead = x.shape[:-1]
        codes = self.array.input_codes(x.reshape(-1, self.in_features).to(self.weight.dtype))
        if self.hardware.mode == "circuit" and not self.array.is_linear:
            groups = self._nonlinear_partials(codes)
        else:
            w_oi, bias = self._effective_parts()
            groups = self.array.partials(codes, w_oi.t(), bias, bias_input=self.hardware.x_max,
                                         split=self.array.quantises_outputs)
        return self._adc(groups).reshape(*lead, self.out_features)

    def _nonlinear_partials(self, codes: Tensor) -> list[Tensor]:
        """Per-tile outputs of nonlinear tiles: Newton solve per input (no gradient through the
        circuit: straight-through to the clipped weights)."""
        w_oi, bias = self._clipped_parts()
        x_max = self.hardware.x_max
        ideal = torch.cat(self.array.partials(codes, w_oi.t(), bias, bias_input=x_max, split=True))
        with torch.no_grad():
            dep = self._deployment
            g = dep.g if dep is not None else self._noisy_conductances()
            inputs = codes if bias is None else torch.cat([codes, codes.new_full((codes.shape[0], 1), x_max)], 1)
            (circuit,) = self.array.solve_partials(inputs, self.array.crossbars(g), self._alpha())
        return [ideal + (circuit.to(codes.dtype) - ideal).detach()]

    # ------------------------------------------------------------------ state
    def get_extra_state(self):
        gen, count = self._generators()
        return {"generator": gen.get_state(), "fault_generator": count.get_state(), "generator_device": gen.device.type}

    def set_extra_state(self, state) -> None:
        """Restore the noise generators; a state saved on another device type (a CPU checkpoint on
        CUDA) cannot be continued there, and the generators keep their fresh seed instead."""
        if not isinstance(state, dict) or not isinstance(state.get("generator"), torch.Tensor):
            raise ValueError(f"extra state of a CrossbarLinear must be the dict its get_extra_state() returns "
                             f"(noise generator states), got {type(state).__name__}")
        gen, count = self._generators()
        if state.get("generator_device", "cpu") == gen.device.type:
            gen.set_state(state["generator"])
        if "fault_generator" in state:
            count.set_state(state["fault_generator"])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # a plain nn.Linear state dict (weight, bias) loads: the tracked ADC range and the
        # generators' state are optional
        first = len(missing_keys)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        optional = {prefix + "adc_peak", prefix + "_extra_state"}
        missing_keys[first:] = [k for k in missing_keys[first:] if k not in optional]

    def extra_repr(self) -> str:
        hw = self.hardware
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={hw.mode}, family={hw.family}, tiles={self.n_row_tiles}x{self.n_col_tiles} of "
                f"{hw.tile_rows}x{hw.tile_cols}, {self.array.config.topology}")
