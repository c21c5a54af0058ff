"""CrossbarConv2d: im2col on the CrossbarLinear tiles."""
import pytest
import torch

from training.crossbar_conv import CrossbarConv2d
from training.hardware import HardwareConfig

IDEAL = HardwareConfig(mode="ideal", dac_bits=None, adc_bits=None, tile_rows=16, tile_cols=8)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (0, 1))])
def test_ideal_conv_equals_torch_conv2d(stride, padding):
    torch.manual_seed(0)
    conv = CrossbarConv2d(3, 5, (3, 2), stride=stride, padding=padding, hardware=IDEAL)
    ref = torch.nn.Conv2d(3, 5, (3, 2), stride=stride, padding=padding)
    with torch.no_grad():
        ref.weight.copy_(conv.conv_weight())
        ref.bias.copy_(conv.linear.bias)
    x = torch.rand(2, 3, 9, 7) * 0.8  # |x| < x_max: the DAC does not saturate
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-5, atol=1e-5)
    # several row tiles (fan_in 3*3*2 + bias = 19 > 16 rows) and output tiles (5 > 4 pairs)
    assert conv.linear.n_row_tiles == 2 and conv.linear.n_col_tiles == 2


def test_time_major_input_and_gradient_flow():
    conv = CrossbarConv2d(1, 2, 3, hardware=IDEAL)
    x = torch.rand(4, 2, 1, 6, 6)
    y = conv(x)
    assert y.shape == (4, 2, 2, 4, 4)
    y.sum().backward()
    assert conv.weight.grad is not None and bool(torch.isfinite(conv.weight.grad).all())
    assert float(conv.weight.grad.abs().sum()) > 0


def test_noisy_conv_differs_from_ideal_and_bad_input_raises():
    torch.manual_seed(1)
    conv = CrossbarConv2d(1, 2, 3, hardware=IDEAL.replace(mode="noisy", family="pcm"))
    x = torch.rand(2, 1, 6, 6)
    noisy = conv(x)
    conv.linear.set_mode("ideal")
    assert float((noisy - conv(x)).detach().abs().max()) > 1e-4
    with pytest.raises(ValueError, match="input must be"):
        conv(torch.rand(2, 3, 6, 6))
    with pytest.raises(ValueError, match="kernel_size"):
        CrossbarConv2d(1, 2, 0)
    with pytest.raises(ValueError, match="does not fit"):
        conv(torch.rand(1, 1, 2, 2))
