"""The IBM aihwkit side of ``bench/aihwkit_compare.py``: run by the aihwkit virtual environment's
Python (``$AIHWKIT_PYTHON``), never imported by memxbar.

Reads ``weights_*.npy`` (each ``(out, in)``, float32, layers in order, ReLU between them, no
biases), ``test_x.npy`` ``(n, in)`` and ``test_y.npy`` ``(n,)`` from the exchange directory given
as the first argument, and ``job.json`` (``{"times": [...], "device_seeds": N, "g_max_uS": 25}``);
writes ``aihwkit.json``: ``{"accuracy": {seed: {t: acc}}, "version": ...}``.

Conditions (mirroring memxbar's deployment, module docstring of ``bench/aihwkit_compare.py``):
``InferenceRPUConfig`` with a perfect forward pass (no DAC/ADC quantisation, no output noise, no
IR drop: ``forward.is_perfect = True``), ``PCMLikeNoiseModel(g_max=25 uS)`` with aihwkit's
``SinglePairConductanceConverter`` (one device of each pair at g_min = 0, max |W| of the layer
at g_max), ``GlobalDriftCompensation``, one tile per layer (no splitting), digital output scale
off (``weight_scaling_omega = 0``). Device seed k: ``torch.manual_seed(k)`` before
``program_analog_weights()``; then ``drift_analog_weights(t)`` for every t (t counts from the end
of programming; the noise model adds t0 = 20 s).
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch


def main(folder: str) -> None:
    import aihwkit
    from aihwkit.inference.compensation.drift import GlobalDriftCompensation
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.simulator.configs import InferenceRPUConfig

    torch.set_num_threads(1)
    folder = Path(folder)
    job = json.loads((folder / "job.json").read_text())
    weights = [torch.from_numpy(np.load(p)) for p in sorted(folder.glob("weights_*.npy"))]
    x = torch.from_numpy(np.load(folder / "test_x.npy"))
    y = torch.from_numpy(np.load(folder / "test_y.npy")).long()

    layers = []
    for k, w in enumerate(weights):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        layers.append(lin)
        if k < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)

    rpu = InferenceRPUConfig()
    rpu.forward.is_perfect = True
    rpu.noise_model = PCMLikeNoiseModel(g_max=float(job["g_max_uS"]))
    rpu.drift_compensation = GlobalDriftCompensation()
    rpu.mapping.weight_scaling_omega = 0.0
    rpu.mapping.max_input_size = 0
    rpu.mapping.max_output_size = 0
    analog = convert_to_analog(net, rpu)
    analog.eval()
    tiles = sum(1 for _ in analog.analog_tiles())

    first = next(iter(analog.analog_tiles()))
    out = {"accuracy": {}, "weight_error": {}, "version": aihwkit.__version__, "tiles": tiles,
           "torch": torch.__version__}
    for seed in range(int(job["device_seeds"])):
        torch.manual_seed(seed)
        analog.program_analog_weights()
        accs, errs = {}, {}
        for t in job["times"]:
            analog.drift_analog_weights(float(t))
            with torch.no_grad():
                pred = analog(x).argmax(1)
            accs[str(float(t))] = float((pred == y).float().mean())
            # relative L2 error of the first layer's compensated weights
            w_t = first.tile.get_weights() * first.alpha
            errs[str(float(t))] = float((w_t - weights[0]).norm() / weights[0].norm())
        out["accuracy"][str(seed)] = accs
        out["weight_error"][str(seed)] = errs
    tmp = folder / "aihwkit.json.tmp"
    tmp.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / "aihwkit.json")


if __name__ == "__main__":
    main(sys.argv[1])
