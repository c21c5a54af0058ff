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


# ----------------------------------------------------------------------------- conv path == unfold path
def _run_path(conv, path, flat, state):
    """One forward + backward of ``path`` ("conv" or "unfold") from the same noise-generator state
    and tracked ADC range, so both paths see the same device-noise draw."""
    lin = conv.linear
    gen, count = lin._generators()
    gen.set_state(state[0])
    count.set_state(state[1])
    with torch.no_grad():
        lin.adc_peak.copy_(state[2])
    lin._clear_caches()
    for p in conv.parameters():
        p.grad = None
    x = flat.clone().requires_grad_(True)
    if path == "conv":
        y = conv._forward_conv(x)
    else:
        y = conv._forward_unfold(x, *conv._output_size(*flat.shape[-2:]))
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return y.detach(), lin.adc_peak.clone(), lin.weight.grad.clone(), lin.bias.grad.clone(), x.grad.clone()


def _assert_paths_agree(a, b, lsb=None):
    """Every output within 1e-5 of the largest (float32 rounding), except where the ADC rounds a
    value lying on a level boundary differently: at most one level, in at most 0.5 % of outputs."""
    scale = float(b.abs().max())
    off = (a - b).abs() > 1e-5 * scale
    if lsb is None:
        assert not bool(off.any()), float((a - b).abs().max() / scale)
    else:
        assert float(off.float().mean()) <= 5e-3
        assert float((a - b).abs().max()) <= lsb * 1.001


@pytest.mark.parametrize("mode", ["ideal", "noisy", "circuit"])
@pytest.mark.parametrize("adc_bits", [None, 8])
@pytest.mark.parametrize("phase", ["train", "eval", "deployed"])
def test_conv_path_equals_unfold_path(mode, adc_bits, phase):
    """The conv2d path (one masked convolution per row tile, per-tile ADC) computes what the im2col
    path computes, outputs and gradients (weights, bias, input), float32, in every mode; a layer
    of 3 row tiles (fan_in 3*3*3 + bias = 28 rows of 12; tile 1 splits channels 1 and 2), two
    column tiles, stride and padding."""
    torch.manual_seed(0)
    hw = HardwareConfig(mode=mode, family="pcm", tile_rows=12, tile_cols=8, adc_bits=adc_bits,
                        crossbar={"r_row": 2.0, "r_col": 2.0})
    conv = CrossbarConv2d(3, 5, 3, stride=(1, 2), padding=(1, 0), hardware=hw)
    assert conv.linear.n_row_tiles == 3 and conv.linear.n_col_tiles == 2
    conv.train(phase == "train")
    if phase == "deployed":
        conv.deploy(3600.0)
    flat = torch.rand(6, 3, 9, 8) * 1.2  # some inputs beyond x_max: the DAC saturates them
    lin = conv.linear
    state = (*[g.get_state() for g in lin._generators()], torch.tensor(2.0, dtype=torch.float64))
    got = _run_path(conv, "conv", flat, state)
    want = _run_path(conv, "unfold", flat, state)
    lsb = None
    if adc_bits is not None:  # the tracked range (moved by the training pass) sets the ADC step
        torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=0.0)
        lsb = float(lin.hardware.adc_headroom * want[1]) / lin.array.adc.levels
    _assert_paths_agree(got[0], want[0], lsb)
    for g_conv, g_unfold in zip(got[2:], want[2:]):
        torch.testing.assert_close(g_conv, g_unfold, rtol=1e-5, atol=1e-5 * float(g_unfold.abs().max()))


def test_conv_path_bias_only_tile_and_default_forward():
    """fan_in a multiple of tile_rows: the bias row sits alone in the last row tile (a constant
    partial sum x_max·b through the ADC); forward() takes the conv path and equals the unfold path."""
    torch.manual_seed(2)
    hw = HardwareConfig(mode="ideal", tile_rows=9, tile_cols=8, adc_bits=6, adc_range=4.0)
    conv = CrossbarConv2d(2, 3, 3, padding=1, hardware=hw)
    assert conv.linear.n_row_tiles == 3  # 18 input rows in 2 tiles + the bias row
    x = torch.rand(2, 4, 2, 7, 7)  # (T, batch, C, H, W)
    y = conv(x)
    want = conv._forward_unfold(x.reshape(-1, 2, 7, 7), 7, 7).reshape(2, 4, 3, 7, 7)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)


def test_forward_hooks_and_nonlinear_tiles_take_the_unfold_path(monkeypatch):
    """Observers of the inner linear layer (EnergyMeter counts the patch stream) and nonlinear
    circuits (solved per input) use the im2col path; plain layers the conv path."""
    calls = []
    monkeypatch.setattr(CrossbarConv2d, "_forward_conv", lambda self, flat: calls.append("conv") or
                        self._forward_unfold(flat, *self._output_size(*flat.shape[-2:])))
    conv = CrossbarConv2d(1, 2, 3, hardware=IDEAL)
    x = torch.rand(2, 1, 6, 6)
    conv(x)
    assert calls == ["conv"]
    seen = []
    handle = conv.linear.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    conv(x)
    handle.remove()
    assert calls == ["conv"] and seen == [torch.Size([2, 16, 9])]
    nonlinear = CrossbarConv2d(1, 2, 3, hardware=IDEAL.replace(mode="circuit", crossbar={"topology": "1S1R"}))
    with torch.no_grad():
        nonlinear(torch.rand(1, 1, 4, 4))
    assert calls == ["conv"]


def test_plain_conv2d_state_dict_loads_without_spurious_keys():
    """A plain nn.Conv2d state dict (weight (out, in, kh, kw), bias) loads into CrossbarConv2d, also
    nested in a model, and gives the same layer (ideal converters: equal outputs)."""
    torch.manual_seed(0)
    plain = torch.nn.Conv2d(3, 4, 3, padding=1)
    hw = {"dac_bits": 32, "adc_bits": 32}
    layer = CrossbarConv2d(3, 4, 3, padding=1, hardware=hw)
    result = layer.load_state_dict(plain.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(layer(x), plain(x), atol=1e-5, rtol=1e-4)
    nested = torch.nn.Sequential(CrossbarConv2d(3, 4, 3, padding=1, hardware=hw))
    result = nested.load_state_dict(torch.nn.Sequential(plain).state_dict())
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize("state", [5, "x", None, [1], {}])
def test_extra_state_other_than_the_generators_is_refused(state):
    from training import CrossbarLinear
    with pytest.raises(ValueError, match="extra state"):
        CrossbarLinear(4, 2).set_extra_state(state)
