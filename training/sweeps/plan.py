"""``xbar sweep plan``: the expanded points of a spec and a rough cost estimate.

The estimate is a simple model fitted on one core of a 2-core x86 machine. Fully connected
networks (fitted to Yin-Yang networks, hidden <= 400, T <= 20, and 784-256-10 MLPs): per training
batch ``8 ms + 1.1 ms x T`` (x15 when training in ``circuit`` mode, which solves every tile each
step), per evaluated point ``0.05 s`` plus ``0.04 s + 5 ms x T`` (noisy) or ``0.2 s + 10 ms x T``
(circuit) per 1000 test samples, plus the ideal-mode pass. Convolutional networks add their
convolutions' multiply-accumulates (MACs per sample, :func:`conv_macs`): ``0.45 ns`` per MAC
per sample and time step in training (surrogate BPTT; fitted to the Fashion-MNIST conv SNN at
T = 4 and 8: 35 s and 80 s for 2 epochs of 10000 images; ANN->SNN conversion trains its ReLU
twin, one step per batch), ``2.4 ns`` per MAC, sample and step in
each evaluation pass (crossbar layers with converters and energy accounting; fitted to the same
network's 2000-image evaluations at T = 4-16). The data set sizes honour ``train_subset`` and
``eval_subset``. Treat it as good to a factor of ~3; memory is not estimated (surrogate BPTT
keeps every step's activations: a conv SNN at T = 64, batch 100 needs about 12 GB per worker).
"""
from __future__ import annotations

import math
from pathlib import Path

from .spec import Point, Spec, load_spec

DATA_SIZES = {"yin_yang": (5000, 1000), "digits": (1437, 360),  # (train, test) samples
              "mnist": (60000, 10000), "fashion_mnist": (60000, 10000)}
#: (train, test) samples assumed for a data set missing above
DEFAULT_DATA_SIZE = (60000, 10000)
TRAIN_MODE_FACTOR = {"ideal": 1.0, "noisy": 1.0, "circuit": 15.0}


#: seconds per convolution MAC, sample and time step: surrogate training, one evaluation pass
CONV_TRAIN_S_PER_MAC = 0.45e-9
CONV_EVAL_S_PER_MAC = 2.4e-9
#: input (channels, height, width) of the image data sets (the only ones a conv network takes)
IMAGE_SHAPE = (1, 28, 28)


def data_sizes(data: dict) -> tuple[int, int]:
    """(training, test) samples of a resolved ``[data]`` table, subsets applied."""
    n_train, n_test = DATA_SIZES.get(data["dataset"], DEFAULT_DATA_SIZE)
    if data.get("train_subset"):
        n_train = min(n_train, data["train_subset"])
    if data.get("eval_subset"):
        n_test = min(n_test, data["eval_subset"])
    return n_train, n_test


def conv_macs(network: dict, in_shape: tuple = IMAGE_SHAPE) -> float:
    """Multiply-accumulates per sample and time step of the convolutions of a ``kind = "conv"``
    network ("same" padding, 2x2 pooling after each); 0 for other networks."""
    if network.get("kind", "mlp") != "conv":
        return 0.0
    channels, height, width = in_shape
    kernel = network.get("kernel_size", 3)
    macs = 0.0
    for out in network.get("channels", (14, 32)):
        macs += height * width * out * channels * kernel * kernel
        channels, height, width = out, height // 2, width // 2
    return macs


def training_seconds(train: dict) -> float:
    """Estimated CPU seconds to train one resolved configuration (module docstring)."""
    n_train, _ = data_sizes(train["data"])
    batch = train["data"]["batch_size"]
    batches = math.ceil(n_train / batch)
    # ANN->SNN conversion trains the ReLU twin: one pass per batch, whatever the time steps
    steps = 1 if train["train"].get("method") == "conversion" else train["network"]["time_steps"]
    per_step = 1.1e-3 + batch * conv_macs(train["network"]) * CONV_TRAIN_S_PER_MAC
    per_batch = (8e-3 + per_step * steps) * TRAIN_MODE_FACTOR[train["hardware"]["mode"]]
    return 1.0 + train["train"]["epochs"] * batches * per_batch


def evaluation_seconds(point: Point) -> float:
    """Estimated CPU seconds to evaluate one deployment point (ideal pass included)."""
    _, n_test = data_sizes(point.train["data"])
    steps, mode = point.deploy["time_steps"], point.deploy["mode"]
    conv = 1000 * conv_macs(point.train["network"]) * CONV_EVAL_S_PER_MAC * steps  # one pass, 1000 samples
    per_1000 = 0.04 + 5e-3 * steps + conv
    if mode == "noisy":
        per_1000 += 0.04 + 5e-3 * steps + conv
    elif mode == "circuit":
        per_1000 += 0.2 + 10e-3 * steps + conv
    return 0.05 + per_1000 * n_test / 1000


def plan(spec, out=None) -> dict:
    """Summary of a spec: points, trainings, what is already finished in ``out`` (if given; read
    only) and the estimated CPU time of what a plain ``run`` does next (failed points are kept,
    so they are not "to do": ``failed_points`` counts them)."""
    spec: Spec = load_spec(spec)
    done: dict[str, str] = {}
    trained: set[str] = set()
    if out is not None and (Path(out) / "results.sqlite").is_file():
        from .store import Store

        with Store(out, readonly=True) as store:
            done = store.statuses()
            trained = {m["train_key"] for m in store.models() if m["status"] == "done"}
    todo = [p for p in spec.points if done.get(p.key) not in ("done", "failed")]
    failed = sum(done.get(p.key) == "failed" for p in spec.points)
    groups = {p.train_key: p.train for p in todo if p.train_key not in trained}
    train_s = sum(training_seconds(cfg) for cfg in groups.values())
    eval_s = sum(evaluation_seconds(p) for p in todo)
    return {"name": spec.name, "axes": list(spec.axes), "points": len(spec.points), "trainings": spec.trainings,
            "todo_points": len(todo), "todo_trainings": len(groups), "failed_points": failed,
            "train_cpu_s": train_s, "eval_cpu_s": eval_s, "spec": spec}


def format_plan(summary: dict, *, workers: int, show_points: int = 50) -> str:
    """Human-readable plan: the points (up to ``show_points``) and the cost estimate."""
    spec: Spec = summary["spec"]
    lines = [f"study {summary['name']!r}: {summary['points']} point(s), {summary['trainings']} training "
             f"configuration(s); axes: {', '.join(summary['axes']) or '(none)'}"]
    for i, p in enumerate(spec.points[:show_points]):
        axes = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in p.axes.items()) or "(base)"
        lines.append(f"  {i:4d} {p.key} model {p.train_key[:8]}  {axes}")
    if len(spec.points) > show_points:
        lines.append(f"  ... {len(spec.points) - show_points} more")
    total = summary["train_cpu_s"] + summary["eval_cpu_s"]
    lines.append(f"to do: {summary['todo_points']} point(s), {summary['todo_trainings']} training(s); estimated "
                 f"{summary['train_cpu_s']:.0f} s training + {summary['eval_cpu_s']:.0f} s evaluation = "
                 f"{total:.0f} CPU-s, ~{total / max(workers, 1):.0f} s wall with {workers} worker(s) "
                 "(rough, +-3x)")
    if summary.get("failed_points"):
        lines.append(f"{summary['failed_points']} point(s) failed before and are kept (not counted above); "
                     "`xbar sweep run --retry-failed` runs them again")
    return "\n".join(lines)
