"""Training recipes that work for every seed: the causes found for issue 14, as tests.

Yin-Yang (4-120-3 LIF). With the old readout (max over time of an LI membrane behind a 5 ms
synapse), an output whose drive is negative has its logit pinned at the first step, ``u_1 = x (1
- a_m - kappa) = 0.009 x``, with 1/80 of the gradient of a positively driven output; 3 seeds of
5 stuck at ~82 % (the "dot" class at ~50 %), and short trainings plateau. The default readout is
the mean over time without synapse (:class:`training.model.NetworkConfig`).

Convolutional network (T = 4): with the MLP's 10 ms / 5 ms readout the logits charge to a few per cent in 4
steps (mean 5.4 %) and with 10 ms membranes the second convolution and the dense layer are silent at
initialisation (no surrogate gradient reaches them); the shipped recipe uses 2 ms membranes.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from training.config import RunConfig
from training.conv_model import ConvNetworkConfig
from training.loop import build_model, load_data, train
from training.model import NetworkConfig
from training.neurons import li_sequence, membrane_max, membrane_mean

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def _readout_gradient(network: NetworkConfig, drive: float, steps: int = 20) -> float:
    """d(logit)/dx for a constant drive x of the LI readout over ``steps`` steps."""
    x = torch.full((steps, 1, 1), drive, dtype=torch.float64, requires_grad=True)
    u, _ = li_sequence(x, network.li_parameters(), network.dt)
    logit = membrane_max(u) if network.readout == "max" else membrane_mean(u)
    logit.sum().backward()
    return float(x.grad.sum())


def test_readout_passes_the_same_gradient_for_negative_and_positive_drive():
    """The default readout (mean, no synapse) is linear in the drive: an output pushed negative
    gets the full gradient back. The old one (max through a 5 ms synapse) pinned it at the first
    step, u_1 = x (1 - a_m - kappa), with < 1/80 of the gradient (the failing seeds)."""
    default = NetworkConfig()
    assert default.readout == "mean" and default.readout_tau_syn is None
    a_m = math.exp(-default.dt / default.readout_tau_mem)
    expected = sum(1 - a_m ** k for k in range(1, 21)) / 20          # mean of the charging curve
    assert _readout_gradient(default, +1.0) == pytest.approx(expected, rel=1e-12)
    assert _readout_gradient(default, -1.0) == pytest.approx(expected, rel=1e-12)
    old = NetworkConfig(readout="max", readout_tau_syn=5e-3)
    a_s = math.exp(-1e-3 / 5e-3)
    kappa = 5e-3 / (5e-3 - 10e-3) * (a_s - a_m)
    assert _readout_gradient(old, -1.0) == pytest.approx(1 - a_m - kappa, rel=1e-9)     # = 0.0091
    assert _readout_gradient(old, -1.0) / _readout_gradient(old, +1.0) < 1 / 80
    # the max readout without the synapse: pinned at u_1 = (1 - a_m) x, a tenth of the gradient
    max_no_syn = NetworkConfig(readout="max")
    assert _readout_gradient(max_no_syn, -1.0) == pytest.approx(1 - a_m, rel=1e-12)
    assert _readout_gradient(max_no_syn, +1.0) == pytest.approx(1 - a_m ** 20, rel=1e-12)


def test_shipped_run_configs_parse_and_build():
    paths = sorted(CONFIGS.glob("*.toml"))
    assert {p.name for p in paths} >= {"mnist_conv.toml", "fashion_mnist_conv.toml", "mnist_mlp.toml",
                                       "fashion_mnist_mlp.toml"}
    for path in paths:
        cfg = RunConfig.from_toml(path)
        assert RunConfig.from_dict(cfg.to_dict()) == cfg
        if isinstance(cfg.network, ConvNetworkConfig):
            assert cfg.network.time_steps <= 25 and cfg.data.dataset in ("mnist", "fashion_mnist")
            assert cfg.network == ConvNetworkConfig()  # the recipe is the default architecture


def test_conv_recipe_fires_in_every_layer_at_initialisation(one_thread):
    """Every spiking layer of the shipped conv recipe is active on MNIST at initialisation (a
    silent layer gets no surrogate gradient), and the 4-step readout reaches most of its drive."""
    cfg = RunConfig.from_toml(CONFIGS / "mnist_conv.toml")
    cfg = RunConfig.from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "train_subset": 200,
                                                         "eval_subset": 10}})
    splits, n_in, n_classes = load_data(cfg)
    model = build_model(cfg, n_in, n_classes)
    rates = []
    for neuron in model.neurons:
        neuron.register_forward_hook(lambda mod, inp, out: rates.append(float(out.mean())))
    with torch.no_grad():
        model(splits.train.X[:100])
    assert len(rates) == 3
    assert all(0.005 < r < 0.5 for r in rates), rates
    li = cfg.network.li_parameters()
    u, _ = li_sequence(torch.ones(cfg.network.time_steps, 1, dtype=torch.float64), li, cfg.network.dt)
    assert float(u.mean()) > 0.5                 # mean readout: > 50 % of the steady state
    old = NetworkConfig(readout_tau_syn=5e-3).li_parameters()
    u_old, _ = li_sequence(torch.ones(cfg.network.time_steps, 1, dtype=torch.float64), old, 1e-3)
    assert float(u_old.mean()) < 0.06            # the MLP readout would charge to < 6 %
    # with the MLP's 10 ms membranes, 4 steps are too short: the deeper layers stay silent
    rates.clear()
    silent = build_model(RunConfig.from_dict({**cfg.to_dict(), "network": {**cfg.network.to_dict(),
                                                                           "tau_mem": 10e-3}}), n_in, n_classes)
    for neuron in silent.neurons:
        neuron.register_forward_hook(lambda mod, inp, out: rates.append(float(out.mean())))
    with torch.no_grad():
        silent(splits.train.X[:100])
    assert rates[1] == 0.0 and rates[2] == 0.0


def test_yin_yang_seed_that_failed_now_trains(tmp_path, one_thread):
    """Training seed 1, one of the issue's failing seeds, with the default recipe and a short
    8-epoch schedule: the old readout left it at 73 % validation accuracy (the "dot" class at
    52 %); the default recipe learns every class (measured 8-epoch runs, seed 1)."""
    cfg = RunConfig.from_dict({"seed": 1, "train": {"epochs": 8}, "hardware": {"mode": "ideal"}})
    model, history = train(cfg, tmp_path, resume=False, progress=False)
    assert history[-1]["val_accuracy"] >= 0.90, history[-1]
    splits, _, _ = load_data(cfg)
    with torch.no_grad():
        pred = model(splits.validation.X).argmax(1)
    per_class = [float((pred[splits.validation.y == c] == c).float().mean()) for c in range(3)]
    assert min(per_class) >= 0.85, per_class
