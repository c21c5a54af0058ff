"""ANN→SNN conversion (Rueckauer et al. 2017): IF rates approach the ReLU activations with T."""
import pytest
import torch

from training.config import RunConfig
from training.conversion import convert, relu_mlp, train_ann
from training.loop import accuracy, load_data

IDEAL = {"mode": "ideal", "dac_bits": "none", "adc_bits": "none"}


@pytest.fixture(scope="module")
def converted():
    torch.set_num_threads(1)
    cfg = RunConfig.from_dict({"train": {"epochs": 3}, "network": {"hidden": [32]}, "hardware": IDEAL})
    splits, n_in, n_cls = load_data(cfg)
    ann = train_ann(cfg, splits, n_in, n_cls)
    return cfg, splits, ann, convert(ann, cfg, splits.train.X[:1000])


def test_converted_snn_approaches_the_ann_with_more_time_steps(converted):
    cfg, splits, ann, snn = converted
    with torch.no_grad():
        acc_ann = float((ann(splits.test.X).argmax(1) == splits.test.y).float().mean())
    acc = {t: accuracy(snn, splits.test, time_steps=t) for t in (4, 200)}
    assert acc_ann > 0.6
    assert abs(acc[200] - acc_ann) <= 0.03          # rate code converges to the ReLU network
    assert acc[4] < acc[200]                         # too few steps: quantised rates


def test_converted_weights_fit_the_crossbar_and_rates_match_normalised_activations(converted):
    cfg, splits, ann, snn = converted
    for layer in snn.layers:
        assert float(layer.weight.detach().abs().max()) <= cfg.hardware.w_max + 1e-6
    assert snn.network.neuron == "if" and snn.network.reset == "subtract"
    # hidden spike rate over many steps == clipped normalised ReLU activation (within 1/T)
    x = splits.test.X[:64]
    with torch.no_grad():
        hidden = snn.neurons[0](snn.layers[0](snn.encode(x, 400)))
        rate = hidden.mean(0)
        a = torch.relu(ann[0](x))
        lam = torch.quantile(torch.relu(ann[0](splits.train.X[:1000])).flatten(), 0.999)
        target = (a / lam).clamp(max=1.0)
    assert float((rate - target).abs().max()) < 0.02


def test_bad_inputs_raise():
    cfg = RunConfig.from_dict({"network": {"hidden": [8]}, "hardware": IDEAL})
    ann = relu_mlp([4, 8, 3])
    with pytest.raises(ValueError, match="percentile"):
        convert(ann, cfg, torch.rand(10, 4), percentile=0.0)
    with pytest.raises(ValueError, match="linear layers"):
        convert(relu_mlp([4, 8, 8, 3]), cfg, torch.rand(10, 4))


def test_conversion_as_a_training_method_of_the_loop_and_of_sweeps(tmp_path):
    from training.loop import train
    from training.sweeps import run as run_sweep
    from training.sweeps.store import Store

    cfg = RunConfig.from_dict({"train": {"epochs": 2, "method": "conversion", "threads": 1},
                               "network": {"hidden": [16], "time_steps": 30}, "hardware": IDEAL})
    model, history = train(cfg, tmp_path / "run", progress=False)
    assert model.network.neuron == "if" and history[-1]["val_accuracy"] > 0.5
    again, history2 = train(cfg, tmp_path / "run", progress=False)  # resumes: same converted network
    assert history2 == history and again.network == model.network
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        if torch.is_tensor(a):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="train.method"):
        RunConfig.from_dict({"train": {"method": "evolution"}})

    spec = """
[study]
name = "methods"

[base]
network = { hidden = [8], time_steps = 10 }
hardware = { mode = "ideal", family = "pcm" }
train = { epochs = 1 }

[deploy]
mode = "noisy"

[grid]
"train.method" = ["surrogate", "conversion"]
"deploy.t" = [1.0]
"""
    summary = run_sweep(spec, tmp_path / "sweep", workers=0, progress=False)
    assert summary["done"] == 2 and summary["failed"] == 0
    with Store(tmp_path / "sweep") as store:
        assert len(store.statuses()) == 2
