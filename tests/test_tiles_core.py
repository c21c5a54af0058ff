"""The tiled-array core (xbar.tiles, xbar.drift_compensation, xbar.programming) shared by
TiledCrossbar and CrossbarLinear: layout algebra, partial sums, converters in digital units,
drift compensation, hashed tile seeds, and the issue-15 regressions."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.seeding import derive_seed
from xbar import ADC, DAC, CrossbarConfig, DifferentialMapping
from xbar.drift_compensation import GlobalDriftCompensation, make_drift_compensation
from xbar.peripherals import clip, quantize, running_peak_
from xbar.programming import DeviceSpec, TileDevices, tile_seed
from xbar.tiles import TiledArray, TileLayout
from xbar.tiling import TiledCrossbar

F64 = torch.float64
MAP = DifferentialMapping(g_min=1e-6, g_max=40e-6, w_max=1.0)
IDEAL = CrossbarConfig(r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)

pytestmark = pytest.mark.usefixtures("one_thread")


# ====================================================================== layout and partial sums
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 40), outs=st.integers(1, 20), tr=st.integers(1, 12), half=st.integers(1, 6))
def test_layout_stack_unstack_mask_and_per_weight(rows, outs, tr, half):
    lay = TileLayout(rows, outs, tr, 2 * half)
    g = torch.arange(lay.padded_rows * 2 * lay.padded_outs, dtype=F64).reshape(lay.padded_rows, -1)
    tiles = lay.stack(g)
    assert tiles.shape == (lay.n_row_tiles, lay.n_col_tiles, tr, 2 * half)
    for r, c in lay.tile_indices():
        assert torch.equal(tiles[r, c], g[lay.tile_slices(r, c)])
    assert torch.equal(lay.unstack(tiles), g)
    mask = lay.unstack(lay.weight_mask())
    assert int(mask.sum()) == rows * 2 * outs and bool(mask[:rows, :2 * outs].all())
    for r, c in lay.tile_indices():  # the used block of each tile is its top-left corner
        n_r, n_c = lay.used(r, c)
        assert int(lay.weight_mask()[r, c].sum()) == max(n_r, 0) * max(n_c, 0)
    values = torch.arange(lay.n_tiles, dtype=F64).reshape(lay.n_row_tiles, lay.n_col_tiles)
    per = lay.per_weight(values)
    assert per.shape == (rows, outs)
    assert float(per[rows - 1, outs - 1]) == float(values[(rows - 1) // tr, (outs - 1) // half])


@pytest.mark.parametrize("n_in,tile_rows,bias", [(20, 8, True), (24, 8, True), (23, 8, True), (20, 8, False),
                                                 (16, 8, False), (5, 8, True)])
def test_partials_sum_to_the_matmul_and_keep_its_gradient(n_in, tile_rows, bias):
    """Row-tile partials (batched full tiles, the partly used last tile, a bias-only tile) add up to
    x @ W + x_max b, per tile equal to the tile's block product, with nn.Linear's gradients."""
    gen = torch.Generator().manual_seed(0)
    rows = n_in + (1 if bias else 0)
    arr = TiledArray(TileLayout(rows, 7, tile_rows, 6), MAP, IDEAL)
    w = torch.randn(7, n_in, generator=gen, dtype=F64, requires_grad=True)  # (out, in) like nn.Linear
    b = torch.randn(7, generator=gen, dtype=F64, requires_grad=True) if bias else None
    x = torch.randn(5, n_in, generator=gen, dtype=F64, requires_grad=True)
    groups = arr.partials(x, w.t(), b, bias_input=2.0)
    assert sum(g.shape[0] for g in groups) == arr.layout.n_row_tiles
    y = arr.total(groups)
    ref = x @ w.t() + (2.0 * b if bias else 0.0)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    full = torch.cat(groups)  # (tiles, outs, batch): tile r holds rows r*tr ... of [x, 2]
    xa = torch.cat([x, torch.full((5, 1), 2.0, dtype=F64)], 1) if bias else x
    wa = torch.cat([w.t(), b[None]]) if bias else w.t()
    for r in range(arr.layout.n_row_tiles):
        block = xa[:, r * tile_rows:(r + 1) * tile_rows] @ wa[r * tile_rows:(r + 1) * tile_rows]
        torch.testing.assert_close(full[r].t(), block, rtol=1e-12, atol=1e-12)
    c = torch.randn(5, 7, generator=gen, dtype=F64)
    grads = torch.autograd.grad((y * c).sum(), [w, x] + ([b] if bias else []))
    refs = torch.autograd.grad((ref * c).sum(), [w, x] + ([b] if bias else []))
    for a, e in zip(grads, refs):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    # without an ADC between the tiles: one group, the same sum
    torch.testing.assert_close(arr.total(arr.partials(x, w.t(), b, bias_input=2.0, split=False)), ref)


# ====================================================================== converters in digital units
def test_dac_digital_is_the_dac_voltage_per_unit_and_adc_convert_matches_volts():
    dac = DAC(bits=5, v_max=0.3, x_max=2.0)
    x = torch.linspace(-3, 3, 601, dtype=F64)
    torch.testing.assert_close(dac.digital(x), dac(x) / dac.v_unit, rtol=1e-12, atol=1e-15)
    adc = ADC(bits=6, v_range=0.8)
    y = torch.linspace(-2, 2, 401, dtype=F64)
    k = 0.8 / 1.7  # volts per unit for a full scale of 1.7 units
    torch.testing.assert_close(adc.convert(y, 1.7), adc(y * k) / k, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(adc.convert(y, torch.tensor(1.7, dtype=F64)), adc(y * k) / k, rtol=1e-9, atol=1e-12)
    assert torch.equal(adc.convert(torch.zeros(3, dtype=F64), torch.zeros((), dtype=F64)), torch.zeros(3, dtype=F64))
    # straight-through gradient inside the (tensor) range, zero outside
    z = torch.tensor([-2.0, -1.7, 0.3, 1.7, 2.0], dtype=F64, requires_grad=True)
    adc.convert(z, torch.tensor(1.7, dtype=F64)).sum().backward()
    assert torch.equal(z.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0], dtype=F64))
    peak = torch.zeros((), dtype=F64)
    running_peak_(peak, torch.tensor(2.0))
    running_peak_(peak, torch.tensor(4.0))
    assert float(peak) == pytest.approx(0.9 * 2.0 + 0.1 * 4.0)


def test_clip_and_quantize_gradients_are_inclusive_at_the_bounds():
    """Weights pinned at +-w_max by clip_weights_ must keep a gradient, or they could never move
    back (clamp's convention: 1 on the closed interval). Regression for the float-mask gradients."""
    w = torch.tensor([-0.7, -0.5, 0.0, 0.5, 0.7], dtype=torch.float32, requires_grad=True)
    clip(w, 0.5).sum().backward()
    assert torch.equal(w.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    x = torch.tensor([-1.5, -1.0, 0.2, 1.0, 1.5], requires_grad=True)
    quantize(x, 0.25, -1.0, 1.0).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    u = torch.tensor([-0.1, 0.0, 0.5, 1.0, 1.1], requires_grad=True)
    quantize(u, 0.25, 0.0, 1.0).sum().backward()  # unsigned range
    assert torch.equal(u.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


# ====================================================================== drift compensation
def test_global_drift_compensation_uses_the_masked_cells_of_each_tile():
    ref = torch.full((2, 3, 4, 4), 2.0, dtype=F64)
    mask = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    mask[..., :2, :] = True  # the weight cells: two rows of each tile
    comp = GlobalDriftCompensation().calibrate(ref, mask)
    g_t = ref.clone()
    g_t[0, 1, :2] = 1.0      # weight cells of tile (0, 1) drifted to half
    g_t[1, 2, 2:] = 0.1      # padding of tile (1, 2) drifted: must not matter
    alpha = comp.factor(g_t)
    expected = torch.ones(2, 3, dtype=F64)
    expected[0, 1] = 2.0
    torch.testing.assert_close(alpha, expected)
    torch.testing.assert_close(comp.apply(g_t)[0, 1, :2], torch.full((2, 4), 2.0, dtype=F64))
    # a tile reading 0 S keeps factor 1; uncalibrated use raises
    assert float(comp.factor(torch.zeros_like(ref))[0, 0]) == 1.0
    with pytest.raises(ValueError, match="calibrate"):
        GlobalDriftCompensation().factor(ref)
    assert make_drift_compensation(None) is None and make_drift_compensation(False) is None
    assert isinstance(make_drift_compensation("global"), GlobalDriftCompensation)
    with pytest.raises(ValueError, match="drift_compensation"):
        make_drift_compensation("local")


def test_tiled_crossbar_drift_compensation_restores_pcm_outputs_after_a_year():
    gen = torch.Generator().manual_seed(3)
    w = 0.8 * torch.rand(24, 6, generator=gen, dtype=F64)
    x = torch.rand(16, 24, generator=gen, dtype=F64)
    spec = {"family": "pcm", "seed": 1}
    pcm = DifferentialMapping(*DeviceSpec.from_dict(spec).window())  # the preset's whole window
    year = 365 * 86400.0
    plain = TiledCrossbar(w, (16, 8), pcm, IDEAL, cells=spec)
    comp = TiledCrossbar(w, (16, 8), pcm, IDEAL, cells=spec, drift_compensation="global")
    ref = float((x @ w).abs().mean())
    for tc in (plain, comp):
        tc.read_devices(year)
    drifted, compensated = float(plain(x).abs().mean()) / ref, float(comp(x).abs().mean()) / ref
    assert drifted < 0.8  # PCM drift G ~ t^-nu shrinks the outputs
    assert compensated == pytest.approx(1.0, abs=0.06)
    assert comp.to_config()["drift_compensation"] == "global"
    assert TiledCrossbar.from_config(w, comp.to_config()).drift_compensation is not None
    with pytest.raises(ValueError, match="device spec"):
        TiledCrossbar(w, (16, 8), pcm, drift_compensation="global")


# ====================================================================== device specs, tile seeds (issue 15)
def test_device_spec_fields_are_validated_strictly():
    """Regression: TiledCrossbar(cells={"verify": "no"}) ran write-verify (bool("no") is True)."""
    w = torch.rand(6, 3, dtype=F64)
    for bad, name in (({"verify": "no"}, "verify"), ({"verify": 1}, "verify"), ({"seed": 1.5}, "seed"),
                      ({"seed": -1}, "seed"), ({"max_pulses": 2.0}, "max_pulses"), ({"t_read": -1.0}, "t_read"),
                      ({"tolerance": 0.0}, "tolerance"), ({"family": "sram"}, "family"),
                      ({"preset": "nope"}, "preset"), ({"params": {"bogus": 1.0}}, "bogus"), ({"params": 3}, "params")):
        with pytest.raises(ValueError, match=name):
            TiledCrossbar(w, (4, 4), MAP, cells={"family": "rram", **bad})
    spec = DeviceSpec.from_dict({"family": "rram", "seed": 2, "verify": True})
    assert DeviceSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="outside the programmable window"):
        TiledCrossbar(w, (4, 4), DifferentialMapping(g_min=1e-6, g_max=1e-3), cells={"family": "rram"})


def test_tile_seeds_are_hashed_paths_so_repeats_and_tiles_never_collide():
    """Regression (issue 15): with seed + tile index (+ repeat) repeat 1 / tile 0 equalled repeat 0 /
    tile 1, and seed 1 / tile 0 equalled seed 0 / tile 1: identical device draws."""
    seeds = {tile_seed(s, layer, r, c, rep) for s in range(2) for layer in range(2) for r in range(2)
             for c in range(2) for rep in range(2)}
    assert len(seeds) == 32
    assert tile_seed(0, 0, 0, 1, 0) == derive_seed(0, "layer", 0, "tile", 0, 1, "repeat", 0)
    # identical targets on every tile: the programmed conductances must differ between tiles and seeds
    w = torch.full((4, 8), 0.5, dtype=F64)  # 2 column tiles of 4 pairs
    g = {s: TiledCrossbar(w, (4, 8), MAP, IDEAL, cells={"family": "rram", "seed": s}).conductances().detach()
         for s in (0, 1)}
    assert not torch.equal(g[0][:, 8:], g[1][:, :8])  # seed 0 / tile 1 vs seed 1 / tile 0
    lay = TileLayout(4, 8, 4, 8)
    spec = DeviceSpec(family="rram", seed=0)
    target = torch.full((4, 16), 20e-6, dtype=F64)
    programmed = {rep: [r.conductance for r in TileDevices(spec, lay, repeat=rep).program(target)] for rep in (0, 1)}
    assert not torch.equal(programmed[1][0], programmed[0][1])  # repeat 1 / tile 0 vs repeat 0 / tile 1
    again = [r.conductance for r in TileDevices(spec, lay, repeat=1).program(target)]
    assert all(torch.equal(a, b) for a, b in zip(again, programmed[1]))  # the same path: the same devices
    with pytest.raises(ValueError, match="repeat"):
        TileDevices(spec, lay, repeat=-1)


def test_crossbar_linear_deploy_repeats_are_independent_draws():
    from training import CrossbarLinear, HardwareConfig

    hw = HardwareConfig(mode="noisy", family="rram", tile_rows=8, tile_cols=8, dac_bits=None, adc_bits=None)
    layer = CrossbarLinear(7, 8, hardware=hw)  # 8 rows (with bias) x 8 outputs: two column tiles
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.fill_(0.5)
    g = {}
    for rep in (0, 1):
        res = layer.deploy(0.0, repeat=rep)
        g[rep] = [r.conductance for r in res]
    assert not torch.equal(g[1][0], g[0][1]) and not torch.equal(g[0][0], g[1][0])
    res = layer.deploy(0.0, repeat=1)
    assert all(torch.equal(a.conductance, b) for a, b in zip(res, g[1]))  # same repeat, same devices
    from training.evaluate import deployment_hardware
    with pytest.raises(ValueError, match="deploy"):
        deployment_hardware(hw, None, 2)
    assert deployment_hardware(hw).seed == hw.seed


def test_deployment_on_another_family_keeps_the_retention_policy():
    """A PCM-trained network deployed on RRAM and read at 1 year: the study-wide choice beyond
    RRAM's 2-day retention data travels with the weights; the other preset options do not."""
    from training.evaluate import deployment_hardware
    from training.hardware import HardwareConfig
    hw = HardwareConfig(family="pcm", device_params={"retention_beyond_data": "extend", "d2d_sigma": 0.1})
    moved = deployment_hardware(hw, "rram")
    assert moved.family == "rram" and moved.device_params == {"retention_beyond_data": "extend"}
    rram = moved.probe_device((4, 4))
    rram.program(torch.full((4, 4), 20e-6, dtype=torch.float64))
    assert bool(torch.isfinite(rram.read(31536000.0)).all())
    refused = deployment_hardware(HardwareConfig(family="pcm"), "rram").probe_device((4, 4))
    refused.program(torch.full((4, 4), 20e-6, dtype=torch.float64))
    with pytest.raises(ValueError, match="retention"):
        refused.read(31536000.0)


def test_hardware_window_must_fit_the_device():
    """Regression (issue 15): hardware.g_max = 1e9 trained to chance silently (targets clipped)."""
    from training import HardwareConfig

    for changes, name in (({"g_max": 1e9}, "g_max"), ({"g_min": 1e-9}, "g_min"),
                          ({"family": "rram", "g_max": 1e-3}, "g_max")):
        with pytest.raises(ValueError, match=f"{name} = .*outside the programmable window"):
            HardwareConfig(**changes)
    # the device itself can be changed explicitly, and a window inside the device's is fine
    wide = HardwareConfig(g_min=1e-6, g_max=1e-4, device_params={"g_min": 1e-6, "g_max": 1e-4})
    assert wide.window() == (1e-6, 1e-4)
    assert HardwareConfig(g_min=5e-6, g_max=2e-5).window() == (5e-6, 2e-5)
    with pytest.raises(ValueError, match="program_verify"):
        HardwareConfig(program_verify="no")
    with pytest.raises(ValueError, match="drift_compensation"):
        HardwareConfig(drift_compensation=1)
    assert math.isfinite(wide.mapping().scale)


@pytest.mark.parametrize("converters", [False, True])
def test_crossbar_linear_and_tiled_crossbar_are_one_pipeline(converters):
    """The training layer in circuit mode and the circuit-level TiledCrossbar run the same core:
    same tiles, IR drop, DAC and ADC give the same outputs."""
    from training import CrossbarLinear, HardwareConfig

    wires = {"r_row": 3.0, "r_col": 3.0, "r_source": 2.0, "r_sense": 2.0}
    hw = HardwareConfig(mode="circuit", tile_rows=8, tile_cols=6, crossbar=wires, train_noise=0.0,
                        dac_bits=6 if converters else None, adc_bits=7 if converters else None, adc_range=2.5,
                        family="rram", preset="wan2022_neurram")
    torch.manual_seed(4)
    layer = CrossbarLinear(19, 5, bias=False, hardware=hw, dtype=F64)
    layer.eval()
    x = torch.rand(9, 19, generator=torch.Generator().manual_seed(5), dtype=F64)
    dac = hw.dac() if converters else None
    adc = hw.adc(hw.adc_range) if converters else None
    tc = TiledCrossbar(layer.weight.detach().t(), (8, 6), hw.mapping(), hw.crossbar_config(), dac=dac, adc=adc,
                       tia=hw.tia(), v_scale=hw.v_read / hw.x_max)
    y_layer, y_tiled = layer(x).detach(), tc(x)
    diff = (y_layer - y_tiled).abs()
    if converters:  # quantisation ties may round apart by one ADC step (float rounding of two equal formulas)
        assert float((diff > 1e-9).double().mean()) < 0.05 and float(diff.max()) <= hw.adc_range / 63 + 1e-9
    else:
        torch.testing.assert_close(y_layer, y_tiled, rtol=1e-10, atol=1e-13)


def test_nonlinear_tiles_are_solved_per_input_in_both_shells():
    from training import CrossbarLinear, HardwareConfig

    sel = {"topology": "1S1R", "selector_i_s": 1e-5, "selector_v_0": 0.05, "r_row": 2.0, "r_col": 2.0}
    hw = HardwareConfig(mode="circuit", tile_rows=8, tile_cols=8, crossbar=sel, train_noise=0.0, dac_bits=None,
                        adc_bits=None, family="rram", preset="wan2022_neurram")
    torch.manual_seed(6)
    layer = CrossbarLinear(11, 5, bias=False, hardware=hw, dtype=F64)
    x = torch.rand(3, 11, generator=torch.Generator().manual_seed(7), dtype=F64)
    tc = TiledCrossbar(layer.weight.detach().t(), (8, 8), hw.mapping(), hw.crossbar_config(), tia=hw.tia(),
                       v_scale=hw.v_read / hw.x_max)
    assert not tc.uses_transfer
    y = layer(x)
    torch.testing.assert_close(y.detach(), tc(x), rtol=1e-10, atol=1e-13)
    y.sum().backward()  # straight through to the clipped weights
    torch.testing.assert_close(layer.weight.grad, x.sum(0).expand(5, 11))
