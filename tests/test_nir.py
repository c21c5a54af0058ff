"""NIR export/import: lossless memxbar round trips, the same spikes in snnTorch and Norse, deployed weights."""
import json

import pytest
import torch
from torch import nn

from training import (IF, LIF, CrossbarConv2d, CrossbarLinear, HardwareConfig, IFParameters, LeakyIntegrator,
                      LIFParameters, LIParameters, SpikingMLP, deploy, hardware_mode, set_inference_time)
from training.nir_io import NeuronGain, from_nir, to_nir

nir = pytest.importorskip("nir", reason="NIR is a test extra (pip install -e '.[test]')")
pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = HardwareConfig(dac_bits=None, adc_bits=None)   # no converters: a layer computes x @ W + b


def _spikes(p=0.3, shape=(40, 16, 8), seed=0):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _snn(seed, reset="zero", hardware=EXACT, n_in=8, hidden=30, out=5):
    torch.manual_seed(seed)
    p = LIFParameters(tau_mem=10e-3, v_th=0.3, reset=reset)
    net = nn.Sequential(CrossbarLinear(n_in, hidden, hardware=hardware), LIF(p),
                        CrossbarLinear(hidden, out, hardware=hardware, layer_id=1), LIF(p))
    with torch.no_grad():  # mostly excitatory weights: every layer spikes
        net[0].weight.uniform_(-0.3, 1.0)
        net[2].weight.uniform_(-0.3, 1.0)
    return net.eval()


def test_memxbar_nir_memxbar_round_trip_is_exact(tmp_path):
    """A trained-looking SpikingMLP (reset by subtraction, tracked 8-bit ADC range, DAC) through a
    .nir file and back gives bit-identical outputs: weights, hardware and neuron options survive."""
    torch.manual_seed(0)
    model = SpikingMLP(4, 3, {"hidden": [20], "reset": "subtract"},
                       {"tile_rows": 32, "tile_cols": 32, "crossbar": {"r_row": 2.0}})
    model.train()
    model(torch.rand(50, 4))                 # tracks the ADC ranges
    model.eval()
    nir.write(tmp_path / "net.nir", to_nir(model))
    net = from_nir(tmp_path / "net.nir")
    x = torch.rand(60, 4)
    with torch.no_grad():
        assert torch.equal(net(model.encode(x, 20)).mean(0), model(x))
    assert [type(m) for m in net.stages] == [CrossbarLinear, LIF, CrossbarLinear, LeakyIntegrator]
    assert net.stages[1].p.reset == "subtract" and net.stages[0].hardware == model.layers[0].hardware
    meta = json.loads(nir.read(tmp_path / "net.nir").metadata["memxbar"])
    assert meta["weights"] == "ideal" and meta["model"] == "SpikingMLP" and meta["encoding"] == "direct"


@pytest.mark.parametrize("discretisation", ["euler", "exact"])
def test_if_and_synaptic_networks_round_trip(discretisation):
    torch.manual_seed(1)
    lif = LIFParameters(tau_mem=5e-3, tau_syn=None if discretisation == "euler" else 2e-3, v_th=0.4, reset="zero")
    net = nn.Sequential(CrossbarLinear(6, 10, hardware=EXACT), LIF(lif), CrossbarLinear(10, 7, hardware=EXACT),
                        IF(IFParameters(v_th=0.5, reset="zero")), CrossbarLinear(7, 3, hardware=EXACT),
                        LeakyIntegrator(LIParameters(tau_mem=20e-3), dt=1e-3)).eval()
    back = from_nir(to_nir(net, discretisation=discretisation), hardware=EXACT, discretisation=discretisation)
    x = _spikes(0.5, (30, 4, 6), seed=2)
    with torch.no_grad():
        assert torch.allclose(back(x), net(x), rtol=1e-6, atol=1e-7)
        assert torch.equal(back.stages[1](back.stages[0](x)), net[1](net[0](x)))


def test_memxbar_to_snntorch_gives_the_same_spikes():
    """Exported for snnTorch's importer (forward Euler at its fixed dt = 1e-4 s): snnTorch's Leaky
    neurons (beta = 1 - dt/tau = exp(-dt_memxbar/tau_mem), threshold divided by its input scale
    1 - beta) fire exactly where memxbar's do. Tolerance: none — the spike rasters are compared for
    equality. They could differ only where a membrane lands within float32 rounding (~1e-7
    relative) of the threshold, since the two evaluate the same recursion in a different order;
    on these inputs no spike is that close."""
    snntorch = pytest.importorskip("snntorch", reason="snnTorch is a test extra")
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    for seed in range(3):
        net, x = _snn(seed), _spikes(seed=seed)
        with torch.no_grad():
            hidden, out = net[1](net[0](x)), net(x)
        for graph, expect in ((to_nir(net[:2], dt=1e-4), hidden), (to_nir(net, dt=1e-4), out)):
            sn = import_from_nir(graph)
            snntorch.utils.reset(sn)
            with torch.no_grad():
                got = torch.stack([(lambda o: o[0] if isinstance(o, tuple) else o)(sn(x[t])) for t in range(len(x))])
            assert 0.05 < float(expect.mean()) < 0.95
            assert torch.equal(got, expect)


def test_snntorch_graph_imports_with_the_same_spikes():
    """snnTorch Leaky neurons (reset to zero, no reset delay) exported by snnTorch, imported into
    memxbar crossbar layers at dt = 1e-4 s with forward-Euler semantics: the same spikes."""
    snn = pytest.importorskip("snntorch", reason="snnTorch is a test extra")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(3)
    lin1, lin2 = nn.Linear(8, 20), nn.Linear(20, 4)
    with torch.no_grad():
        lin1.weight.uniform_(-0.1, 0.3)
        lin2.weight.uniform_(-0.1, 0.3)
    leaky = lambda n, beta: snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), 0.5),  # noqa: E731
                                      reset_mechanism="zero", reset_delay=False, init_hidden=True)
    net = nn.Sequential(lin1, leaky(20, 0.9), lin2, leaky(4, 0.8))
    graph = export_to_nir(net, torch.rand(8))
    x = _spikes(0.4, (50, 6, 8), seed=4)
    for m in (net[1], net[3]):
        m.reset_mem()
    with torch.no_grad():
        expect = torch.stack([net(x[t]) for t in range(len(x))])
    back = from_nir(graph, EXACT, dt=1e-4)
    assert any(isinstance(m, NeuronGain) for m in back.stages)       # snnTorch's r = tau/dt as an input gain
    with torch.no_grad():
        got = back(x)
    assert 0.05 < float(expect.mean()) < 0.95 and torch.equal(got, expect)


def test_norse_graph_imports_with_the_same_spikes():
    norse = pytest.importorskip("norse.torch", reason="Norse is a test extra (tools/setup.sh)")
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    torch.manual_seed(5)
    lin1, lin2 = nn.Linear(8, 12), nn.Linear(12, 4)
    with torch.no_grad():
        lin1.weight.uniform_(0.0, 0.5)
        lin2.weight.uniform_(0.0, 0.5)
    def cell(n):
        return LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.full((n,), 100.0), v_th=torch.full((n,), 0.3),
                                           v_leak=torch.zeros(n), v_reset=torch.zeros(n)))

    net = norse.SequentialState(lin1, cell(12), lin2, cell(4))
    graph = norse.to_nir(net, torch.rand(1, 8))
    x = _spikes(0.5, (40, 5, 8), seed=6)
    with torch.no_grad():
        state, outs = None, []
        for t in range(len(x)):
            z, state = net(x[t], state)
            outs.append(z)
    expect = torch.stack(outs)
    back = from_nir(graph, EXACT, dt=1e-3, tau_scale=1e3)   # Norse 1.1.0 writes dt*tau
    with torch.no_grad():
        got = back(x)
    assert 0.05 < float(expect.mean()) < 0.95 and torch.equal(got, expect)


def test_effective_weights_of_the_deployed_chip(tmp_path):
    """Exported with the deployed hardware's weights (circuit mode, 1 day after programming):
    the imported ideal network reproduces the deployed chip's outputs."""
    hw = HardwareConfig(mode="noisy", family="pcm", tile_rows=8, tile_cols=8, dac_bits=None, adc_bits=None,
                        crossbar={"r_row": 10.0, "r_col": 10.0})
    net = _snn(7, hardware=hw, n_in=12, hidden=10, out=4)
    with pytest.raises(ValueError, match="deploy the model first"):
        to_nir(net, weights="effective")
    deploy(net, 0.0)
    x = _spikes(0.3, (20, 8, 12), seed=8)
    with hardware_mode(net, "circuit"), torch.no_grad():
        graph = to_nir(net, weights="effective", t=86400.0)
        chip_currents = net[0](x)
        chip = net[1](chip_currents)
        ideal_graph = to_nir(net)
    meta = json.loads(graph.metadata["memxbar"])
    assert meta["weights"] == "effective" and meta["mode"] == "circuit" and meta["t_inference"] == 86400.0
    back = from_nir(graph, EXACT)
    with torch.no_grad():
        assert torch.allclose(back.stages[0](x), chip_currents, rtol=1e-5, atol=1e-5)
        assert torch.equal(back.stages[1](back.stages[0](x)), chip)
    assert not torch.allclose(torch.as_tensor(graph.nodes["0"].weight), torch.as_tensor(ideal_graph.nodes["0"].weight))
    set_inference_time(net, 1.0)
    with pytest.raises(ValueError, match="'noisy' or 'circuit'"), hardware_mode(net, "ideal"):
        to_nir(net, weights="effective")


def test_conv_chain_exports_and_imports():
    torch.manual_seed(9)
    conv = CrossbarConv2d(1, 3, 3, stride=1, padding=1, hardware=EXACT)
    p = LIFParameters(tau_mem=10e-3, v_th=0.2, reset="zero")
    net = nn.Sequential(conv, LIF(p), nn.Flatten(2), CrossbarLinear(3 * 6 * 6, 4, hardware=EXACT, layer_id=1), LIF(p))
    graph = to_nir(net, input_shape=(1, 6, 6))
    back = from_nir(graph, EXACT)
    x = _spikes(0.4, (10, 2, 1, 6, 6), seed=10)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    with pytest.raises(ValueError, match="input_shape"):
        to_nir(net)


def test_what_does_not_map_is_refused_with_the_reason():
    refractory = nn.Sequential(CrossbarLinear(3, 2), LIF(LIFParameters(refractory_steps=2)))
    with pytest.raises(ValueError, match="refractory"):
        to_nir(refractory)
    synapse = nn.Sequential(CrossbarLinear(3, 2), LIF(LIFParameters(tau_syn=5e-3)))
    with pytest.raises(ValueError, match="discretisation='exact'"):
        to_nir(synapse)
    with pytest.raises(ValueError, match="memristive"):
        to_nir(SpikingMLP(4, 3, {"hidden": [4], "neuron": "mif", "dt": 1e-6}))
    graph = to_nir(nn.Sequential(CrossbarLinear(3, 2), LIF()))
    graph.nodes["1"].tau[1] *= 2
    with pytest.raises(ValueError, match="one tau per layer"):
        from_nir(graph)
    with pytest.raises(ValueError, match="tau > dt"):
        from_nir(to_nir(nn.Sequential(CrossbarLinear(3, 2), LIF())), dt=1.0)
    branch = to_nir(nn.Sequential(CrossbarLinear(3, 2), LIF()))
    branch.edges.append(("input", "1"))
    with pytest.raises(ValueError, match="feed-forward chains"):
        from_nir(branch)
