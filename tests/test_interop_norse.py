"""Norse interop: a Norse network (Poisson encoder, LIFCell, LICell readout), converted, trained
hardware-aware on digits for a few steps, deployed and evaluated 1 s and 1 day later."""
import pytest
import torch
from torch import nn

import training
from training import (CrossbarLinear, HardwareConfig, clip_after_step, convert_to_crossbar, deploy, hardware_mode,
                      set_inference_time)
from training.data import digits, make_loader
from training.energy import measure_energy

norse = pytest.importorskip("norse.torch", reason="Norse is a test extra (installed by tools/setup.sh)")

pytestmark = pytest.mark.usefixtures("one_thread")


class NorseNet(nn.Module):
    """Norse's step-wise style: Poisson input spikes, a LIF layer with synaptic current, an LI readout."""

    def __init__(self, steps: int = 10):
        super().__init__()
        self.steps = steps
        self.encoder = norse.PoissonEncoder(steps, f_max=500)
        self.fc1, self.lif1 = nn.Linear(64, 64), norse.LIFCell()
        self.fc2, self.readout = nn.Linear(64, 10), norse.LICell()

    def forward(self, x):
        spikes = self.encoder(x)
        s1 = s2 = None
        out = 0
        for t in range(self.steps):
            z, s1 = self.lif1(5 * self.fc1(spikes[t]), s1)
            v, s2 = self.readout(5 * self.fc2(z), s2)
            out = out + v
        return out / self.steps


def test_norse_network_trains_deploys_and_keeps_accuracy():
    torch.manual_seed(0)
    splits = digits(0)
    model = convert_to_crossbar(NorseNet(), HardwareConfig(mode="noisy", family="rram", tile_rows=32, tile_cols=32))
    assert isinstance(model.fc1, CrossbarLinear) and isinstance(model.lif1, norse.LIFCell)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    clip_after_step(opt, model)
    for epoch in range(2):
        for x, y in make_loader(splits.train, 64, seed=epoch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    deploy(model, 1.0)
    acc_1s = training.accuracy(model, splits.test)
    set_inference_time(model, 86400.0)
    acc_1day = training.accuracy(model, splits.test)
    with hardware_mode(model, "circuit"):
        acc_circuit = training.accuracy(model, splits.test)
    assert acc_1s > 0.7 and acc_1day > 0.5 and acc_circuit > 0.5         # chance: 0.1; RRAM relaxes over a day
    r = measure_energy(model, splits.test.X[:50])
    assert r.time_steps == 10 and r.spikes_per_inference > 0
