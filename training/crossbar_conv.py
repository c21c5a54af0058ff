r"""``CrossbarConv2d``: a 2-D convolution on the same crossbar tiles as :class:`CrossbarLinear`.

im2col mapping: every output pixel is one matrix-vector product of the unfolded input patch
(``in_channels·kh·kw`` values) with the kernel matrix (``(in_channels·kh·kw, out_channels)``),
so the kernel is stored once on tiled differential crossbars and the patches are streamed
through them — the standard mapping of convolutions onto crossbars (e.g. ISAAC, Shafiee et al.
2016). All hardware modes, deployment, drift and gradients are those of the inner
:class:`CrossbarLinear` (``self.linear``), and the layer offers the same layer API
(``deploy``, ``set_inference_time``, ``undeploy``, ``set_mode``, ``hardware``/``set_hardware``,
``clip_weights_``, ``effective_weights``). Array row ``i < C·kh·kw`` holds kernel entry
``(c, ky, kx)`` with ``i = c·kh·kw + ky·kw + kx`` (``unfold``'s order); the bias row comes last.

Two computations of the same hardware result (equal to float rounding; tested):

* **conv path** (when the effective kernel is a plain matrix: ``ideal``, ``noisy`` and linear
  ``circuit`` tiles). The DAC acts elementwise, so it quantises the image instead of its
  ``kh·kw`` times larger patch matrix; row tile ``r``'s partial sums are one
  ``torch.nn.functional.conv2d`` of the input channels that tile touches with the effective
  kernel masked to the tile's rows (the bias row adds the per-output constant ``x_max·w_bias``
  in the tile that holds it); the ADC then converts every tile's partial sums and they are
  added digitally, exactly as :class:`CrossbarLinear` does. Without an ADC between the tiles
  (or with one row tile) it is a single ``conv2d`` with the whole kernel and bias::

      x --DAC--> x_q;  partial_r = conv2d(x_q[:, C_r], W_eff ⊙ mask_r) (+ x_max·b if r holds the bias row)
        --ADC--> y = Σ_r partial_r                                  -> (batch, out_channels, H_out, W_out)

* **unfold path** (nonlinear circuits: 1S1R, EKV 1T1R act per input; also while forward hooks
  watch the inner linear layer, e.g. :class:`training.energy.EnergyMeter`, which counts the
  patch stream)::

      patches = unfold(x)                         (batch, C·kh·kw, L)
      y[b, :, l] = CrossbarLinear(patches[b, :, l])   ->  fold to (batch, out_channels, H_out, W_out)

Inputs may carry leading time dimensions: ``(T, batch, C, H, W)`` works like ``(batch, C, H, W)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from devices.validation import check_int

from .crossbar_linear import CrossbarLinear
from .hardware import HardwareConfig


def _pair(name: str, value, low: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer >= {low} or a pair of them, got {value!r}")
        return tuple(check_int(name, v, low=low) for v in value)
    v = check_int(name, value, low=low)
    return v, v


class CrossbarConv2d(nn.Module):
    """Conv2d on crossbars (module docstring). Arguments as :class:`torch.nn.Conv2d` (no groups,
    no dilation) plus ``hardware`` and ``layer_id`` of :class:`CrossbarLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 hardware: HardwareConfig | dict | None = None, *, layer_id: int = 0,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_channels = check_int("out_channels", out_channels, low=1)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.linear = CrossbarLinear(fan_in, out_channels, bias=bias, hardware=hardware, layer_id=layer_id,
                                     dtype=dtype, device=device)
        self._masks: dict = {}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # a plain nn.Conv2d state dict loads: ``weight (out, in, kh, kw)`` and ``bias`` go to the
        # inner crossbar layer as ``(out, in·kh·kw)`` (the im2col order of the module docstring)
        for key in ("weight", "bias"):
            plain, inner = prefix + key, prefix + "linear." + key
            if plain in state_dict and inner not in state_dict:
                value = state_dict.pop(plain)
                state_dict[inner] = value.reshape(value.shape[0], -1) if key == "weight" else value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # ------------------------------------------------------------------ the layer API of CrossbarLinear
    @property
    def hardware(self) -> HardwareConfig:
        return self.linear.hardware

    def set_hardware(self, hardware: HardwareConfig | dict) -> None:
        self.linear.set_hardware(hardware)

    def set_mode(self, mode: str) -> None:
        self.linear.set_mode(mode)

    @property
    def deployed(self) -> bool:
        return self.linear.deployed

    def deploy(self, t_inference: float = 0.0, *, repeat: int = 0):
        """Program the kernel into devices (:meth:`CrossbarLinear.deploy`)."""
        return self.linear.deploy(t_inference, repeat=repeat)

    def set_inference_time(self, t: float) -> None:
        self.linear.set_inference_time(t)

    def undeploy(self) -> None:
        self.linear.undeploy()

    def clip_weights_(self) -> None:
        self.linear.clip_weights_()

    def effective_weights(self) -> torch.Tensor:
        """The kernel matrix the hardware realises, ``(C·kh·kw + 1, out_channels)`` (bias row last)."""
        return self.linear.effective_weights()

    @property
    def weight(self) -> nn.Parameter:
        """Master weights as ``(out_channels, fan_in)``; :meth:`conv_weight` gives the 4-D view."""
        return self.linear.weight

    def conv_weight(self) -> torch.Tensor:
        return self.linear.weight.view(self.out_channels, self.in_channels, *self.kernel_size)

    # ------------------------------------------------------------------ forward
    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        kh, kw = self.kernel_size
        h_out = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        w_out = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        if h_out < 1 or w_out < 1:
            raise ValueError(f"kernel {self.kernel_size} does not fit the padded input {h}x{w}")
        return h_out, w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 4 or x.shape[-3] != self.in_channels:
            raise ValueError(f"input must be (..., batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.device != self.weight.device:
            raise ValueError(f"input is on {x.device} but the layer is on {self.weight.device}: move one of them")
        lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
        h_out, w_out = self._output_size(h, w)
        flat = x.reshape(-1, c, h, w)
        lin = self.linear
        hooked = bool(lin._forward_hooks or lin._forward_pre_hooks)
        if hooked or (lin.hardware.mode == "circuit" and not lin.array.is_linear):
            y = self._forward_unfold(flat, h_out, w_out)
        else:
            y = self._forward_conv(flat)
        return y.reshape(*lead, self.out_channels, h_out, w_out)

    def _forward_unfold(self, flat: torch.Tensor, h_out: int, w_out: int) -> torch.Tensor:
        """The im2col path: every patch through :class:`CrossbarLinear` (module docstring)."""
        patches = F.unfold(flat, self.kernel_size, padding=self.padding, stride=self.stride)
        y = self.linear(patches.transpose(1, 2))                     # (N, L, out)
        return y.transpose(1, 2).reshape(len(flat), self.out_channels, h_out, w_out)

    def _tile_kernels(self, dtype, device) -> list[tuple[int, int, torch.Tensor | None, bool]]:
        """Per row tile: ``(c_lo, c_hi, mask, holds_bias)``: the input channels the tile's rows
        touch, the 0/1 mask ``(1, c_hi - c_lo, kh, kw)`` of its rows among them (None when it
        holds whole channels) and whether the bias row is in it. Cached per dtype/device."""
        lay, (kh, kw) = self.linear.array.layout, self.kernel_size
        key = (dtype, device, lay)
        if key not in self._masks:
            per_channel, fan_in = kh * kw, self.linear.in_features
            tiles = []
            for r in range(lay.n_row_tiles):
                first, stop = r * lay.tile_rows, min((r + 1) * lay.tile_rows, fan_in)
                holds_bias = self.linear.bias is not None and first <= fan_in < (r + 1) * lay.tile_rows
                if first >= stop:  # a tile holding only the bias row
                    tiles.append((0, 0, None, holds_bias))
                    continue
                c_lo, c_hi = first // per_channel, -(-stop // per_channel)
                rows = torch.arange(c_lo * per_channel, c_hi * per_channel, device=device)
                inside = (rows >= first) & (rows < stop)
                mask = None if bool(inside.all()) else inside.to(dtype).view(1, c_hi - c_lo, kh, kw)
                tiles.append((c_lo, c_hi, mask, holds_bias))
            self._masks[key] = tiles
        return self._masks[key]

    def _forward_conv(self, flat: torch.Tensor) -> torch.Tensor:
        """The conv path (module docstring): ``(N, out_channels, H_out, W_out)``."""
        lin = self.linear
        array, x_max = lin.array, lin.hardware.x_max
        codes = array.input_codes(flat.to(lin.weight.dtype))
        w_oi, bias = lin._effective_parts()
        kernel = w_oi.reshape(self.out_channels, self.in_channels, *self.kernel_size)
        conv = lambda inputs, k, b=None: F.conv2d(inputs, k, b, stride=self.stride, padding=self.padding)  # noqa: E731
        if not array.quantises_outputs or lin.n_row_tiles == 1:
            y = conv(codes, kernel, None if bias is None else bias * x_max)
            if not array.quantises_outputs:
                return y
            partials = [y]
        else:
            partials = []
            for c_lo, c_hi, mask, holds_bias in self._tile_kernels(kernel.dtype, kernel.device):
                if c_hi == c_lo:
                    continue
                k = kernel[:, c_lo:c_hi]
                partials.append(conv(codes[:, c_lo:c_hi], k if mask is None else k * mask,
                                     bias * x_max if holds_bias else None))
            if self._bias_only_tile() and bias is not None:
                shape = partials[0].shape
                partials.append((bias * x_max)[None, :, None, None].expand(shape))
        # the layer's ADC per tile (CrossbarLinear._adc), groups as (1, N·out, L): elementwise
        n, out, h_out, w_out = partials[0].shape
        groups = [p.reshape(1, n * out, h_out * w_out) for p in partials]
        return lin._adc(groups).t().reshape(n, out, h_out, w_out)

    def _bias_only_tile(self) -> bool:
        lin = self.linear
        return lin.bias is not None and lin.in_features % lin.array.layout.tile_rows == 0
