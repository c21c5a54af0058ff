r"""``CrossbarConv2d``: a 2-D convolution on the same crossbar tiles as :class:`CrossbarLinear`.

im2col: every output pixel is one matrix-vector product of the unfolded input patch
(``in_channels·kh·kw`` values) with the kernel matrix (``(in_channels·kh·kw, out_channels)``),
so the kernel is stored once on tiled differential crossbars and the patches are streamed
through them — the standard mapping of convolutions onto crossbars (e.g. ISAAC, Shafiee et al.
2016). All hardware modes, deployment, drift and gradients are those of the inner
:class:`CrossbarLinear` (``self.linear``)::

    patches = unfold(x)                         (batch, C·kh·kw, L)
    y[b, :, l] = CrossbarLinear(patches[b, :, l])   ->  fold to (batch, out_channels, H_out, W_out)

Inputs may carry leading time dimensions: ``(T, batch, C, H, W)`` works like ``(batch, C, H, W)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .crossbar_linear import CrossbarLinear
from .hardware import HardwareConfig


def _pair(name: str, value, low: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in pair):
        raise ValueError(f"{name} must be an integer >= {low} or a pair of them, got {value!r}")
    return pair


class CrossbarConv2d(nn.Module):
    """Conv2d on crossbars (module docstring). Arguments as :class:`torch.nn.Conv2d` (no groups,
    no dilation) plus ``hardware`` and ``layer_id`` of :class:`CrossbarLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 hardware: HardwareConfig | dict | None = None, *, layer_id: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.linear = CrossbarLinear(fan_in, out_channels, bias=bias, hardware=hardware, layer_id=layer_id,
                                     dtype=dtype)

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
