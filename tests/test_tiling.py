"""Tiled MVM over fixed-size crossbars: quantisation bounds, partial sums, gradients, caching, errors."""
import pytest
import torch

from xbar import ADC, DAC, TIA, Crossbar, CrossbarConfig, DifferentialMapping
from xbar.tiling import TiledCrossbar

IDEAL = CrossbarConfig(r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)
WIRES = CrossbarConfig(r_row=2.0, r_col=2.0, r_source=20.0, r_sense=20.0)
MAP = DifferentialMapping(g_min=1e-6, g_max=40e-6, w_max=1.0)


def _data(n_in, n_out, batch, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    w = (2 * torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) - 1).to(dtype)
    x = (2 * torch.rand(batch, n_in, generator=gen, dtype=torch.float64) - 1).to(dtype)
    return w, x


def test_zero_parasitics_equals_matmul_up_to_quantisation():
    w, x = _data(37, 11, 64, seed=1)
    tile = (16, 8)
    dac, tia = DAC(bits=6, v_max=0.2), TIA(r_tia=1e4)
    v_full = tia.r_tia * tile[0] * dac.v_max * (MAP.g_max - MAP.g_min)  # largest partial output (V)
    adc = ADC(bits=8, v_range=0.5 * v_full)
    tc = TiledCrossbar(w, tile, MAP, IDEAL, dac=dac, adc=adc, tia=tia)
    y, ref = tc.mvm(x), x @ w
    assert tc.n_row_tiles == 3 and tc.n_col_tiles == 3
    v_unit = dac.v_max / dac.x_max
    dac_err = w.abs().sum(0) * dac.step / (2 * v_unit)  # per output, in weight units
    adc_err = tc.n_row_tiles * adc.step / 2 / (tia.r_tia * v_unit * MAP.scale)
    err = (y - ref).abs()
    assert tc.last_adc_saturation == 0.0
    assert bool((err <= dac_err + adc_err + 1e-12).all())
    assert float(err.max()) > 0.05 * float((dac_err + adc_err).max())  # the quantisers did act
    # without converters the tiled MVM is exact
    exact = TiledCrossbar(w, tile, MAP, IDEAL).mvm(x)
    assert torch.allclose(exact, ref, rtol=0, atol=1e-12)
    assert torch.allclose(tc.ideal_mvm(x), ref, rtol=0, atol=0)


def test_single_tile_equals_untiled_crossbar_chain():
    w, x = _data(12, 5, 7, seed=2)
    dac, adc, tia = DAC(bits=8, v_max=0.25), ADC(bits=10, v_range=1.0), TIA(r_tia=2e4)
    tc = TiledCrossbar(w, (12, 10), MAP, WIRES, dac=dac, adc=adc, tia=tia)
    g_pos, g_neg = MAP.to_conductances(w)
    g = torch.stack((g_pos, g_neg), -1).reshape(12, 10)
    i = Crossbar(g, config=WIRES).solve(dac(x))
    ref = adc(tia(i[:, 0::2] - i[:, 1::2])) / (tia.r_tia * dac.v_max * MAP.scale)
    assert torch.allclose(tc.mvm(x), ref, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(tc.mvm(x), x @ w, atol=1e-4)  # the wires matter at this size


def test_partial_sums_equal_one_large_array_without_wire_resistance():
    w, x = _data(21, 9, 5, seed=3)
    tiled = TiledCrossbar(w, (8, 6), MAP, IDEAL).mvm(x)
    single = TiledCrossbar(w, (21, 18), MAP, IDEAL).mvm(x)
    assert torch.allclose(tiled, single, rtol=0, atol=1e-13)
    assert torch.allclose(tiled, x @ w, rtol=0, atol=1e-13)


def test_ir_drop_error_grows_with_tile_size_and_solve_equals_transfer():
    w, x = _data(64, 16, 8, seed=4)
    errs = []
    for tile in ((8, 8), (32, 16), (64, 32)):
        tc = TiledCrossbar(w, tile, MAP, WIRES)
        y = tc.mvm(x)
        errs.append(float((y - x @ w).norm() / (x @ w).norm()))
    assert errs[0] < errs[1] < errs[2]
    a = TiledCrossbar(w, (32, 16), MAP, WIRES, mode="transfer").mvm(x)
    b = TiledCrossbar(w, (32, 16), MAP, WIRES, mode="solve").mvm(x)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("mode", ["transfer", "solve"])
def test_gradient_wrt_weights_matches_finite_differences(mode):
    w, x = _data(5, 3, 4, seed=5)
    w = (w.sign() * (0.2 + 0.7 * w.abs())).requires_grad_(True)  # away from the |w| = 0 kink
    cfg = CrossbarConfig(r_row=500.0, r_col=500.0, r_source=2e3, r_sense=2e3)
    tc = TiledCrossbar(w, (2, 4), MAP, cfg, mode=mode)

    def f(weights):
        tc.weights = weights
        return tc.mvm(x)

    assert torch.autograd.gradcheck(f, (w,), eps=1e-6, atol=1e-6, rtol=1e-5)
    # the circuit gradient differs from the ideal crossbar's (x^T)
    tc.weights = w
    (g_exact,) = torch.autograd.grad(tc.mvm(x).sum(), w)
    g_ideal = x.sum(0).unsqueeze(1).expand_as(w)
    assert not torch.allclose(g_exact, g_ideal, rtol=1e-3)
    # gradient w.r.t. the inputs too
    xr = x.clone().requires_grad_(True)
    tc.weights = w.detach()
    assert torch.autograd.gradcheck(lambda inp: tc.mvm(inp), (xr,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_float32_training_boundary_and_caching():
    w32, x32 = _data(10, 4, 6, seed=6, dtype=torch.float32)
    param = torch.nn.Parameter(w32.clone())
    tc = TiledCrossbar(param, (4, 4), MAP, WIRES)
    y = tc.mvm(x32)
    assert y.dtype == torch.float32
    y.square().sum().backward()
    assert param.grad is not None and param.grad.dtype == torch.float32 and bool(torch.isfinite(param.grad).all())
    with torch.no_grad():
        first = tc.tiles()
        assert tc.tiles() is first  # cached while the weights are unchanged
        a = first[0][0].transfer_matrix()
        assert first[0][0].transfer_matrix() is a  # each tile caches its transfer matrix
        y0 = tc.mvm(x32)
        param.mul_(0.5)  # an optimiser step: the tiles follow the new weights
        y1 = tc.mvm(x32)
        assert tc.tiles() is not first
    fresh = TiledCrossbar(param.detach().clone(), (4, 4), MAP, WIRES).mvm(x32)
    assert torch.equal(y1, fresh) and not torch.equal(y1, y0)
    assert torch.allclose(y1, 0.5 * y0, rtol=0, atol=5e-3)  # linear in W up to the IR drop


def test_programmed_devices_are_seeded_and_serialisable():
    w, x = _data(20, 6, 4, seed=7)
    spec = {"family": "rram", "seed": 3}
    a = TiledCrossbar(w, (8, 8), MAP, WIRES, cells=spec)
    b = TiledCrossbar.from_config(w, a.to_config())
    ya, yb = a.mvm(x), b.mvm(x)
    assert torch.equal(ya, yb)
    rel = float((ya - x @ w).norm() / (x @ w).norm())
    assert 1e-3 < rel < 0.3  # programming error of real devices, but still the same MVM
    assert not torch.equal(a.conductances(), a.target_conductances())
    a.read_devices(86400.0)  # one day later: relaxation changes the read conductances
    assert not torch.equal(a.mvm(x), ya)
    # a callable conductance source: here a 5 % gain error per tile
    c = TiledCrossbar(w, (8, 8), MAP, WIRES, cells=lambda g, rc: 1.05 * g)
    with pytest.raises(ValueError, match="serialisable"):
        c.to_config()
    assert torch.allclose(TiledCrossbar(w, (8, 8), MAP, IDEAL, cells=lambda g, rc: 1.05 * g).mvm(x),
                          1.05 * (x @ w), rtol=1e-9, atol=1e-12)


def test_energy_and_nonlinear_tiles():
    w, x = _data(6, 3, 2, seed=8)
    tc = TiledCrossbar(w, (6, 6), MAP, WIRES, dac=DAC(energy_per_conversion=1e-13),
                       adc=ADC(v_range=5.0, energy_per_conversion=2e-12))
    e1, e2 = tc.energy(x, 1e-8), tc.energy(x, 2e-8)
    sol = tc.tiles()[0][0].full_solution(tc.dac(x))
    joule = (tc.dac(x) * sol.i_in).sum(-1) * 1e-8
    assert torch.allclose(e1, joule + 6 * 1e-13 + 3 * 2e-12, rtol=1e-12)
    assert bool((e2 - e1 > 0).all()) and bool((joule > 0).all())
    s = TiledCrossbar(w, (4, 4), MAP, CrossbarConfig(topology="1S1R", selector_i_s=1e-5, selector_v_0=0.05))
    assert not s.uses_transfer
    y = s.mvm(x)
    assert y.shape == (2, 3) and bool(torch.isfinite(y).all())


def test_errors():
    w, x = _data(6, 3, 2)
    for bad in [(4, 3), (0, 4), (4, 0), (2.5, 4), (4,), "ab"]:
        with pytest.raises(ValueError, match="tile_shape"):
            TiledCrossbar(w, bad, MAP)
    tc = TiledCrossbar(w, (4, 4), MAP)
    with pytest.raises(ValueError, match="x must have shape"):
        tc.mvm(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must be finite"):
        tc.mvm(torch.full((2, 6), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="weights"):
        TiledCrossbar(torch.zeros(6, dtype=torch.float64), (4, 4), MAP)
    with pytest.raises(ValueError, match="w_max"):
        TiledCrossbar(3 * w, (4, 4), MAP).mvm(x)
    assert torch.isfinite(TiledCrossbar(3 * w, (4, 4), MAP, clip=True).mvm(x)).all()
    with pytest.raises(ValueError, match="mode"):
        TiledCrossbar(w, (4, 4), MAP, CrossbarConfig(topology="1S1R"), mode="transfer")
    with pytest.raises(ValueError, match="mode"):
        TiledCrossbar(w, (4, 4), MAP, mode="fast")
    with pytest.raises(ValueError, match="mapping"):
        TiledCrossbar(w, (4, 4), (1e-6, 4e-5))
    with pytest.raises(ValueError, match="cells"):
        TiledCrossbar(w, (4, 4), MAP, cells={"family": "rram", "colour": 1})
    with pytest.raises(ValueError, match="v_scale"):
        TiledCrossbar(w, (4, 4), MAP, v_scale=0.0)
    with pytest.raises(ValueError, match="r_row"):
        TiledCrossbar(w, (4, 4), MAP, CrossbarConfig(r_row=-1.0))
    with pytest.raises(ValueError, match="dac"):
        TiledCrossbar(w, (4, 4), MAP, dac=ADC())
