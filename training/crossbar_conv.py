r"""``CrossbarConv2d``: a 2-D convolution on the same crossbar tiles as :class:`CrossbarLinear`.

im2col: every output pixel is one matrix-vector product of the unfolded input patch
(``in_channels·kh·kw`` values) with the kernel matrix (``(in_channels·kh·kw, out_channels)``),
so the kernel is stored once on tiled differential crossbars and the patches are streamed
through them — the standard mapping of convolutions onto crossbars (e.g. ISAAC, Shafiee et al.
2016). All hardware modes, deployment, drift and gradients are those of the inner
:class:`CrossbarLinear` (``self.linear``), and the layer offers the same layer API
(``deploy``, ``set_inference_time``, ``undeploy``, ``set_mode``, ``hardware``/``set_hardware``,
``clip_weights_``, ``effective_weights``)::

    patches = unfold(x)                         (batch, C·kh·kw, L)
    y[b, :, l] = CrossbarLinear(patches[b, :, l])   ->  fold to (batch, out_channels, H_out, W_out)

Inputs may carry leading time dimensions: ``(T, batch, C, H, W)`` works like ``(batch, C, H, W)``.
"""
from __future__ import annotations

import torch
from torch import nn

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 4 or x.shape[-3] != self.in_channels:
            raise ValueError(f"input must be (..., batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
        kh, kw = self.kernel_size
        h_out = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        w_out = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        if h_out < 1 or w_out < 1:
            raise ValueError(f"kernel {self.kernel_size} does not fit the padded input {h}x{w}")
        flat = x.reshape(-1, c, h, w)
        patches = nn.functional.unfold(flat, self.kernel_size, padding=self.padding, stride=self.stride)
        y = self.linear(patches.transpose(1, 2))                     # (N, L, out)
        return y.transpose(1, 2).reshape(*lead, self.out_channels, h_out, w_out)
