"""GPU rows of the training benchmark: ``rows(device) -> list[dict]`` (used by ``bench/gpu.py``).

1. Step time of a 784-256-10 LIF SNN (T = 10, batch 128, 256 x 256 tiles, PCM, 8-bit DAC/ADC, Adam,
   weight clipping) in ``ideal``, ``noisy`` and ``circuit`` mode (``circuit_refresh = 1``: the exact
   circuit of every tile at every step) on ``device``, against the issue-13 targets: noisy <= 1.5x
   and circuit <= 3x the ideal step on the same device.
2. The same short seeded training run (Yin-Yang 4-32-3 LIF, T = 10, 1 epoch, 64 x 64 tiles) in every
   mode on the CPU and on ``device``, two seeds each: test accuracy (training mode) and seconds;
   target: the means agree within the seed-to-seed spread (CPU and CUDA draw different random
   streams, so the runs are statistically, not bitwise, equal).

Every row is ``{"quantity", "measured", "target", "ok", ...raw numbers}`` (``ok`` None = information)
and an exception in one measurement becomes a row with ``"error"`` instead of ending the script.
Runs with ``PYTHONPATH=.`` from the repository root, no installed package, no PySpice; about a
minute on a GPU machine.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.config import RunConfig  # noqa: E402
from training.hardware import HardwareConfig  # noqa: E402
from training.model import NetworkConfig, SpikingMLP  # noqa: E402

STEP_NETWORK = {"hidden": [256], "time_steps": 10}
STEP_HARDWARE = {"family": "pcm", "tile_rows": 256, "tile_cols": 256}
RUN_SEEDS = (0, 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(device, modes=("ideal", "noisy", "circuit"), steps: int = 6, batch: int = 128) -> dict:
    """Median seconds per training step of the 784-256-10 LIF SNN in each mode on ``device``."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 784, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    out = {}
    for mode in modes:
        torch.manual_seed(0)
        model = SpikingMLP(784, 10, NetworkConfig.from_dict(STEP_NETWORK),
                           HardwareConfig(mode=mode, **STEP_HARDWARE), device=device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        times = []
        n = steps if mode != "circuit" or device.type == "cuda" else 2
        for k in range(n + 2):  # two warm-up steps (allocator, noise calibration, first solves)
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            model.clip_weights_()
            _sync(device)
            if k >= 2:
                times.append(time.perf_counter() - t0)
        out[mode] = statistics.median(times)
    return out


def seeded_run(mode: str, device: str, seed: int) -> tuple[float, float]:
    """(test accuracy in the training mode, seconds) of one short Yin-Yang run."""
    from training.loop import accuracy, load_data, train

    cfg = RunConfig.from_dict({
        "name": f"gpu_bench_{mode}_{seed}", "seed": seed, "device": device,
        "data": {"dataset": "yin_yang", "batch_size": 50},
        "network": {"hidden": [32], "time_steps": 10},
        "hardware": {"mode": mode, "family": "pcm", "tile_rows": 64, "tile_cols": 64, "circuit_refresh": 5,
                     "seed": seed},
        "train": {"epochs": 1, "lr": 1e-2, "threads": 0}})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as out:
        model, _ = train(cfg, out, resume=False, progress=False)
    splits, _, _ = load_data(cfg)
    acc = accuracy(model, splits.test)
    return acc, time.perf_counter() - t0


def _error_row(quantity: str) -> dict:
    return {"quantity": quantity, "measured": "error", "target": "", "ok": False,
            "error": traceback.format_exc(limit=3)}


def rows(device) -> list[dict]:
    """The benchmark rows for ``device`` (module docstring)."""
    device = torch.device(device)
    out = []
    try:
        t = step_times(device)
        out.append({"quantity": f"train step 784-256-10 LIF (T=10, batch 128, 256x256 tiles), ideal, {device}",
                    "measured": f"{1e3 * t['ideal']:.1f} ms", "target": "(reference)", "ok": None,
                    "seconds": t["ideal"]})
        for mode, limit in (("noisy", 1.5), ("circuit", 3.0)):
            ratio = t[mode] / t["ideal"]
            out.append({"quantity": f"train step {mode} / ideal on {device}", "measured":
                        f"{ratio:.2f}x ({1e3 * t[mode]:.1f} ms)", "target": f"<= {limit:g}x",
                        "ok": ratio <= limit, "seconds": t[mode], "ratio": ratio})
    except Exception:  # noqa: BLE001 - a failed measurement is reported as a row
        out.append(_error_row(f"train step timing on {device}"))
    places = ["cpu"] if device.type == "cpu" else ["cpu", str(device)]
    for mode in ("ideal", "noisy", "circuit"):
        try:
            runs = {p: [seeded_run(mode, p, s) for s in RUN_SEEDS] for p in places}
            acc = {p: [a for a, _ in r] for p, r in runs.items()}
            secs = {p: sum(s for _, s in r) for p, r in runs.items()}
            means = {p: statistics.fmean(a) for p, a in acc.items()}
            spread = max(max(a) - min(a) for a in acc.values())
            text = "; ".join(f"{p} {100 * means[p]:.1f} % ({', '.join(f'{100 * a:.1f}' for a in acc[p])}; "
                             f"{secs[p]:.1f} s)" for p in places)
            ok = None if len(places) == 1 else abs(means[places[0]] - means[places[1]]) <= max(spread, 0.02)
            out.append({"quantity": f"seeded Yin-Yang run ({len(RUN_SEEDS)} seeds, 1 epoch), {mode}: accuracy",
                        "measured": text, "target": "CPU = GPU within the seed spread", "ok": ok,
                        "accuracy": acc, "seconds": secs})
        except Exception:  # noqa: BLE001
            out.append(_error_row(f"seeded Yin-Yang run, {mode}"))
    return out


if __name__ == "__main__":
    from bench._tables import print_targets

    dev = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    print_targets([(r["quantity"], r["measured"], r["target"], r["ok"]) for r in rows(dev)])
