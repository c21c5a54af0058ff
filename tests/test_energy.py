"""Energy and latency per inference: array energy from Kirchhoff's laws, peripheral counts, activity scaling."""
import math

import pytest
import torch
from torch import nn

import xbar
from training import CrossbarLinear, HardwareConfig, SpikingMLP, convert_to_crossbar, deploy, set_inference_time
from training.energy import EnergyMeter, measure_energy
from xbar.energy import EnergyConfig, array_energy, quadratic_energy, row_admittance

pytestmark = pytest.mark.usefixtures("one_thread")

IDEAL_WIRES = {"r_row": 0.0, "r_col": 0.0, "r_source": 0.0, "r_sense": 0.0}


def _layer(weights, *, bias=False, crossbar=IDEAL_WIRES, tile=(2, 2), **hw):
    w = torch.as_tensor(weights, dtype=torch.float32)
    cfg = HardwareConfig(tile_rows=tile[0], tile_cols=tile[1], crossbar=dict(crossbar), **hw)
    layer = CrossbarLinear(w.shape[1], w.shape[0], bias=bias, hardware=cfg)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias:
            layer.bias.zero_()
    return layer.eval()


def test_hand_computed_2x2_read():
    """One read of a 2x2 array (one differential pair, two rows), ideal wires, every term by hand."""
    cfg = EnergyConfig()
    layer = _layer([[0.5, -0.25]], dac_bits=None, adc_bits=8)
    g_min, g_max = HardwareConfig().window()  # PCM preset: 0.25 uS .. 25 uS
    s = (g_max - g_min) / 1.0                   # S per unit weight (w_max = 1)
    g_row0 = (g_min + 0.5 * s) + g_min          # G+ and G- of row 0
    g_row1 = g_min + (g_min + 0.25 * s)
    v0, v1 = 1.0 * 0.2, 0.5 * 0.2               # x = (1, 0.5), v_read = 0.2 V at x_max = 1
    array = 100e-9 * (v0 ** 2 * g_row0 + v1 ** 2 * g_row1)   # t_read = 100 ns
    dac = 2 * 8 * 0.42e-12                      # two driven rows, ideal DAC costed at 8 bits
    adc = 10e-15 * 2 ** 8                       # one 8-bit conversion, Walden FoM 10 fJ/step
    sense, neuron = 1.45e-12, 52e-12            # one sense amplifier read, one neuron update
    r = measure_energy(layer, torch.tensor([[1.0, 0.5]]), time_steps=1)
    assert r.breakdown_J["array"] == pytest.approx(array, rel=1e-9)
    assert r.breakdown_J["dac"] == pytest.approx(dac, rel=1e-12)
    assert r.breakdown_J["adc"] == pytest.approx(adc, rel=1e-12)
    assert r.breakdown_J["sense"] == pytest.approx(sense, rel=1e-12)
    assert r.breakdown_J["digital"] == 0.0 and r.breakdown_J["neuron"] == pytest.approx(neuron, rel=1e-12)
    assert r.energy_per_inference_J == pytest.approx(array + dac + adc + sense + neuron, rel=1e-12)
    assert r.latency_per_step_s == pytest.approx(100e-9 + 1 / 100e6, rel=1e-12) == cfg.read_latency
    assert r.spikes_per_inference == 0.0


def test_array_energy_is_the_source_power_of_the_circuit_with_wires():
    """With wire, driver and sense resistances the meter's quadratic form equals the power the row
    sources deliver in the exact solution, which exceeds the cells' dissipation by the wire losses."""
    torch.manual_seed(0)
    wires = {"r_row": 5.0, "r_col": 5.0, "r_source": 50.0, "r_sense": 50.0}
    layer = _layer(torch.rand(3, 6) * 2 - 1, crossbar=wires, tile=(8, 8), dac_bits=None, adc_bits=None)
    x = torch.rand(4, 6)
    r = measure_energy(layer, x, time_steps=1)
    g = layer.target_conductances()
    xb = xbar.Crossbar(g, config=layer.array.config)
    v = torch.nn.functional.pad(x.double() * 0.2, (0, 2))
    exact = array_energy(xb, v, 100e-9)
    assert r.breakdown_J["array"] * 4 == pytest.approx(float(exact.total.sum()), rel=1e-10)
    assert bool((exact.wires > 0).all()) and bool((exact.cells < exact.total).all())
    y = row_admittance(xb)
    assert torch.allclose(y, y.T, rtol=0, atol=1e-12 * float(y.abs().max()))   # reciprocity
    assert torch.allclose(quadratic_energy(v, y, 100e-9), exact.total, rtol=1e-10)
    ideal = xbar.Crossbar(g, config=layer.array.config.__class__(**IDEAL_WIRES))
    assert torch.allclose(row_admittance(ideal), torch.diag(g.sum(1)), rtol=1e-12)   # no wires: Y = diag(sum G)
    assert float(array_energy(ideal, v, 1e-7).wires.abs().max()) <= 1e-12 * float(exact.total.max())


def test_zero_input_leaves_only_static_and_peripheral_terms():
    cfg = EnergyConfig()
    layer = _layer(torch.rand(5, 12) - 0.5, tile=(4, 4), dac_bits=8, adc_bits=6)   # 3 row tiles x 3 col tiles
    r = measure_energy(layer, torch.zeros(7, 12), time_steps=1)
    reads, outs, row_tiles = 7, 5, 3
    assert r.breakdown_J["array"] == 0.0 and r.breakdown_J["dac"] == 0.0 and r.spikes_per_inference == 0.0
    assert r.breakdown_J["adc"] * reads == pytest.approx(reads * row_tiles * outs * cfg.adc_energy(6))
    assert r.breakdown_J["sense"] * reads == pytest.approx(reads * row_tiles * outs * cfg.sense_energy)
    assert r.breakdown_J["digital"] * reads == pytest.approx(reads * (row_tiles - 1) * outs * cfg.partial_sum_energy)
    assert r.breakdown_J["neuron"] * reads == pytest.approx(reads * outs * cfg.neuron_update_energy)
    # a non-event-driven chip drives every row even when it is 0: the DAC term is then there
    full = measure_energy(layer, torch.zeros(7, 12), time_steps=1, config=cfg.replace(event_driven=False))
    assert full.breakdown_J["dac"] == pytest.approx(3 * 12 * cfg.dac_energy(8))


def test_energy_grows_with_activity_and_each_spike_costs_its_row():
    """Spike inputs (ideal wires): E_array = t_read v^2 sum_i n_i (sum_j G_ij), one 1-bit drive per
    spike and per column tile, and every spike's neuron and routing energy."""
    torch.manual_seed(1)
    cfg = EnergyConfig()
    layer = _layer(torch.rand(6, 10) * 2 - 1, tile=(16, 8), dac_bits=8, adc_bits=8)   # 1 x 2 tiles
    # every cell on a driven row conducts, the padding of the half-used second tile (at g_min) too
    g_row = layer.target_conductances().detach()[:10].sum(1)                          # (10,) S
    totals = []
    for p in (0.0, 0.1, 0.5, 1.0):
        spikes = (torch.rand(50, 10) < p).float()
        r = measure_energy(layer, spikes, time_steps=1)
        n = spikes.sum(0).double()
        assert r.breakdown_J["array"] * 50 == pytest.approx(float(1e-7 * 0.2 ** 2 * (n * g_row).sum()), rel=1e-9, abs=0)
        assert r.breakdown_J["dac"] * 50 == pytest.approx(2 * float(n.sum()) * cfg.dac_energy(1), rel=1e-12, abs=0)
        assert r.spikes_per_inference * 50 == pytest.approx(float(n.sum()), rel=1e-12)
        assert r.breakdown_J["neuron"] * 50 == pytest.approx(
            50 * 6 * cfg.neuron_update_energy + float(n.sum()) * (cfg.neuron_spike_energy + cfg.spike_route_energy))
        totals.append(r.energy_per_inference_J)
    assert totals == sorted(totals) and totals[-1] > totals[0]


def test_drifted_pcm_reads_cost_less_than_fresh_ones():
    """PCM conductances drift down (G ~ t^-nu): the same input draws less read energy a year later."""
    torch.manual_seed(2)
    net = convert_to_crossbar(nn.Sequential(nn.Linear(8, 6)), HardwareConfig(mode="noisy", family="pcm", tile_rows=16,
                                                                            tile_cols=16))
    x = torch.rand(20, 8)
    deploy(net, 1.0)
    fresh = measure_energy(net, x, time_steps=1).breakdown_J["array"]
    set_inference_time(net, 3.15e7)
    drifted = measure_energy(net, x, time_steps=1).breakdown_J["array"]
    assert 0 < drifted < 0.95 * fresh


def test_spiking_network_energy_counts_time_steps_layers_and_latency():
    torch.manual_seed(3)
    model = SpikingMLP(4, 3, {"hidden": [16], "time_steps": 10}, {"tile_rows": 8, "tile_cols": 8})
    r = measure_energy(model, torch.rand(25, 4))
    assert r.time_steps == 10 and r.n_inferences == 25
    assert [layer["reads_per_inference"] for layer in r.layers] == [10.0, 10.0]
    assert r.latency_per_inference_s == pytest.approx(20 * EnergyConfig().read_latency)
    assert r.latency_per_step_s == pytest.approx(2 * EnergyConfig().read_latency)
    assert r.spikes_per_inference == pytest.approx(r.layers[1]["spikes_per_inference"]) and r.spikes_per_inference > 0
    assert r.energy_per_inference_J == pytest.approx(sum(r.breakdown_J.values()))
    assert set(r.metrics()) >= {"energy_per_inference_J", "latency_per_step_s", "energy_array_J", "energy_neuron_J"}
    assert model.training  # measure_energy restores the mode


def test_conv_positions_and_time_steps_are_inferred_for_a_step_loop():
    """A converted CNN run one step at a time: T comes from the reads of the first layer per position."""
    torch.manual_seed(4)
    net = convert_to_crossbar(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
                              HardwareConfig(tile_rows=16, tile_cols=16))
    x = torch.rand(6, 5, 1, 6, 6)   # (T, batch, C, H, W)
    with torch.no_grad(), EnergyMeter(net) as meter:
        for t in range(6):
            net(x[t])
    r = meter.report(n_inferences=5)
    assert r.time_steps == 6
    assert [layer["reads_per_inference"] for layer in r.layers] == [6 * 16, 6]
    with pytest.raises(ValueError, match="saw no crossbar reads"):
        EnergyMeter(net).report(5)


def test_nonlinear_1s1r_tiles_are_solved_per_input():
    torch.manual_seed(5)
    layer = _layer(torch.rand(2, 3) * 2 - 1, crossbar={"topology": "1S1R", "r_row": 1.0, "r_col": 1.0}, tile=(4, 4),
                   dac_bits=None, adc_bits=None)
    x = torch.rand(3, 3)
    r = measure_energy(layer, x, time_steps=1)
    xb = xbar.Crossbar(layer.target_conductances(), config=layer.array.config)
    expect = array_energy(xb, torch.nn.functional.pad(x.double() * 0.2, (0, 1)), 1e-7).total.sum() / 3
    assert r.breakdown_J["array"] == pytest.approx(float(expect), rel=1e-9) and r.breakdown_J["array"] > 0
    with pytest.raises(ValueError, match="linear crossbar"):
        row_admittance(xb)


def test_energy_config_validation_and_round_trip():
    cfg = EnergyConfig(t_read=50e-9, outputs_per_adc=8)
    assert EnergyConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.read_latency == pytest.approx(50e-9 + 8 / 100e6)
    assert cfg.adc_energy(None) == cfg.adc_energy(8) == pytest.approx(2.56e-12)
    for bad, pattern in (({"t_read": 0.0}, "t_read"), ({"adc_fom": -1.0}, "adc_fom"), ({"outputs_per_adc": 1.5},
                         "outputs_per_adc"), ({"event_driven": 1}, "event_driven"), ({"sense_energy": math.nan},
                         "sense_energy")):
        with pytest.raises(ValueError, match=pattern):
            EnergyConfig(**bad)
    with pytest.raises(ValueError, match="unknown energy option"):
        EnergyConfig.from_dict({"t_reed": 1e-7})
    with pytest.raises(ValueError, match="no crossbar layers"):
        EnergyMeter(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n_inferences"):
        EnergyMeter(_layer([[1.0, 0.0]])).report(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_energy_on_cuda_matches_the_cpu():
    import copy

    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    cpu = convert_to_crossbar(net, HardwareConfig(tile_rows=8, tile_cols=8, crossbar={"r_row": 2.0}))
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.rand(10, 8)
    r_cpu = measure_energy(cpu, x, time_steps=1)
    r_gpu = measure_energy(gpu, x.cuda(), time_steps=1)
    for k, v in r_cpu.breakdown_J.items():
        assert r_gpu.breakdown_J[k] == pytest.approx(v, rel=1e-6), k
    deploy(gpu, 1.0)
    assert math.isfinite(measure_energy(gpu, x.cuda(), time_steps=1).energy_per_inference_J)


def test_reads_costed_in_chunks_give_the_same_report(monkeypatch):
    """The meter costs a layer's reads in chunks of RECORD_CHUNK (bounded memory for conv layers'
    T x batch x positions reads): every total, and the spike-input decision, is that of one chunk."""
    import training.energy as energy_module

    torch.manual_seed(0)
    model = convert_to_crossbar(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)),
                                HardwareConfig(mode="noisy", family="pcm", seed=0))
    deploy(model, 0.0)
    set_inference_time(model, 3600.0)
    spikes = (torch.rand(40, 6) < 0.3).to(torch.float32)
    analog = torch.rand(40, 6)
    for x in (spikes, analog):
        whole = measure_energy(model, x)
        monkeypatch.setattr(energy_module, "RECORD_CHUNK", 7)
        chunked = measure_energy(model, x)
        monkeypatch.undo()
        assert chunked.spikes_per_inference == whole.spikes_per_inference
        assert chunked.reads_per_inference == whole.reads_per_inference
        for k, v in whole.breakdown_J.items():
            assert math.isclose(chunked.breakdown_J[k], v, rel_tol=1e-12), k
    assert measure_energy(model, spikes).spikes_per_inference > 0
    assert measure_energy(model, analog).spikes_per_inference == 0
