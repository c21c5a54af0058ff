r"""memxbar's PCM model against IBM aihwkit's ``PCMLikeNoiseModel``: one ANN, deployed by both tools.

One ReLU MLP (784-256-128-10, no biases) is trained once in float on Fashion-MNIST (Adam, 5
epochs, seed 0; cached). The same weights are then deployed

* by **aihwkit** (``InferenceRPUConfig``, ``PCMLikeNoiseModel(g_max = 25 µS)``, its
  ``SinglePairConductanceConverter``, ``GlobalDriftCompensation``; a perfect forward pass) in a
  subprocess of aihwkit's own virtual environment (``$AIHWKIT_PYTHON``, default
  ``/work/peers/aihwkit-venv/bin/python``; :mod:`bench._aihwkit_side`), exchanging weights, test
  data and results as ``.npy``/``.json`` files;
* by **memxbar** (:class:`training.CrossbarLinear` layers, ``mode = "noisy"`` after
  :meth:`deploy`: programmed devices read at t, no IR drop; PCM preset ``joshi2020_pcm``, which
  implements the same publications' model: Nandakumar et al., ICECS 2019; Joshi et al., Nat.
  Commun. 11, 2473 (2020)),

and read at 1 s, 1 h, 1 day and 1 year after programming; accuracy on the 10000 test images,
mean over ``--device-seeds`` device draws (default 10) per tool.

Matched conditions: the same float32 weights; max |W| of each layer at g_max = 25 µS (aihwkit
maps the tile's abs-max weight there; memxbar gets ``w_max = max |W|`` per layer); one tile per
layer in both (aihwkit ``mapping.max_input_size = max_output_size = 0``; memxbar tiles as large
as the layer), so one global drift-compensation factor per layer; ideal converters on both sides
(aihwkit ``forward.is_perfect = True``: no DAC/ADC quantisation or output noise; memxbar
``dac_bits = adc_bits = None``, ``x_max`` = the layer's largest input so nothing saturates); no IR
drop (memxbar noisy mode); read-time convention: both count t from the end of programming and
evaluate the drift and 1/f noise at ``t + t0`` with ``t0 = 20 s``.

What differs, and why it is small:

* **g_min.** aihwkit's pair keeps the idle device at g_min = 0 (its target; programming noise
  of σ = 0.263 µS is clipped at 0, so idle devices sit at +0.105 µS on average); memxbar's
  preset keeps it at g_min = 0.25 µS (CrossSim's window for Joshi's devices, σ_prog = 0.283 µS,
  barely clipped). The table shows memxbar both ways: with the preset window and with
  ``device_params = {g_min = 0}`` (aihwkit's converter). The idle device's noise and drift are
  nearly the same in both (σ_prog(0) ≈ σ_prog(0.25 µS); ν at the floor of the drift fit).
* **Drift compensation readout.** aihwkit reads every tile with the identity matrix and uses the
  mean |output| (mean |W_ij| of the drifted differential weights); memxbar sums the tile's
  conductances (both devices of every pair) in a calibration read at t = 0 and at t. Both are
  one global factor per tile estimating the same mean drift; they weight the devices differently.
* **Reference of the compensation.** aihwkit's baseline is the programmed weights before any
  1/f read noise; memxbar's is a read at t = 0 (with that read's noise): equal in expectation.

Usage: ``python bench/aihwkit_compare.py [--device-seeds 10] [--results DIR] [--epochs 5]``.
aihwkit is a bench-only optional dependency (never a memxbar requirement): without it the bench
says so, prints the memxbar side alone and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._tables import markdown_table  # noqa: E402
from devices._io import atomic_write_bytes  # noqa: E402
from training.crossbar_linear import CrossbarLinear  # noqa: E402
from training.hardware import HardwareConfig  # noqa: E402

AIHWKIT_PYTHON_DEFAULT = "/work/peers/aihwkit-venv/bin/python"
TIMES = (1.0, 3600.0, 86400.0, 31536000.0)
TIME_LABELS = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 31536000.0: "1 year"}
WIDTHS = (784, 256, 128, 10)
G_MAX = 25e-6  # S
#: the memxbar variants: label -> PCM device_params
VARIANTS = {"memxbar (g_min = 0, as aihwkit)": {"g_min": 0.0}, "memxbar (preset, g_min = 0.25 µS)": {}}


def _save_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def load_data():
    from training.images import fashion_mnist

    return fashion_mnist(flatten=True, validation_size=5000)


def train_ann(splits, epochs: int, folder: Path) -> list[torch.Tensor]:
    """The float ReLU MLP (cached as ``weights_k.npy``): weights ``(out, in)`` per layer."""
    paths = [folder / f"weights_{k}.npy" for k in range(len(WIDTHS) - 1)]
    if all(p.is_file() for p in paths):
        return [torch.from_numpy(np.load(p)) for p in paths]
    torch.manual_seed(0)
    layers = []
    for k, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:])):
        layers.append(torch.nn.Linear(a, b, bias=False))
        if k < len(WIDTHS) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    X, y = splits.train.X, splits.train.y
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
    weights = [m.weight.detach().clone() for m in net if isinstance(m, torch.nn.Linear)]
    for p, w in zip(paths, weights):
        _save_npy(p, w.numpy())
    return weights


def float_accuracy(weights, X, y) -> float:
    h = X
    for k, w in enumerate(weights):
        h = h @ w.t()
        if k < len(weights) - 1:
            h = h.relu()
    return float((h.argmax(1) == y).float().mean())


def memxbar_network(weights, X, device_params: dict) -> torch.nn.Sequential:
    """CrossbarLinear layers holding ``weights``, PCM ``joshi2020_pcm`` (module docstring)."""
    layers, h = [], X
    for k, w in enumerate(weights):
        out_f, in_f = w.shape
        hw = HardwareConfig(mode="noisy", family="pcm", preset="joshi2020_pcm", device_params=dict(device_params),
                            g_max=G_MAX, w_max=float(w.abs().max()), tile_rows=in_f, tile_cols=2 * out_f,
                            dac_bits=None, adc_bits=None, x_max=float(h.abs().max()) * 1.001,
                            drift_compensation=True, seed=0)
        layer = CrossbarLinear(in_f, out_f, bias=False, hardware=hw, layer_id=k)
        with torch.no_grad():
            layer.weight.copy_(w)
        layers.append(layer)
        h = h @ w.t()
        if k < len(weights) - 1:
            layers.append(torch.nn.ReLU())
            h = h.relu()
    return torch.nn.Sequential(*layers).eval()


@torch.no_grad()
def memxbar_side(weights, X, y, device_params: dict, device_seeds: int, times) -> dict:
    """``{"accuracy": {seed: {t: acc}}, "weight_error": {seed: {t: rel. L2 error of layer 1}}}``."""
    net = memxbar_network(weights, X, device_params)
    linears = [m for m in net if isinstance(m, CrossbarLinear)]
    out = {"accuracy": {}, "weight_error": {}}
    for seed in range(device_seeds):
        for layer in linears:
            layer.deploy(0.0, repeat=seed)
        accs, errs = {}, {}
        for t in times:
            for layer in linears:
                layer.set_inference_time(float(t))
            accs[str(float(t))] = float((net(X).argmax(1) == y).float().mean())
            w_eff = linears[0].effective_weights().t()
            errs[str(float(t))] = float((w_eff - weights[0]).norm() / weights[0].norm())
        out["accuracy"][str(seed)] = accs
        out["weight_error"][str(seed)] = errs
    return out


def aihwkit_python() -> str:
    return os.environ.get("AIHWKIT_PYTHON", AIHWKIT_PYTHON_DEFAULT)


def aihwkit_available(python: str) -> tuple[bool, str]:
    """Whether ``python`` exists and imports aihwkit (and which version)."""
    if not Path(python).is_file():
        return False, f"{python} does not exist"
    proc = subprocess.run([python, "-c", "import aihwkit; print(aihwkit.__version__)"], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        return False, (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return True, proc.stdout.strip()


def aihwkit_side(folder: Path, X, y, device_seeds: int, times, python: str) -> dict:
    """Run :mod:`bench._aihwkit_side` in aihwkit's environment on the exchange folder (cached)."""
    job = {"times": [float(t) for t in times], "device_seeds": device_seeds, "g_max_uS": G_MAX * 1e6}
    result = folder / "aihwkit.json"
    if (folder / "job.json").is_file() and json.loads((folder / "job.json").read_text()) == job and result.is_file():
        return json.loads(result.read_text())
    _save_npy(folder / "test_x.npy", X.numpy())
    _save_npy(folder / "test_y.npy", y.numpy().astype(np.int64))
    _save_json(folder / "job.json", job)
    result.unlink(missing_ok=True)
    script = Path(__file__).resolve().parent / "_aihwkit_side.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([python, str(script), str(folder)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the aihwkit side failed:\n{proc.stderr[-3000:]}")
    return json.loads(result.read_text())


def _stats(side: dict, t: float, what: str = "accuracy") -> tuple[float, float]:
    values = [seeds[str(float(t))] for seeds in side[what].values()]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(sides: dict[str, dict], times, reference: str | None) -> str:
    header = ["read time"] + [f"{name}: accuracy (%)" for name in sides]
    if reference is not None:
        header += [f"{name} − aihwkit (points)" for name in sides if name != reference] + ["within 1 point"]
    body = []
    for t in times:
        row = [TIME_LABELS.get(t, f"{t:g} s")]
        means = {}
        for name, side in sides.items():
            m, sd = _stats(side, t)
            means[name] = m
            e, _ = _stats(side, t, "weight_error")
            row.append(f"{100 * m:.2f} ± {100 * sd:.2f} (layer-1 weight error {100 * e:.1f} %)")
        if reference is not None:
            diffs = [100 * (means[n] - means[reference]) for n in sides if n != reference]
            row += [f"{d:+.2f}" for d in diffs] + ["PASS" if all(abs(d) <= 1.0 for d in diffs) else "FAIL"]
        body.append(row)
    return markdown_table(header, body)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device-seeds", type=int, default=10, help="device draws per tool (default 10, >= 5)")
    p.add_argument("--epochs", type=int, default=5, help="float training epochs of the ANN (default 5)")
    p.add_argument("--results", type=Path, default=Path("results/aihwkit_compare"))
    p.add_argument("--export", type=Path, default=None, help="write the accuracies as JSON here")
    args = p.parse_args(argv)
    if args.device_seeds < 1 or args.epochs < 1:
        p.error("--device-seeds and --epochs must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    folder = args.results / f"exchange_epochs{args.epochs}"
    folder.mkdir(parents=True, exist_ok=True)
    splits = load_data()
    X, y = splits.test.X, splits.test.y
    weights = train_ann(splits, args.epochs, folder)
    print(f"bench/aihwkit_compare.py: ReLU MLP {'-'.join(map(str, WIDTHS))} (no biases), float test accuracy "
          f"{100 * float_accuracy(weights, X, y):.2f} %; {args.device_seeds} device seeds; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    sides: dict[str, dict] = {}
    python = aihwkit_python()
    ok, info = aihwkit_available(python)
    if ok:
        sides[f"aihwkit {info}"] = aihwkit_side(folder, X, y, args.device_seeds, TIMES, python)
        reference = f"aihwkit {info}"
    else:
        print(f"aihwkit is not available ({info}): it is a bench-only optional dependency (set AIHWKIT_PYTHON to "
              "the Python of an environment with aihwkit installed); showing the memxbar side only")
        reference = None
    for name, params in VARIANTS.items():
        cache = folder / f"memxbar_{'_'.join(f'{k}{v}' for k, v in params.items()) or 'preset'}_{args.device_seeds}.json"
        side = json.loads(cache.read_text()) if cache.is_file() else None
        if side is None:
            side = memxbar_side(weights, X, y, params, args.device_seeds, TIMES)
            _save_json(cache, side)
        sides[name] = side
    print(f"\ntotal {time.perf_counter() - t0:.0f} s\n")
    print(table(sides, TIMES, reference))
    if args.export is not None:
        _save_json(args.export, {"command": "python bench/aihwkit_compare.py " + " ".join(sys.argv[1:]),
                                 "times": list(TIMES), "sides": {k: v["accuracy"] for k, v in sides.items()},
                                 "weight_error": {k: v["weight_error"] for k, v in sides.items()}})


if __name__ == "__main__":
    main()
