"""Deployment of CrossbarLinear: global drift compensation over the weight cells of partly used tiles."""
import pytest
import torch

from training.crossbar_linear import CrossbarLinear
from training.hardware import HardwareConfig


def _gain(layer, t):
    w_t = layer.array_weights().detach().double()
    layer.set_inference_time(t)
    w = layer.effective_weights().detach().double()
    return float((w * w_t).sum() / (w_t * w_t).sum())  # least-squares gain of deployed vs target weights


@pytest.mark.parametrize("tiles", [(128, 128), (5, 240)])
def test_drift_compensation_restores_the_weight_scale_even_in_padded_tiles(tiles):
    """PCM drifts fastest at g_min, where the padding of a partly used tile sits: alpha must be
    formed from the weight cells only, or it over-corrects (regression: 1.32x at 1 year)."""
    torch.manual_seed(0)
    hw = HardwareConfig(mode="noisy", family="pcm", tile_rows=tiles[0], tile_cols=tiles[1], seed=0)
    layer = CrossbarLinear(4, 120, hardware=hw)
    layer.deploy(0.0)
    year = 365 * 86400.0
    assert _gain(layer, year) == pytest.approx(1.0, abs=0.05)  # ~1.02-1.04: G- cells at g_min drift faster
    # without compensation drift shrinks the weights visibly
    layer.set_hardware(hw.replace(drift_compensation=False))
    assert layer.deployed
    assert _gain(layer, year) < 0.9


def test_noisy_training_draws_are_seeded_and_only_touch_weight_cells():
    hw = HardwareConfig(mode="noisy", family="pcm", tile_rows=128, tile_cols=128, seed=3)
    torch.manual_seed(0)
    a = CrossbarLinear(4, 6, hardware=hw)
    torch.manual_seed(0)
    b = CrossbarLinear(4, 6, hardware=hw)
    wa, wb = a.effective_weights(), b.effective_weights()
    assert torch.equal(wa, wb) and wa.shape == (5, 6)
    assert not torch.equal(a.effective_weights(), wa)  # a fresh draw per forward pass


def test_exact_backward_needs_linear_tiles():
    with pytest.raises(ValueError, match="backward='exact' needs linear tiles"):
        HardwareConfig(mode="circuit", backward="exact", crossbar={"topology": "1S1R"})
    HardwareConfig(mode="circuit", backward="exact", crossbar={"topology": "1T1R"})  # linear switch: fine


@pytest.mark.parametrize("options", [
    {},  # defaults: drive at the first column, sense at the last row, 1 Ohm everywhere
    {"r_row": 5.0, "r_col": 0.5, "r_source": 20.0, "r_sense": 0.0},
    {"row_drive": "both", "col_sense": "both", "r_row": 2.0},
    {"topology": "1T1R", "r_access_on": 2e3},
])
@pytest.mark.parametrize("used", [(5, 64), (64, 6), (3, 4), (64, 64)])
def test_used_block_of_the_transfer_matrix_equals_the_full_matrix(options, used):
    """Row-port solves and column-port solves (reciprocity) give the same block as the full
    transfer matrix."""
    from xbar import Crossbar, CrossbarConfig

    from xbar.tiles import used_transfer

    gen = torch.Generator().manual_seed(1)
    g = torch.rand(64, 64, generator=gen, dtype=torch.float64) * 24e-6 + 1e-7
    cfg = CrossbarConfig(**options)
    full = Crossbar(g, config=cfg).transfer_matrix()
    block = used_transfer(g, cfg, *used)
    assert block.shape == used
    assert float((block - full[:used[0], :used[1]]).abs().max() / full.abs().max()) < 1e-10
