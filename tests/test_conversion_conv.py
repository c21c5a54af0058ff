"""ANN→SNN conversion of convolutional networks (Rueckauer et al. 2017): IF rates of the converted
conv SNN approach the ReLU twin's normalised activations, and its accuracy the twin's with T."""
import numpy as np
import pytest
import torch
from torch import nn

from training.config import RunConfig
from training.conversion import convert, relu_convnet, relu_twin, train_ann
from training.conv_model import SpikingConvNet
from training.loop import accuracy, load_data, train

IDEAL = {"mode": "ideal", "dac_bits": "none", "adc_bits": "none"}
DIGITS_CONV = {"data": {"dataset": "digits"}, "train": {"epochs": 30, "lr": 1e-2},
               "network": {"kind": "conv", "channels": [6, 12], "hidden": [32], "pool": "avg", "time_steps": 8},
               "hardware": IDEAL}


@pytest.fixture(scope="module")
def converted():
    torch.set_num_threads(1)
    cfg = RunConfig.from_dict(DIGITS_CONV)
    splits, in_shape, n_cls = load_data(cfg)
    ann = train_ann(cfg, splits, in_shape, n_cls)
    return cfg, splits, ann, convert(ann, cfg, splits.train.X[:1000])


def _ann_accuracy(ann, split):
    with torch.no_grad():
        return float((ann(split.X.reshape(len(split.X), -1)).argmax(1) == split.y).float().mean())


def test_converted_conv_snn_approaches_the_ann_with_more_time_steps(converted):
    cfg, splits, ann, snn = converted
    assert isinstance(snn, SpikingConvNet) and snn.network.neuron == "if" and snn.network.pool == "avg"
    acc_ann = _ann_accuracy(ann, splits.test)
    acc = {t: accuracy(snn, splits.test, time_steps=t) for t in (2, 128)}
    assert acc_ann > 0.9
    assert abs(acc[128] - acc_ann) <= 0.03            # the rate code converges to the ReLU network
    assert acc[2] < acc[128]                           # two steps quantise every rate to 0, 1/2, 1


def test_conv_rates_match_the_normalised_relu_activations(converted):
    """First convolution: its IF spike rate over T steps equals the ReLU output divided by the
    99.9th percentile λ_1 (clipped at 1), within 1/T, pixel by pixel."""
    cfg, splits, ann, snn = converted
    x = splits.test.X[:16]
    steps = 400
    with torch.no_grad():
        current = snn.convs[0](x * snn.network.input_scale)
        rate = snn.neurons[0](current.unsqueeze(0).expand(steps, *current.shape)).mean(0)
        calib = torch.relu(ann[1](splits.train.X[:1000]))
        lam = float(np.percentile(calib.double().flatten().numpy(), 99.9))
        target = (torch.relu(ann[1](x)) / lam).clamp(max=1.0)
    assert rate.shape == target.shape
    assert float((rate - target).abs().max()) <= 1.5 / steps + 1e-6
    # the converted weights fit the crossbar range
    for layer in snn.layers:
        assert float(layer.weight.detach().abs().max()) <= cfg.hardware.w_max + 1e-6


def test_conv_conversion_through_the_training_loop_resumes_from_its_checkpoint(tmp_path):
    cfg = RunConfig.from_dict({**DIGITS_CONV, "train": {"epochs": 2, "method": "conversion", "threads": 1},
                               "data": {"dataset": "digits", "train_subset": 300, "eval_subset": 200}})
    model, history = train(cfg, tmp_path, progress=False)
    assert isinstance(model, SpikingConvNet) and model.network.neuron == "if"
    again, history_again = train(cfg, tmp_path, progress=False)        # loads the checkpoint
    assert history_again == history
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(model(x), again(x))
    assert again.network == model.network


def test_bad_conv_conversions_are_refused():
    cfg = RunConfig.from_dict(DIGITS_CONV)
    max_pool = cfg.network.__class__.from_dict({**cfg.network.to_dict(), "pool": "max"})
    with pytest.raises(ValueError, match="network.pool must be 'avg'"):
        relu_convnet((1, 8, 8), 10, max_pool)
    with pytest.raises(ValueError, match=r"weight layers .* needs 4 convolution and linear layers"):
        convert(relu_convnet((1, 8, 8), 10, cfg.network.__class__.from_dict({**cfg.network.to_dict(), "hidden": []})),
                cfg, torch.rand(10, 64))
    mlp = RunConfig.from_dict({"network": {"hidden": [8]}, "hardware": IDEAL})
    with pytest.raises(ValueError, match="weight layers"):
        convert(relu_twin(cfg.network, (1, 8, 8), 10), mlp, torch.rand(10, 64))
    assert isinstance(relu_twin(mlp.network, 4, 3)[0], nn.Linear)
