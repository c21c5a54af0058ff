"""The convolutional SNN on crossbar layers (training.conv_model): configuration, the forward pass
against a plain torch reference (conv2d + LIF + pooling + LI readout), time batching, learning on
an MNIST subset, checkpoint resume, and the independence of training and device seeds."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from training.config import RunConfig, network_from_dict
from training.conv_model import ConvNetworkConfig, SpikingConvNet
from training.hardware import HardwareConfig
from training.loop import accuracy, build_model, load_data, train
from training.neurons import li_sequence, lif_sequence

IDEAL_EXACT = HardwareConfig(mode="ideal", dac_bits=None, adc_bits=None)


def _images(n: int, seed: int = 0, side: int = 12) -> torch.Tensor:
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


# ============================================================================= configuration
def test_config_round_trip_and_kind_switch():
    cfg = RunConfig.from_dict({"data": {"dataset": "mnist"},
                               "network": {"kind": "conv", "channels": [4, 8], "kernel_size": 3, "hidden": [16],
                                           "readout_tau_syn": "none"}})
    assert isinstance(cfg.network, ConvNetworkConfig) and cfg.network.channels == (4, 8)
    assert cfg.network.readout_tau_syn is None
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["network"]["kind"] == "conv"
    mlp = RunConfig.from_dict({"network": {"kind": "mlp", "hidden": [8]}})
    assert mlp.network.hidden == (8,) and "kind" not in mlp.to_dict()["network"]
    assert RunConfig.from_dict(mlp.to_dict()) == mlp


@pytest.mark.parametrize("network, match", [
    ({"kind": "resnet"}, r"network.kind must be one of \['mlp', 'conv'\]"),
    ({"kind": "conv", "kernel_size": 4}, "kernel_size must be an odd integer"),
    ({"kind": "conv", "channels": []}, "channels must be a non-empty list"),
    ({"kind": "conv", "channels": [8, 0]}, r"channels entries must be an integer in \[1, inf\)"),
    ({"kind": "conv", "channels": [8.0]}, "channels entries must be an integer"),
    ({"kind": "conv", "pool": "min"}, r"pool must be one of \['max', 'avg'\]"),
    ({"kind": "conv", "hidden": 16}, "hidden must be a list"),
    ({"kind": "conv", "neuron_params": {}}, r"unknown network option\(s\) \['neuron_params'\] for kind = 'conv'"),
    ({"kind": "conv", "input_scale": 0}, r"input_scale must be in \(0, inf\)"),
    ({"kind": "conv", "time_steps": True}, "time_steps must be an integer"),
])
def test_config_errors(network, match):
    with pytest.raises(ValueError, match=match):
        network_from_dict(network)


def test_run_config_rejects_conv_on_vectors_and_max_pool_conversion():
    with pytest.raises(ValueError, match="needs an image data set"):
        RunConfig.from_dict({"data": {"dataset": "yin_yang"}, "network": {"kind": "conv"}})
    with pytest.raises(ValueError, match="network.pool must be 'avg'.*got 'max'"):
        RunConfig.from_dict({"data": {"dataset": "mnist"}, "network": {"kind": "conv"},
                             "train": {"method": "conversion"}})
    cfg = RunConfig.from_dict({"data": {"dataset": "mnist"}, "network": {"kind": "conv", "pool": "avg"},
                               "train": {"method": "conversion"}})
    assert cfg.network.neuron == "lif"  # conversion sets "if" on the converted network, not the config
    with pytest.raises(ValueError, match="at least 8 pixels per side"):
        SpikingConvNet((1, 6, 6), 10, {"channels": [2, 2, 2]})


# ============================================================================= forward pass
def _reference(model: SpikingConvNet, x: torch.Tensor, steps: int) -> torch.Tensor:
    net = model.network
    p, li, dt = net.lif_parameters(), net.li_parameters(), net.dt
    pool = nn.functional.max_pool2d if net.pool == "max" else nn.functional.avg_pool2d
    pad = net.kernel_size // 2
    currents = nn.functional.conv2d(x * net.input_scale, model.convs[0].conv_weight(), model.convs[0].linear.bias,
                                    padding=pad)
    spikes = lif_sequence(currents.unsqueeze(0).repeat(steps, 1, 1, 1, 1), p, dt)[0]
    s = [pool(spikes[t], 2) for t in range(steps)]
    for conv in model.convs[1:]:
        currents = torch.stack([nn.functional.conv2d(s[t], conv.conv_weight(), conv.linear.bias, padding=pad)
                                for t in range(steps)])
        spikes = lif_sequence(currents, p, dt)[0]
        s = [pool(spikes[t], 2) for t in range(steps)]
    f = torch.stack([st.flatten(1) for st in s])
    for linear in model.linears[:-1]:
        f = lif_sequence(nn.functional.linear(f, linear.weight, linear.bias), p, dt)[0]
    u = li_sequence(nn.functional.linear(f, model.linears[-1].weight, model.linears[-1].bias), li, dt)[0]
    return u.max(0).values if net.readout == "max" else u.mean(0)


@pytest.mark.parametrize("options", [
    {"channels": [3, 5], "kernel_size": 3, "pool": "max", "readout": "mean"},
    {"channels": [2, 4], "kernel_size": 5, "pool": "avg", "readout": "max", "hidden": [7], "tau_syn": 5e-3},
])
def test_forward_equals_plain_torch_reference(options):
    torch.manual_seed(3)
    model = SpikingConvNet((1, 12, 12), 4, {**options, "input_scale": 2.0, "v_th": 0.1}, IDEAL_EXACT).double()
    x = _images(6).double()
    out = model(x, time_steps=5)
    ref = _reference(model, x, 5)
    assert out.shape == (6, 4)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    # the hidden layers do spike (the comparison is not between silent networks)
    assert float(ref.detach().abs().max()) > 1e-3
    # flattened images are accepted
    assert torch.allclose(model(x.reshape(6, -1), time_steps=5), out, rtol=1e-10, atol=1e-12)


def test_first_convolution_runs_once_and_later_layers_see_the_whole_sequence():
    torch.manual_seed(0)
    model = SpikingConvNet((1, 12, 12), 3, {"channels": [2, 3], "kernel_size": 3, "time_steps": 6, "hidden": []})
    shapes = {0: [], 1: []}
    for k, conv in enumerate(model.convs):
        conv.register_forward_hook(lambda mod, inp, out, k=k: shapes[k].append(tuple(inp[0].shape)))
    model(_images(4))
    assert shapes[0] == [(4, 1, 12, 12)]               # computed once per image
    assert shapes[1] == [(6, 4, 2, 6, 6)]              # one call over (T, batch, C, H, W)
    with pytest.raises(ValueError, match=r"input must be images \(batch, 1, 12, 12\)"):
        model(torch.zeros(4, 1, 10, 10))


def test_layers_are_crossbar_layers_with_hardware_options():
    torch.manual_seed(0)
    hw = HardwareConfig(mode="ideal", x_max=1.0)
    model = SpikingConvNet((1, 12, 12), 3, {"channels": [2, 3], "kernel_size": 3, "input_scale": 4.0,
                                            "hidden": []}, hw)
    layers = model.layers
    assert len(layers) == 3
    assert layers[0].hardware.x_max == 4.0 and layers[1].hardware.x_max == 1.0  # first DAC spans the pixels
    assert [getattr(layer, "linear", layer).layer_id for layer in layers] == [0, 1, 2]
    with torch.no_grad():
        layers[2].weight.fill_(5.0)
    model.clip_weights_()
    assert float(layers[2].weight.detach().max()) == hw.w_max
    model.set_mode("noisy")
    assert all(layer.hardware.mode == "noisy" for layer in layers)


# ============================================================================= training
def _mnist_config(**train) -> RunConfig:
    return RunConfig.from_dict({
        "seed": 0, "data": {"dataset": "mnist", "batch_size": 32, "train_subset": 1920, "eval_subset": 500},
        "network": {"kind": "conv", "channels": [4, 8], "kernel_size": 3, "time_steps": 4},
        "hardware": {"mode": "ideal"}, "train": {"epochs": 2, "lr": 3e-3, **train}})


def test_conv_snn_learns_mnist_subset_well_above_chance(tmp_path, one_thread):
    """120 steps of batch 32 on 1920 MNIST images: far above the 10 % of chance."""
    cfg = _mnist_config()
    model, history = train(cfg, tmp_path, resume=False, progress=False)
    splits, n_in, _ = load_data(cfg)
    assert n_in == (1, 28, 28) and splits.train.X.shape == (1920, 1, 28, 28)
    acc = accuracy(model, splits.test, 250)
    assert acc > 0.6, history
    assert history[-1]["loss"] < history[0]["loss"]


def test_conv_training_resumes_bit_identically(tmp_path, one_thread):
    cfg = RunConfig.from_dict({**_mnist_config().to_dict(), "data": {
        "dataset": "mnist", "batch_size": 32, "train_subset": 128, "eval_subset": 64}})
    full, _ = train(cfg, tmp_path / "full", resume=False, progress=False)
    train(cfg, tmp_path / "cut", resume=False, progress=False, stop_after=1)
    resumed, history = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert len(history) == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


def test_training_seed_and_device_seed_are_independent():
    """Initial weights depend on ``seed`` only; programmed devices on ``hardware.seed`` only."""
    def model(seed: int, hw_seed: int):
        cfg = RunConfig.from_dict({"seed": seed, "data": {"dataset": "mnist"},
                                   "network": {"kind": "conv", "channels": [2, 3], "kernel_size": 3},
                                   "hardware": {"mode": "noisy", "seed": hw_seed, "tile_rows": 32, "tile_cols": 32}})
        return build_model(cfg, (1, 12, 12), 3)

    a, b, c = model(0, 0), model(0, 1), model(1, 0)
    weights = lambda m: [layer.weight.detach().clone() for layer in m.layers]  # noqa: E731
    assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))      # device seed: same init
    assert not any(torch.equal(x, y) for x, y in zip(weights(a), weights(c)))  # training seed: new init
    g = {}
    for name, m in (("a", a), ("b", b), ("a2", model(0, 0)), ("c", c)):
        m.deploy(1.0)
        g[name] = [layer.effective_weights().detach() for layer in m.layers]
    assert all(torch.equal(x, y) for x, y in zip(g["a"], g["a2"]))             # same seeds: same chip
    assert not any(torch.equal(x, y) for x, y in zip(g["a"], g["b"]))          # new device seed: new chip
    # the layers of one chip draw independent device noise (no shared stream between layers)
    cores = [getattr(layer, "linear", layer) for layer in a.layers]
    err0 = (g["a"][1] - cores[1].array_weights().detach()).flatten()[:20]
    err1 = (g["a"][2] - cores[2].array_weights().detach()).flatten()[:20]
    assert not torch.allclose(err0, err1)


def test_run_trains_deploys_and_evaluates_a_conv_network(tmp_path, one_thread):
    """``training.loop.run`` end to end with a conv network: programmed on PCM tiles and read at
    two inference times in noisy mode; the deployed accuracy is a valid fraction per row."""
    from training.loop import run

    cfg = RunConfig.from_dict({
        "seed": 0, "data": {"dataset": "fashion_mnist", "batch_size": 32, "train_subset": 64, "eval_subset": 64},
        "network": {"kind": "conv", "channels": [2, 4], "hidden": [], "time_steps": 2},
        "hardware": {"mode": "noisy", "tile_rows": 32, "tile_cols": 32}, "train": {"epochs": 1},
        "evaluate": {"modes": ["noisy"], "times": [1.0, 86400.0], "time_steps": [2]}})
    results = run(cfg, tmp_path, progress=False)
    rows = [r for r in results["evaluation"] if r["mode"] == "noisy"]
    assert {r["t"] for r in rows} >= {1.0, 86400.0}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert (tmp_path / "results.json").is_file() and (tmp_path / "evaluation.csv").is_file()


def test_inference_splits_large_batches_into_bounded_chunks(monkeypatch):
    """Without gradients a batch whose samples x time steps exceed MAX_SAMPLE_STEPS runs in
    chunks (memory of one chunk, not of T x batch: the T = 64 evaluation of the Fashion-MNIST net
    peaked above 20 GB before), with the outputs of the unsplit batch; training passes are whole."""
    import training.conv_model as conv_model

    torch.manual_seed(1)
    model = SpikingConvNet((1, 12, 12), 3, {"channels": [2, 3], "kernel_size": 3, "v_th": 0.1, "input_scale": 2.0},
                           IDEAL_EXACT).double()
    x = _images(10).double()
    with torch.no_grad():
        whole = model(x, time_steps=6)
    calls = []
    model.convs[0].register_forward_hook(lambda mod, inp, out: calls.append(len(inp[0])))
    monkeypatch.setattr(conv_model, "MAX_SAMPLE_STEPS", 24)  # 4 samples per chunk at T = 6
    with torch.no_grad():
        split = model(x, time_steps=6)
    assert calls == [4, 4, 2]
    assert torch.allclose(split, whole, rtol=1e-12, atol=1e-14) and float(whole.abs().max()) > 1e-3
    calls.clear()
    out = model(x, time_steps=6)  # with gradients: one pass (BPTT needs the whole graph)
    assert calls == [10] and out.requires_grad


def test_accuracy_builds_no_autograd_graph():
    torch.manual_seed(0)
    model = SpikingConvNet((1, 12, 12), 3, {"channels": [2, 3], "kernel_size": 3}, IDEAL_EXACT)
    seen = []
    model.linears[-1].register_forward_hook(lambda mod, inp, out: seen.append(out.requires_grad))
    accuracy(model, (_images(5).flatten(1), torch.zeros(5, dtype=torch.int64)), batch_size=5, time_steps=2)
    assert seen == [False] and model.training  # no graph; the model's mode restored
