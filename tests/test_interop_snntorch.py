"""snnTorch interop: an snnTorch network (snn.Leaky, spikegen) and a plain torch ANN, converted,
trained hardware-aware on digits for a few steps, deployed and evaluated 1 s and 1 day later."""
import pytest
import torch
from torch import nn

import training
from training import (CrossbarLinear, HardwareConfig, clip_after_step, convert_to_crossbar, crossbar_layers, deploy,
                      hardware_mode, set_inference_time)
from training.data import digits, make_loader
from training.energy import measure_energy

snn = pytest.importorskip("snntorch", reason="snnTorch is a test extra (pip install -e '.[test]')")
from snntorch import spikegen  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

HW = HardwareConfig(mode="noisy", family="pcm", tile_rows=32, tile_cols=32)


class SnnTorchNet(nn.Module):
    """The snnTorch tutorial pattern: rate-coded input spikes, two Leaky layers, a step loop."""

    def __init__(self, steps: int = 8):
        super().__init__()
        self.steps = steps
        self.fc1, self.lif1 = nn.Linear(64, 64), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(64, 10), snn.Leaky(beta=0.9)

    def forward(self, x):
        spikes = spikegen.rate(x, num_steps=self.steps)            # (T, batch, 64)
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = 0
        for t in range(self.steps):
            spk1, mem1 = self.lif1(self.fc1(spikes[t]), mem1)
            _, mem2 = self.lif2(self.fc2(spk1), mem2)
            out = out + mem2
        return out / self.steps


def _train_deploy_evaluate(net: nn.Module, epochs: int = 2) -> dict:
    """The user's workflow: convert, train with one extra line, deploy once, read at 1 s and 1 day."""
    splits = digits(0)
    model = convert_to_crossbar(net, HW)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    clip_after_step(opt, model)                                   # the one extra line
    for epoch in range(epochs):
        for x, y in make_loader(splits.train, 64, seed=epoch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    w_max = HW.w_max
    assert all(float(layer.weight.detach().abs().max()) <= w_max for _, layer in crossbar_layers(model))
    deploy(model, 1.0)
    acc = {"1s": training.accuracy(model, splits.test)}
    set_inference_time(model, 86400.0)
    acc["1day"] = training.accuracy(model, splits.test)
    with hardware_mode(model, "circuit"):
        acc["1day_circuit"] = training.accuracy(model, splits.test)
    acc["energy"] = measure_energy(model, splits.test.X[:50])
    return acc


def test_snntorch_network_trains_deploys_and_keeps_accuracy():
    torch.manual_seed(0)
    net = SnnTorchNet()
    model = convert_to_crossbar(net, HW)
    assert isinstance(model.fc1, CrossbarLinear) and isinstance(model.lif1, snn.Leaky)   # neurons untouched
    acc = _train_deploy_evaluate(net)
    assert acc["1s"] > 0.8 and acc["1day"] > 0.8 and acc["1day_circuit"] > 0.8    # chance: 0.1
    r = acc["energy"]
    assert r.time_steps == 8 and r.spikes_per_inference > 0 and r.energy_per_inference_J > 0


def test_plain_torch_ann_trains_deploys_and_keeps_accuracy():
    torch.manual_seed(1)
    acc = _train_deploy_evaluate(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), epochs=3)
    assert acc["1s"] > 0.85 and acc["1day"] > 0.85 and acc["1day_circuit"] > 0.85
    assert acc["energy"].time_steps == 1 and acc["energy"].breakdown_J["array"] > 0
