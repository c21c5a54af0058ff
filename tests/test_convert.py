"""Bring your own model: conversion, model-wide hardware helpers, the training API, batch-first input."""
import copy

import pytest
import torch
from torch import nn

import training
from training import (LIF, CrossbarConv2d, CrossbarLinear, HardwareConfig, LeakyIntegrator, RunConfig, SpikingMLP,
                      clip_after_step, convert_to_crossbar, crossbar_layers, deploy, get_hardware, hardware_mode,
                      set_hardware, set_inference_time, undeploy, use_hardware)
from training.data import Split, digits

pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = HardwareConfig(dac_bits=None, adc_bits=None)   # no converters: ideal mode is x @ W + b


class UserNet(nn.Module):
    """A user's module: conv, batch norm, pooling, a tied linear layer, an own forward."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.fc = nn.Linear(4 * 4 * 4, 10)
        self.head = nn.Sequential(nn.ReLU(), self.fc)      # the same module used twice
        self.out = nn.Linear(10, 3)

    def forward(self, x):
        return self.out(self.head(self.features(x).flatten(1)) + self.fc.bias)


def test_converted_model_computes_the_same_and_the_original_is_untouched():
    torch.manual_seed(0)
    net = UserNet().eval()
    before = copy.deepcopy(net.state_dict())
    model = convert_to_crossbar(net, EXACT)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)
    assert isinstance(model.features[0], CrossbarConv2d) and isinstance(model.fc, CrossbarLinear)
    assert isinstance(model.features[1], nn.BatchNorm2d) and isinstance(model.features[3], nn.MaxPool2d)
    assert model.head[1] is model.fc                      # tied module: one crossbar layer
    assert [n for n, _ in crossbar_layers(model)] == ["features.0", "fc", "out"]
    assert [layer.linear.layer_id if isinstance(layer, CrossbarConv2d) else layer.layer_id
            for _, layer in crossbar_layers(model)] == [0, 1, 2]   # distinct device seed paths
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())   # deep copy converted
    assert isinstance(net.fc, nn.Linear)


def test_plain_state_dicts_load_without_missing_keys():
    torch.manual_seed(1)
    net = UserNet().eval()
    model = convert_to_crossbar(net, EXACT)
    other = UserNet().eval()
    result = model.load_state_dict(other.state_dict())    # strict: conv (4-D) and linear weights map
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), other(x), atol=1e-5)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    layer = convert_to_crossbar(conv, EXACT)
    assert torch.equal(layer.conv_weight(), conv.weight) and layer.stride == (2, 2)
    assert not layer.load_state_dict(nn.Conv2d(2, 3, 3).state_dict()).missing_keys


def test_weights_beyond_w_max_are_refused_fitted_or_set():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[2].weight.fill_(3.0)
    with pytest.raises(ValueError, match=r"layer '2'.*w_max = 1.*w_max='fit'"):
        convert_to_crossbar(net, EXACT)
    fitted = convert_to_crossbar(net, EXACT, w_max="fit")
    assert fitted[2].hardware.w_max == pytest.approx(3.0) and fitted[0].hardware.w_max < 1.0
    x = torch.rand(4, 3)
    with torch.no_grad():
        assert torch.allclose(fitted(x), net(x), atol=1e-5)
    assert convert_to_crossbar(net, EXACT, w_max=5.0)[0].hardware.w_max == 5.0
    with pytest.raises(ValueError, match="w_max"):
        convert_to_crossbar(net, EXACT, w_max=-1.0)


def test_per_layer_overrides_by_type_then_name():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 4), nn.Linear(4, 2))
    model = convert_to_crossbar(net, HardwareConfig(family="pcm"),
                                overrides={nn.Linear: {"adc_bits": 6}, "3": {"family": "rram", "adc_bits": 4},
                                           "0": HardwareConfig(tile_rows=16, tile_cols=16)})
    hw = get_hardware(model)
    assert hw["0"].tile_rows == 16 and hw["2"].adc_bits == 6 and hw["2"].family == "pcm"
    assert hw["3"].family == "rram" and hw["3"].adc_bits == 4
    with pytest.raises(ValueError, match="overrides keys"):
        convert_to_crossbar(net, overrides={3: {}})
    with pytest.raises(ValueError, match="unknown hardware option"):
        convert_to_crossbar(net, overrides={"0": {"adc_bitz": 4}})
    with pytest.raises(ValueError, match="groups=1"):
        convert_to_crossbar(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)))


def test_multihead_attention_projections_stay_plain():
    mha = nn.Sequential(nn.Linear(4, 8))
    att = nn.MultiheadAttention(8, 2, batch_first=True)
    model = convert_to_crossbar(nn.ModuleDict({"proj": mha, "att": att}))
    assert isinstance(model["proj"][0], CrossbarLinear) and type(model["att"].out_proj) is not CrossbarLinear
    x = torch.rand(2, 3, 8)
    assert model["att"](x, x, x)[0].shape == (2, 3, 8)


def test_model_wide_deploy_read_mode_and_restore():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    model = convert_to_crossbar(net, HardwareConfig(mode="noisy", tile_rows=8, tile_cols=8, crossbar={"r_row": 20.0}))
    model.eval()  # the ADC range tracked in training mode stays fixed
    with pytest.raises(ValueError, match="not deployed"):
        set_inference_time(model, 1.0)
    deploy(model, 1.0)
    assert all(layer.deployed and layer.t_inference == 1.0 for _, layer in crossbar_layers(model))
    set_inference_time(model, 86400.0)
    x = torch.rand(4, 6)
    with torch.no_grad():
        noisy = model(x)
        with hardware_mode(model, "circuit"):
            assert {h.mode for h in get_hardware(model).values()} == {"circuit"}
            circuit = model(x)
        assert {h.mode for h in get_hardware(model).values()} == {"noisy"}
        assert all(layer.deployed and layer.t_inference == 86400.0 for _, layer in crossbar_layers(model))
        assert torch.equal(model(x), noisy) and not torch.allclose(circuit, noisy)   # IR drop of 20 Ohm wires
        with use_hardware(model, adc_bits=4):
            assert {h.adc_bits for h in get_hardware(model).values()} == {4}
        assert {h.adc_bits for h in get_hardware(model).values()} == {8}
        with hardware_mode(model, "ideal"):
            with pytest.raises(RuntimeError, match="boom"):
                with use_hardware(model, HardwareConfig(mode="noisy", adc_bits=5)):
                    raise RuntimeError("boom")
            assert {h.mode for h in get_hardware(model).values()} == {"ideal"}   # restored on errors too
    undeploy(model)
    assert not any(layer.deployed for _, layer in crossbar_layers(model))
    set_hardware(model, {"0": HardwareConfig(adc_bits=3)})
    assert get_hardware(model)["0"].adc_bits == 3 and get_hardware(model)["2"].adc_bits == 8
    with pytest.raises(ValueError, match="no crossbar layers"):
        deploy(nn.Linear(2, 2))


def test_clip_after_step_is_the_one_extra_line():
    model = convert_to_crossbar(nn.Linear(3, 2), HardwareConfig(w_max=0.6))  # |w| <= 1/sqrt(3) at init
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    clip_after_step(opt, model)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    assert float(model.weight.detach().abs().max()) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="Optimizer"):
        clip_after_step("sgd", model)


# ============================================================================= training API
def test_deployment_study_leaves_the_model_unchanged_and_reports_energy():
    torch.manual_seed(3)
    cfg = RunConfig.from_dict({"network": {"hidden": [8], "time_steps": 4, "encoding": "rate"},
                               "hardware": {"mode": "noisy", "tile_rows": 8, "tile_cols": 8},
                               "evaluate": {"times": [1.0, 86400.0], "time_steps": [4], "modes": ["noisy"]}})
    model = SpikingMLP(4, 3, cfg.network, cfg.hardware)
    model.deploy(0.0, repeat=2)
    model.set_inference_time(5.0)
    state = copy.deepcopy(model.state_dict())
    gen = model.encode_generator.get_state()
    split = Split(torch.rand(30, 4), torch.randint(0, 3, (30,)))
    rows = training.deployment_study(model, cfg, split)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items() if not k.endswith("_extra_state"))
    assert torch.equal(model.encode_generator.get_state(), gen)
    assert all(layer.deployed and layer.t_inference == 5.0 and layer.hardware == cfg.hardware for layer in model.layers)
    assert len(rows) == 4 and all(r["energy_per_inference_J"] > 0 and r["latency_per_step_s"] > 0 for r in rows)
    mean, _, n = training.summarise(rows, mode="noisy", family="pcm", sweep="time")
    assert n == 2 and 0.0 <= mean <= 1.0


def test_train_and_run_take_user_arrays_and_datasets(tmp_path):
    torch.manual_seed(4)
    splits = digits(0)
    cfg = RunConfig.from_dict({"name": "mine", "data": {"batch_size": 64}, "network": {"hidden": [16], "time_steps": 4},
                               "train": {"epochs": 1, "threads": 0},
                               "evaluate": {"times": [1.0], "time_steps": [4], "modes": ["noisy"]}})
    results = training.run(cfg, tmp_path / "a", progress=False, data=(splits.train.X.numpy(), splits.train.y.numpy()),
                           eval_data=torch.utils.data.TensorDataset(splits.test.X[:100], splits.test.y[:100]))
    assert results["history"][0]["val_accuracy"] > 0.3            # 10 classes found from the labels
    assert results["energy"]["energy_per_inference_J"] > 0 and results["energy"]["t"] == 1.0
    assert all("energy_per_inference_J" in r for r in results["evaluation"])
    model, _ = training.train(cfg, tmp_path / "a", progress=False, data=splits.train, eval_data=splits.test)  # resumes
    assert model.layers[0].in_features == 64 and model.layers[-1].out_features == 10
    assert training.accuracy(model, (splits.test.X, splits.test.y)) > 0.3
    with pytest.raises(ValueError, match="eval_data"):
        training.train(cfg, tmp_path / "b", data=splits.train)
    with pytest.raises(ValueError, match="labels"):
        training.train(cfg, tmp_path / "b", data=(splits.train.X, splits.train.y - 1.5), eval_data=splits.test)
    with pytest.raises(ValueError, match="features"):
        training.train(cfg, tmp_path / "b", data=splits.train, eval_data=(splits.test.X[:, :10], splits.test.y))


def test_accuracy_takes_any_classifier():
    net = nn.Linear(64, 10)
    split = digits(0).test
    assert 0.0 <= training.accuracy(net, split) <= 1.0
    assert net.training


def test_readme_names_resolve():
    import xbar
    from xbar import GlobalDriftCompensation, TiledArray, TileLayout, TiledCrossbar  # noqa: F401

    assert xbar.writing.__name__ == "xbar.writing"
    assert training.loop.run is training.run and callable(training.deployment_study)
    assert training.evaluate.summarise is training.summarise
    with pytest.raises(AttributeError):
        training.no_such_name  # noqa: B018


# ============================================================================= batch-first sequences
def test_sequence_modules_take_batch_first_input_or_refuse_clearly():
    torch.manual_seed(5)
    x = torch.rand(8, 16, 6) * 2                             # (batch 8, T 16, features 6)
    time_major = LIF()(x.transpose(0, 1))
    assert torch.equal(LIF(batch_first=True)(x), time_major.transpose(0, 1))
    assert torch.equal(LeakyIntegrator(batch_first=True)(x), LeakyIntegrator()(x.transpose(0, 1)).transpose(0, 1))
    with pytest.raises(ValueError, match=r"does not say which axis is time.*LIFCell"):
        LIF()(torch.rand(8, 64))
    with pytest.raises(ValueError, match=r"16 time steps on axis 0.*batch_first=True"):
        LIF(time_steps=16)(x)                                # a batch-first tensor given to a time-major module
    with pytest.raises(ValueError, match=r"axis 1.*time-major, so pass batch_first=False"):
        LIF(batch_first=True, time_steps=8)(x)
    with pytest.raises(ValueError, match="batch_first must be a bool"):
        LIF(batch_first="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ann_of_the_conversion_method_trains_on_the_configured_device():
    from training.conversion import train_ann

    cfg = RunConfig.from_dict({"data": {"dataset": "digits"}, "network": {"hidden": [8]}, "train": {"epochs": 1},
                               "device": "cuda"})
    ann = train_ann(cfg, digits(0), 64, 10)
    assert next(ann.parameters()).device.type == "cpu"       # trained on the GPU, returned on the CPU
    assert 0.0 <= training.accuracy(ann, digits(0).test) <= 1.0
