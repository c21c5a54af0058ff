"""Fully memristive networks (training.memristive): exact BPTT gradients, no surrogate, the
physical current chain, a short Yin-Yang training run, config validation, the oscillator variant."""
import math

import pytest
import torch

from circuits.neurons import MIFNeuron
from training.config import RunConfig
from training.hardware import HardwareConfig
from training.memristive import (MIF_RAILS, column_current, memristive_forward, mif_sequence, readout_logits, row_input,
                                 row_voltage, volts_per_unit,
                                 run_neurons)
from training.model import NetworkConfig, SpikingMLP

EXACT_HW = HardwareConfig(mode="ideal", dac_bits=None, adc_bits=None)


def _tiny_mif(current_gain=20.0, steps=8, d2d=0.1):
    torch.manual_seed(0)
    net = NetworkConfig(hidden=(3,), neuron="mif", dt=1e-6, time_steps=steps, readout="mean", input_scale=5.0,
                        current_gain=current_gain, neuron_params={"d2d": d2d, "seed": 4})
    return SpikingMLP(2, 2, net, EXACT_HW).double()


def _loss(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def _graph_nodes(t):
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return seen


def test_bptt_gradient_matches_central_difference_of_full_network():
    model = _tiny_mif()
    x = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    _, traces = memristive_forward(model.layers, model.neurons, model.encode(x, 8), current_gain=20.0, row_gain=1.0,
                                   readout="mean", readout_scale=0.01, return_traces=True)
    v_hidden = traces[0].detach()
    assert float(v_hidden.max()) > 0.14 > float(v_hidden.min())  # M1 switching range and subthreshold
    loss = _loss(model, x, y)
    loss.backward()
    h = 1e-5
    for layer in model.layers:
        for param, idx in ((layer.weight, (0, 1)), (layer.weight, (1, 0)), (layer.bias, (1,))):
            g = float(param.grad[idx])
            with torch.no_grad():
                old = float(param[idx])
                param[idx] = old + h
                up = float(_loss(model, x, y))
                param[idx] = old - h
                down = float(_loss(model, x, y))
                param[idx] = old
            fd = (up - down) / (2 * h)
            assert abs(fd) > 1e-4
            assert abs(g - fd) <= 1e-5 * abs(fd), (idx, g, fd)


def test_no_surrogate_readout_gradient_is_smooth_below_and_above_threshold():
    neuron = MIFNeuron(2, dtype=torch.float64)
    for i_dc in (2e-6, 60e-6):  # v stays below v_on / M1 switches ON
        i = torch.full((30, 1, 2), i_dc, dtype=torch.float64, requires_grad=True)
        v = run_neurons(neuron, i)
        assert (float(v.detach().max()) > 0.2) == (i_dc > 1e-5)
        r = readout_logits(v, "mean", 0.01).sum()
        (grad,) = torch.autograd.grad(r, i)
        total = float(grad.sum())
        h = i_dc * 1e-6
        with torch.no_grad():
            fd = float(readout_logits(run_neurons(neuron, i + h), "mean", 0.01).sum()
                       - readout_logits(run_neurons(neuron, i - h), "mean", 0.01).sum()) / (2 * h)
        assert math.isfinite(total) and abs(total) > 0
        assert abs(total - fd) <= 1e-6 * abs(fd)


def test_no_custom_autograd_function_in_the_graph():
    model = _tiny_mif()
    nodes = _graph_nodes(model(torch.rand(4, 2, dtype=torch.float64)))
    # the only custom function allowed is the weight clip, whose backward is clamp's exact derivative
    # (xbar.peripherals.clip: the same mask, computed as a float mask for speed)
    assert not [n for n in nodes if isinstance(n, torch.autograd.function.BackwardCFunction)
                and type(n).__name__ != "_ClipBackward"]
    # the check can fail: a LIF network's surrogate spike is a custom autograd function
    lif = SpikingMLP(2, 2, NetworkConfig(hidden=(3,)), EXACT_HW)
    assert [n for n in _graph_nodes(lif(torch.rand(4, 2))) if isinstance(n, torch.autograd.function.BackwardCFunction)]


@pytest.mark.parametrize("splitting,rails", [("strang", False), ("lie", False), ("strang", True)])
def test_fast_mif_sequence_equals_reference_neuron(splitting, rails):
    opts = {"v_low": -0.1, "v_high": 0.15} if rails else {}
    neuron = MIFNeuron(4, d2d=0.15, seed=2, splitting=splitting, dtype=torch.float64, **opts)
    g = torch.Generator().manual_seed(1)
    i = (torch.rand(40, 3, 4, generator=g, dtype=torch.float64) - 0.3) * 80e-6
    ref = neuron(i)
    assert float(ref.max()) > 0.14
    torch.testing.assert_close(mif_sequence(neuron, i), ref, rtol=1e-12, atol=1e-14)


def test_membrane_current_is_the_physical_column_current():
    model = _tiny_mif(current_gain=3.0)
    layer = model.layers[1]
    x = torch.rand(5, 3, dtype=torch.float64)
    i = column_current(layer(x), layer, 3.0)
    g = layer.target_conductances()[:layer.n_rows]            # (rows, 2 out) interleaved pairs, S
    hw = layer.hardware
    v_rows = torch.cat([x, torch.full((5, 1), hw.x_max, dtype=torch.float64)], 1) * (hw.v_read / hw.x_max)
    i_cols = v_rows @ g                                       # Ohm + Kirchhoff: column currents (A)
    i_phys = 3.0 * (i_cols[:, 0::2] - i_cols[:, 1::2])[:, :2]
    torch.testing.assert_close(i, i_phys, rtol=1e-10, atol=1e-18)
    assert layer.hardware.adc_bits is None and layer.hardware.dac_bits is None
    # next-layer rows: a resting membrane (v = v_row_ref) drives 0 V, a 0.1 V excursion 0.1 V·row_gain
    v = torch.tensor([[0.025, 0.125, -0.075]], dtype=torch.float64)
    x_next = row_input(v, layer, 2.0, 0.025, row_swing=None)
    torch.testing.assert_close(x_next * (hw.v_read / hw.x_max), torch.tensor([[0.0, 0.2, -0.2]], dtype=torch.float64))


def test_row_buffers_saturate_at_the_read_voltage():
    """Rows of layers >= 1 stay within ±row_swing·v_read (the synapses are never driven beyond
    their read voltage); slope row_gain at the reference, tanh shape in between."""
    layer = _tiny_mif().layers[1]
    v_read = layer.hardware.v_read
    v = torch.linspace(-5.0, 5.0, 201, dtype=torch.float64)
    for swing in (1.0, 0.5):
        rows = row_voltage(v, layer, 2.0, 0.025, swing)
        assert float(rows.abs().max()) <= swing * v_read
        assert float(rows.abs().max()) > 0.999 * swing * v_read
        torch.testing.assert_close(rows, swing * v_read * torch.tanh(2.0 * (v - 0.025) / (swing * v_read)))
        x = row_input(v, layer, 2.0, 0.025, swing)
        torch.testing.assert_close(x * volts_per_unit(layer), rows)
    small = torch.tensor([0.025 + 1e-6], dtype=torch.float64)
    slope = float(row_voltage(small, layer, 2.0, 0.025, 1.0)) / 1e-6
    assert abs(slope - 2.0) < 1e-6
    unbounded = row_voltage(v, layer, 2.0, 0.025, None)
    assert float(unbounded.abs().max()) > 9.0


def test_network_membranes_stay_within_the_mirror_rails():
    """A memristive network driven far beyond its inputs' range: every membrane stays within the
    default compliance rails (training.memristive.MIF_RAILS), every row within ±v_read."""
    model = _tiny_mif(current_gain=500.0)
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.copy_(layer.weight.sign())  # |w| = w_max: the largest currents
        _, traces = memristive_forward(model.layers, model.neurons, model.encode(x, 8), current_gain=500.0,
                                       row_gain=1.0, readout="mean", readout_scale=0.01, return_traces=True)
    lo, hi = MIF_RAILS["v_low"], MIF_RAILS["v_high"]
    overshoot = 0.1 * math.exp(-(hi - lo) / 0.1)  # the lower softplus lifts the upper rail by κ e^(−Δ/κ) = 4.5 µV
    for v in traces:
        assert float(v.max()) <= hi + 1.01 * overshoot and float(v.min()) >= lo
    assert max(float(v.abs().max()) for v in traces) > 0.45  # the rails are reached
    rows = row_voltage(traces[0], model.layers[1], 1.0, 0.0, 1.0)
    assert float(rows.abs().max()) <= model.layers[1].hardware.v_read


def test_short_yin_yang_training_beats_chance(tmp_path):
    from training.loop import accuracy, load_data, train

    torch.set_num_threads(1)
    cfg = RunConfig.from_dict({
        "name": "mif-smoke", "seed": 0,
        "network": {"hidden": [30], "neuron": "mif", "dt": 1e-6, "time_steps": 12, "readout": "mean",
                    "current_gain": 10.0},
        "hardware": {"mode": "ideal", "dac_bits": 8, "adc_bits": 8},
        "train": {"epochs": 2, "lr": 0.02}})
    model, history = train(cfg, tmp_path, progress=False)
    splits, _, _ = load_data(cfg)
    acc = accuracy(model, splits.test)
    assert len(history) == 2 and acc > 0.6, (acc, history)


@pytest.mark.parametrize("changes, match", [
    ({"neuron": "mif"}, "dt must be in"),                                   # LIF default dt = 1 ms
    ({"neuron": "oscillator", "dt": 1e-6}, "dt must be in"),
    ({"neuron": "mif", "dt": 1e-6, "current_gain": 0.0}, "current_gain"),
    ({"neuron": "mif", "dt": 1e-6, "row_gain": -1.0}, "row_gain"),
    ({"neuron": "mif", "dt": 1e-6, "readout_scale": float("nan")}, "readout_scale"),
    ({"neuron": "mif", "dt": 1e-6, "v_row_ref": float("inf")}, "v_row_ref"),
    ({"neuron": "mif", "dt": 1e-6, "row_swing": 1.5}, "row_swing must be in"),
    ({"neuron": "mif", "dt": 1e-6, "neuron_params": {"v_low": 0.2, "v_high": 0.1}}, "v_low must be < v_high"),
    ({"neuron": "mif", "dt": 1e-6, "neuron_params": {"tau": 1.0}}, "unknown neuron_params"),
    ({"neuron": "mif", "dt": 1e-6, "neuron_params": {"c": -1e-12}}, "neuron_params: c"),
    ({"neuron": "mif", "dt": 1e-6, "neuron_params": {"seed": -1}}, "neuron_params.seed"),
    ({"neuron": "lif", "neuron_params": {"c": 1e-10}}, "neuron_params applies only"),
    ({"neuron": "hh"}, "neuron must be one of"),
])
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        NetworkConfig(**changes)


@pytest.mark.parametrize("name, dataset", [("yin_yang_mif", "yin_yang"), ("mnist_mif", "mnist")])
def test_example_configs_round_trip(name, dataset):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "training" / "configs" / f"{name}.toml"
    cfg = RunConfig.from_toml(path)
    assert cfg.network.neuron == "mif" and cfg.network.memristive and cfg.data.dataset == dataset
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_neuron_devices_and_noise_are_seeded_by_hashed_paths():
    """Layer k's neuron memristors come from derive_seed(seed, "layer", k) and the network's C2C
    generator from make_generator(seed, "neurons", "c2c"). Regression: with seed + 1000·layer,
    seed 1000's layer 0 had exactly seed 0's layer-1 devices (and seed + 1 the next seed's)."""
    from devices.seeding import derive_seed, make_generator
    from devices.volatile import VolatileMemristor
    from training.memristive import build_neurons, make_neuron, neuron_generator

    params = {"d2d": 0.1, "seed": 0}
    layers = build_neurons("mif", [5, 5], 1e-6, params, dtype=torch.float64)
    for k, layer in enumerate(layers):
        dev = VolatileMemristor((2, 5), preset="mif_kang2021", seed=derive_seed(0, "layer", k), dtype=torch.float64,
                                d2d_r_sigma=0.1, d2d_v_sigma=0.1, d2d_tau_sigma=0.1)
        assert torch.equal(layer.m1_r_on, dev.r_on[0]) and torch.equal(layer.m2_v_on, dev.v_on[1])
    shifted = make_neuron("mif", 5, 1e-6, {"d2d": 0.1, "seed": 1000}, layer=0, dtype=torch.float64)
    assert not torch.equal(shifted.m1_r_on, layers[1].m1_r_on)
    gen = neuron_generator(params)
    assert torch.equal(torch.randn(4, generator=gen), torch.randn(4, generator=make_generator(0, "neurons", "c2c")))
    assert not torch.equal(neuron_generator({"seed": 1}).get_state(), torch.Generator().manual_seed(1).get_state())
    # a neuron's own C2C generator: make_generator(seed, "c2c"), not seed + 1
    i = torch.full((20, 1, 5), 2e-5, dtype=torch.float64)
    noisy = MIFNeuron(5, c2c_sigma=0.2, seed=3, dtype=torch.float64)
    assert torch.equal(noisy(i), noisy(i, generator=make_generator(3, "c2c")))
    assert not torch.equal(noisy(i), noisy(i, generator=torch.Generator().manual_seed(4)))


def test_oscillator_network_forward_backward():
    torch.manual_seed(0)
    net = NetworkConfig(hidden=(4,), neuron="oscillator", dt=2e-9, time_steps=60, readout="mean",
                        current_gain=100.0, readout_scale=0.1, neuron_params={"d2d": 0.05})
    model = SpikingMLP(2, 3, net, EXACT_HW).double()
    x = torch.rand(6, 2, dtype=torch.float64)
    logits = model(x)
    assert logits.shape == (6, 3) and bool(torch.isfinite(logits).all())
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads)


def test_spike_counts_are_detached_diagnostics_of_graded_spikes():
    from training.memristive import spike_counts

    neuron = MIFNeuron(2, dtype=torch.float64)
    i = torch.tensor([0.1e-6, 40e-6], dtype=torch.float64).expand(60, 1, 2).clone().requires_grad_(True)
    v = run_neurons(neuron, i)
    (counts,) = spike_counts([v], [neuron])
    assert not counts.requires_grad
    assert int(counts[0, 0]) == 0 and int(counts[0, 1]) >= 1   # v_rest + 0.1 µA/67 µS < 30 mV < the driven peak
