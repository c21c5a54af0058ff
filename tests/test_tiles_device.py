"""Device placement (issue 13): every tensor, generator and device model of a layer on the layer's
device; state dicts that load across nn.Linear / devices; the run-level ``device`` option.
CUDA tests skip without a GPU."""
import pytest
import torch
from torch import nn

from training import CrossbarConv2d, CrossbarLinear, HardwareConfig, NetworkConfig, SpikingMLP
from training.config import RunConfig, check_device, resolve_device

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
HW = HardwareConfig(mode="noisy", tile_rows=8, tile_cols=8, seed=1)

pytestmark = pytest.mark.usefixtures("one_thread")


def layer_tensors(layer: CrossbarLinear) -> list[torch.Tensor]:
    """Every tensor a layer holds, including its deployment and caches."""
    out = list(layer.parameters()) + list(layer.buffers())
    dep = layer._deployment
    if dep is not None:
        out += [dep.g, dep.alpha, dep.compensation.reference]
        out += [t for dev in dep.devices.arrays for t in vars(dev).values() if torch.is_tensor(t)]
    for cache in (layer._w_deployed, layer._w_circuit, layer._correction):
        if cache is not None:
            out += [t for t in (cache if isinstance(cache, tuple) else (cache,)) if t is not None]
    return out


def test_a_plain_linear_state_dict_loads_and_extra_state_is_optional():
    lin = nn.Linear(5, 3)
    layer = CrossbarLinear(5, 3, hardware=HW)
    result = layer.load_state_dict(lin.state_dict())  # strict: no missing adc_peak / _extra_state
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(layer.weight, lin.weight) and torch.equal(layer.bias, lin.bias)
    # an old checkpoint's extra state (generator only, no device type) and one from another device type
    other = CrossbarLinear(5, 3, hardware=HW)
    state = other.state_dict()
    old = dict(state, _extra_state={"generator": state["_extra_state"]["generator"]})
    layer.load_state_dict(old)
    cuda_state = dict(state, _extra_state={**state["_extra_state"], "generator_device": "cuda"})
    layer.load_state_dict(cuda_state)  # cannot continue a CUDA stream on the CPU: keeps its fresh seed
    with pytest.raises(RuntimeError, match="Unexpected"):
        layer.load_state_dict({**lin.state_dict(), "bogus": torch.zeros(1)})


def test_everything_of_a_layer_follows_to_and_dtype():
    torch.manual_seed(0)
    layer = CrossbarLinear(12, 6, hardware=HW.replace(mode="circuit"))
    layer.train()
    layer(torch.rand(3, 12))  # circuit correction cached
    layer.deploy(86400.0)
    layer.eval()
    layer(torch.rand(3, 12))
    device = layer.weight.device
    assert all(t.device == device for t in layer_tensors(layer))
    gen, count = layer._generators()
    assert gen.device == device and count.device.type == "cpu"  # fault counts are CPU scalars by design
    x = torch.rand(2, 12, generator=torch.Generator().manual_seed(1))
    y_before = layer(x)
    layer.to(torch.float64)  # dtype-bound caches are rebuilt, deployment kept
    assert layer.deployed and layer.effective_weights().dtype == torch.float64
    torch.testing.assert_close(layer(x.double()).float(), y_before, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="is on"):
        layer(torch.rand(2, 12, device="meta", dtype=torch.float64))


def test_generators_are_recreated_deterministically_per_device():
    a = CrossbarLinear(4, 3, hardware=HW, layer_id=2)
    b = CrossbarLinear(4, 3, hardware=HW, layer_id=2)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.effective_weights(), b.effective_weights(), rtol=0, atol=0)
    # the seed path: a different layer id or seed is a different stream
    c = CrossbarLinear(4, 3, hardware=HW, layer_id=3)
    c.load_state_dict({k: v for k, v in a.state_dict().items() if k != "_extra_state"})
    assert not torch.equal(a.effective_weights(), c.effective_weights())


def test_conv_layer_offers_the_layer_api():
    conv = CrossbarConv2d(1, 2, 3, hardware=HW)
    conv.deploy(1.0, repeat=1)
    assert conv.deployed and conv.linear.t_inference == 1.0
    conv.set_inference_time(10.0)
    conv.set_mode("circuit")
    assert conv.hardware.mode == "circuit" and conv.effective_weights().shape == (10, 2)
    conv.undeploy()
    conv.clip_weights_()
    assert not conv.deployed


def test_run_device_option():
    for good in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert check_device(good) == good
    for bad in ("gpu", "cuda:", "cuda:-1", "cuda:01", "CPU", 0, None, "cuda:x"):
        with pytest.raises(ValueError, match="device"):
            RunConfig(device=bad)
    cfg = RunConfig(device="cpu")
    assert RunConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["device"] == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():  # nothing falls back to the CPU silently
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    from training.cli import build_parser, train_config
    args = build_parser().parse_args(["train", "--device", "cpu", "--epochs", "1"])
    assert train_config(args).device == "cpu"


def test_spiking_mlp_moves_its_generators():
    net = NetworkConfig(hidden=(4,), encoding="rate", time_steps=3)
    model = SpikingMLP(2, 2, net, HW, device="cpu")
    assert model.encode_generator.device.type == "cpu" and model.device.type == "cpu"
    state = model.state_dict()
    state["_extra_state"] = {**state["_extra_state"], "encode_generator_device": "cuda"}
    model.load_state_dict(state)  # another device type's stream is not continued
    model(torch.rand(5, 2))


# ---------------------------------------------------------------------- CUDA (skipped without a GPU)
@CUDA
@pytest.mark.parametrize("mode", ["ideal", "noisy", "circuit"])
def test_cuda_training_step_in_every_mode(mode):
    torch.manual_seed(0)
    model = SpikingMLP(4, 3, NetworkConfig(hidden=(16,), time_steps=4), HW.replace(mode=mode), device="cuda")
    x = torch.rand(8, 4, device="cuda")
    loss = model(x).square().sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in model.parameters())
    for layer in model.layers:
        assert layer._generators()[0].device.type == "cuda"


@CUDA
def test_cuda_deploy_and_evaluate_equal_the_cpu_in_ideal_mode():
    torch.manual_seed(0)
    cpu = SpikingMLP(4, 3, NetworkConfig(hidden=(16,), time_steps=4), HW.replace(mode="ideal", dac_bits=None,
                                                                                  adc_bits=None))
    gpu = SpikingMLP(4, 3, NetworkConfig(hidden=(16,), time_steps=4), cpu.layers[0].hardware).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(8, 4)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-4, atol=1e-5)
    gpu.set_hardware(HW)
    gpu.deploy(86400.0, repeat=1)
    for mode in ("noisy", "circuit"):
        gpu.set_mode(mode)
        assert torch.isfinite(gpu(x.cuda())).all()
    assert all(t.device.type == "cuda" for layer in gpu.layers for t in layer_tensors(layer))


@CUDA
def test_cuda_mif_network_and_tiled_crossbar():
    from xbar import DifferentialMapping
    from xbar.tiling import TiledCrossbar

    net = NetworkConfig(hidden=(3,), neuron="mif", dt=1e-6, time_steps=4, readout="mean")
    model = SpikingMLP(2, 2, net, HardwareConfig(mode="noisy", dac_bits=None, adc_bits=None), device="cuda")
    model(torch.rand(4, 2, device="cuda")).sum().backward()
    assert model.neuron_generator.device.type == "cuda"
    w = torch.rand(12, 5, dtype=torch.float64, device="cuda")
    tc = TiledCrossbar(w, (8, 4), DifferentialMapping(1e-6, 4e-5), cells={"family": "rram"})
    assert tc(torch.rand(3, 12, dtype=torch.float64, device="cuda")).device.type == "cuda"
