"""The hardware-aware training loop: train, checkpoint/resume, deploy, evaluate, write results.

``run(config, out_dir)`` does everything ``xbar train --config run.toml --out DIR`` does:

1. builds the data set and the :class:`training.SpikingMLP` (initialised from ``config.seed``);
2. trains for ``train.epochs`` epochs in the training-time hardware mode (noise injection,
   weight clipping to the conductance window after every step, DAC/ADC quantisation in the
   forward pass, optionally the exact circuit), showing a progress bar;
3. after every epoch writes ``checkpoints/epoch_NNNN.pt`` atomically (temporary file, fsync,
   rename) holding the model, optimiser, scheduler and every random-number state, and
   ``metrics.csv``; an interrupted run restarted with the same config and directory resumes
   from the latest checkpoint and produces bit-identical results (``torch.load(...,
   weights_only=True)``); every checkpoint is validated first and a bad one (empty, truncated,
   edited) is reported and skipped in favour of the previous good one (:mod:`training.checkpoints`);
4. deploys the trained weights (program once per device seed) and evaluates accuracy over
   inference times, forward modes, device families and numbers of time steps
   (:func:`training.evaluate.deployment_study`), writing ``evaluation.csv``,
   ``results.json`` and PNG plots.
"""
from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoints import (CHECKPOINT_RE, CheckpointConfigError, CheckpointError, CheckpointWarning,  # noqa: F401
                          latest_checkpoint, load_checkpoint, resume as resume_checkpoint, save_checkpoint)
from .config import RunConfig, resolve_device
from .conv_model import ConvNetworkConfig, SpikingConvNet
from .data import DataSplits, Split, digits, make_loader, yin_yang_splits
from .model import NetworkConfig, SpikingMLP
from .report import atomic_write_bytes
from .threads import resolve_threads


def _subset(split: Split | None, n: int) -> Split | None:
    return split if split is None or n == 0 else Split(split.X[:n], split.y[:n])


def load_data(config: RunConfig):
    """``(splits, in_features, n_classes)`` of the configured data set (nothing downloaded).

    ``in_features`` is the feature count for an MLP (images flattened) and the image shape
    ``(C, H, W)`` for ``network.kind = "conv"`` (splits hold images ``(n, C, H, W)``).
    ``data.train_subset`` / ``data.eval_subset`` cut the splits to their first samples.
    """
    data = config.data
    conv = isinstance(config.network, ConvNetworkConfig)
    if data.dataset == "yin_yang":
        splits, n_in, n_classes = yin_yang_splits(), 4, 3
    elif data.dataset == "digits":
        splits, n_in, n_classes = digits(data.split_seed, data.test_fraction), 64, 10
        if conv:
            splits = DataSplits(*(Split(s.X.reshape(len(s.X), 1, 8, 8), s.y) if s is not None else None
                                  for s in splits))
            n_in = (1, 8, 8)
    else:
        from .images import image_splits

        splits = image_splits(data.dataset, validation_size=data.validation_size, split_seed=data.split_seed,
                              flatten=not conv)
        n_in, n_classes = ((1, 28, 28) if conv else 784), 10
    splits = DataSplits(_subset(splits.train, data.train_subset), _subset(splits.validation, data.eval_subset),
                        _subset(splits.test, data.eval_subset))
    return splits, n_in, n_classes


def _as_split(data, what: str) -> Split:
    """A :class:`Split` from user data: a ``Split``, an ``(X, y)`` pair of tensors or arrays, or a
    ``torch.utils.data.Dataset`` of ``(x, y)`` items (materialised; features float32, labels int64)."""
    import numpy as np

    if isinstance(data, Split):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    elif isinstance(data, torch.utils.data.Dataset):
        try:
            items = [data[i] for i in range(len(data))]
        except TypeError as exc:
            raise ValueError(f"{what}: a Dataset must have a length and return (x, y) items ({exc})") from None
        if not items:
            raise ValueError(f"{what}: the Dataset is empty")
        X = torch.stack([torch.as_tensor(np.asarray(x)) if not torch.is_tensor(x) else x for x, _ in items])
        y = torch.as_tensor([int(t) for _, t in items])
    else:
        raise ValueError(f"{what} must be a training.data.Split, an (X, y) pair or a torch Dataset of (x, y) items, "
                         f"got {type(data).__name__}")
    X, y = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X), \
        torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
    if X.dim() < 2 or y.dim() != 1 or len(X) != len(y) or len(y) == 0:
        raise ValueError(f"{what}: X must be (n, features...) and y (n,) with the same n >= 1, got X {tuple(X.shape)}, "
                         f"y {tuple(y.shape)}")
    if y.is_floating_point() and not torch.equal(y, y.round()) or bool((y < 0).any()):
        raise ValueError(f"{what}: labels y must be class indices 0, 1, 2, ... (integers >= 0)")
    return Split(X.float(), y.long())


def resolve_data(config: RunConfig, data=None, eval_data=None):
    """``(splits, in_features, n_classes)``: the configured data set (:func:`load_data`), or the
    user's training set ``data`` and evaluation set ``eval_data`` (each a ``Split``, an ``(X, y)``
    pair or a ``Dataset``; :func:`_as_split`). The evaluation set is the validation split during
    training and the test split of the deployment study; the classes are ``0 .. max(y)``; an
    MLP takes ``X`` flattened per sample, a convolutional network ``(n, C, H, W)`` images."""
    if data is None:
        if eval_data is not None:
            raise ValueError("eval_data needs data (the training set) as well")
        return load_data(config)
    if eval_data is None:
        raise ValueError("with user data, pass eval_data too (the evaluation set: validation during training, "
                         "test at deployment)")
    train_split, eval_split = _as_split(data, "data"), _as_split(eval_data, "eval_data")
    if isinstance(config.network, ConvNetworkConfig):
        if train_split.X.dim() != 4 or eval_split.X.shape[1:] != train_split.X.shape[1:]:
            raise ValueError(f"network.kind = 'conv' takes images (n, C, H, W) of one shape, got data "
                             f"{tuple(train_split.X.shape)} and eval_data {tuple(eval_split.X.shape)}")
        n_in = tuple(train_split.X.shape[1:])
    else:
        train_split = Split(train_split.X.flatten(1), train_split.y)
        eval_split = Split(eval_split.X.flatten(1), eval_split.y)
        if eval_split.X.shape[1] != train_split.X.shape[1]:
            raise ValueError(f"data has {train_split.X.shape[1]} features per sample but eval_data "
                             f"{eval_split.X.shape[1]}")
        n_in = int(train_split.X.shape[1])
    n_classes = int(max(int(train_split.y.max()), int(eval_split.y.max()))) + 1
    return DataSplits(train_split, eval_split, eval_split), n_in, n_classes


def build_model(config: RunConfig, in_features, n_classes: int) -> SpikingMLP | SpikingConvNet:
    """The network with ``config.seed``'s initial weights (torch's global RNG is seeded here):
    :class:`SpikingMLP`, or :class:`SpikingConvNet` for ``network.kind = "conv"`` (``in_features``
    is then the image shape)."""
    torch.manual_seed(config.seed)
    if isinstance(config.network, ConvNetworkConfig):
        return SpikingConvNet(in_features, n_classes, config.network, config.hardware)
    return SpikingMLP(in_features, n_classes, config.network, config.hardware)


@torch.no_grad()
def accuracy(model: SpikingMLP, split, batch_size: int = 1000, time_steps: int | None = None) -> float:
    """Fraction of correctly classified samples of ``split`` (a ``Split``, an ``(X, y)`` pair or a
    ``Dataset``) by ``model`` in eval mode (restored afterwards): any model whose ``model(x)`` gives
    class scores ``(batch, classes)``; ``time_steps`` is passed on as ``model(x, time_steps=...)``.
    Runs without gradients (``torch.no_grad``)."""
    if not isinstance(split, Split):
        split = _as_split(split, "split")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device  # batches go to the model's device; one sync at the end
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        with torch.no_grad():  # no autograd graph: memory stays one time step's worth, whatever T
            for start in range(0, len(split.y), batch_size):
                x, y = split.X[start:start + batch_size].to(device), split.y[start:start + batch_size].to(device)
                out = model(x) if time_steps is None else model(x, time_steps=time_steps)
                correct += (out.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    return int(correct) / max(len(split.y), 1)


def _optimizer(config: RunConfig, model: SpikingMLP):
    t = config.train
    if t.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, t.epochs) if t.schedule == "cosine" else \
        torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)
    return opt, sched


def model_from_checkpoint(config: RunConfig, state: dict, in_features, n_classes: int
                          ) -> SpikingMLP | SpikingConvNet:
    """The trained network of a checkpoint: built with the network options stored in it (a
    converted network's IF threshold and readout), else ``config.network``."""
    if isinstance(config.network, ConvNetworkConfig):
        network = ConvNetworkConfig.from_dict(state["network"]) if "network" in state else config.network
        model = SpikingConvNet(in_features, n_classes, network, config.hardware)
        model.load_state_dict(state["model"])
        return model
    network = NetworkConfig.from_dict(state["network"]) if "network" in state else config.network
    model = SpikingMLP(in_features, n_classes, network, config.hardware)
    model.load_state_dict(state["model"])
    return model


def _train_by_conversion(config: RunConfig, out_dir: Path, resume: bool, data=None) -> tuple[SpikingMLP, list[dict]]:
    """``train.method = "conversion"``: the ReLU twin trained for ``train.epochs``, converted
    (:mod:`training.conversion`) with the first 1000 training samples as calibration data; one
    checkpoint holds the converted network."""
    from .conversion import convert, train_ann

    splits, n_in, n_classes = load_data(config) if data is None else data
    path = out_dir / "checkpoints" / f"epoch_{config.train.epochs:04d}.pt"
    if resume and path.is_file():
        try:  # a bad checkpoint is reported and the network trained again (training.checkpoints)
            state = load_checkpoint(path, config, kind="conversion")
            return model_from_checkpoint(config, state, n_in, n_classes), list(state["history"])
        except CheckpointError as exc:
            warnings.warn(CheckpointWarning(f"{exc}; training the network again"), stacklevel=2)
        except Exception as exc:  # noqa: BLE001 - whatever a bad state makes load_state_dict raise
            warnings.warn(CheckpointWarning(f"checkpoint {path} does not fit the network ({type(exc).__name__}); "
                                            "training the network again"), stacklevel=2)
    ann = train_ann(config, splits, n_in, n_classes)
    model = convert(ann, config, splits.train.X[:1000], percentile=config.train.conversion_percentile)
    test_split = splits.validation if splits.validation is not None else splits.test
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731 - the twin takes samples as rows
    with torch.no_grad():
        ann_acc = float((ann(flat(test_split.X)).argmax(1) == test_split.y).float().mean())
        ann_loss = float(torch.nn.functional.cross_entropy(ann(flat(splits.train.X)), splits.train.y))
    history = [{"epoch": config.train.epochs, "loss": ann_loss, "train_accuracy": ann_acc,
                "val_accuracy": accuracy(model, test_split, config.data.eval_batch_size), "lr": 0.0}]
    _save_checkpoint(path, {"config": config.to_dict(), "epoch": config.train.epochs, "model": model.state_dict(),
                            "network": model.network.to_dict(), "history": history})
    _write_csv(out_dir / "metrics.csv", history)
    return model, history


_save_checkpoint = save_checkpoint


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def train(config: RunConfig, out_dir, *, resume: bool = True, progress: bool = True,
          stop_after: int | None = None, data=None, eval_data=None) -> tuple[SpikingMLP, list[dict]]:
    """Train (or resume) ``config`` in ``out_dir``; returns the model and per-epoch metrics.

    ``stop_after``: end after that many epochs of *this call* (for tests of interruption).
    ``data``, ``eval_data``: the user's training and evaluation sets instead of ``config.data``'s
    data set (:func:`resolve_data`; a resumed run must be given the same data).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = resolve_threads(config.train.threads)
    if threads:
        torch.set_num_threads(threads)
    resolved = resolve_data(config, data, eval_data)
    if config.train.method == "conversion":
        return _train_by_conversion(config, out_dir, resume, resolved)
    splits, n_in, n_classes = resolved
    device = resolve_device(config.device)
    model = build_model(config, n_in, n_classes).to(device)  # initial weights drawn on the CPU: same on every device
    opt, sched = _optimizer(config, model)
    loader = make_loader(splits.train, config.data.batch_size, shuffle=True, seed=config.seed)
    history: list[dict] = []
    start = 0
    if resume:  # the newest valid checkpoint; bad ones are reported and skipped (training.checkpoints)
        history, start = resume_checkpoint(out_dir, config, model, opt, sched, loader)
    epochs = range(start, config.train.epochs)
    bar = tqdm(epochs, desc=config.name, disable=not progress, unit="epoch", initial=start,
               total=config.train.epochs)
    done_now = 0
    for epoch in bar:
        model.set_hardware(config.hardware)  # fresh circuit correction at every epoch boundary
        model.train()
        # running sums stay on the device: no host synchronisation inside the epoch
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct, seen = torch.zeros((), dtype=torch.int64, device=device), 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            model.clip_weights_()
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        if not torch.isfinite(loss_sum):
            raise FloatingPointError(f"loss became {float(loss_sum)} in epoch {epoch + 1}; lower train.lr")
        loss_sum, correct = float(loss_sum), int(correct)
        sched.step()
        test_split = splits.validation if splits.validation is not None else splits.test
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
               "val_accuracy": accuracy(model, test_split, config.data.eval_batch_size),
               "lr": opt.param_groups[0]["lr"]}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['val_accuracy']:.3f}")
        _save_checkpoint(out_dir / "checkpoints" / f"epoch_{epoch + 1:04d}.pt",
                         {"config": config.to_dict(), "epoch": epoch + 1, "model": model.state_dict(),
                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                          "loader_rng": loader.generator.get_state(), "torch_rng": torch.get_rng_state(),
                          "history": history})
        _write_csv(out_dir / "metrics.csv", history)
        done_now += 1
        if stop_after is not None and done_now >= stop_after:
            break
    bar.close()
    return model, history


def run(config: RunConfig, out_dir, *, resume: bool = True, progress: bool = True, data=None,
        eval_data=None) -> dict:
    """Train, deploy, evaluate and write ``results.json``, CSVs and plots under ``out_dir``
    (``data``/``eval_data``: the user's own sets, :func:`train`). ``results["energy"]``: energy and
    latency per inference of the deployed network on the training family at the trained number of
    time steps and the first evaluation time (:mod:`training.energy`; every evaluation row has them too)."""
    from .evaluate import deployment_study, plot_run

    out_dir = Path(out_dir)
    splits, _, _ = resolve_data(config, data, eval_data)
    model, history = train(config, out_dir, resume=resume, progress=progress, data=data, eval_data=eval_data)
    rows = deployment_study(model, config, splits.test, progress=progress,
                            energy=config.evaluate.energy_config())
    _write_csv(out_dir / "evaluation.csv", rows)
    results = {"config": config.to_dict(), "history": history, "evaluation": rows,
               "energy": _energy_summary(rows, config),
               "final_test_accuracy_training_mode": _training_mode_accuracy(model, config, splits.test),
               "device": str(next(model.parameters()).device)}  # what device = "auto" resolved to
    _write_json(out_dir / "results.json", results)
    plot_run(history, rows, out_dir, title=config.name)
    return results


def evaluation_count(config: RunConfig) -> int:
    """Number of accuracy evaluations of :func:`training.evaluate.deployment_study` (for progress)."""
    from .evaluate import evaluation_count as count

    return count(config)


def _energy_summary(rows: list[dict], config: RunConfig) -> dict | None:
    """The energy metrics of the first deployed evaluation on the training family at the trained
    time steps (repeat 0, first evaluation time and mode), with where they come from."""
    steps = config.network.time_steps
    for r in rows:
        if r.get("sweep") == "time" and r["family"] == config.hardware.family and r["repeat"] == 0 \
                and r["time_steps"] == steps and "energy_per_inference_J" in r:
            return {"family": r["family"], "mode": r["mode"], "t": r["t"], "time_steps": steps,
                    **{k: v for k, v in r.items() if k.startswith(("energy", "latency", "spikes"))}}
    return None


def _training_mode_accuracy(model: SpikingMLP, config: RunConfig, split) -> float:
    model.undeploy()
    model.set_hardware(config.hardware)
    acc = accuracy(model, split, config.data.eval_batch_size)
    return acc if math.isfinite(acc) else float("nan")
