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
   weights_only=True)``);
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
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .config import RunConfig
from .data import digits, make_loader, yin_yang_splits
from .model import NetworkConfig, SpikingMLP
from .report import atomic_write_bytes

CHECKPOINT_RE = re.compile(r"^epoch_(\d{4,})\.pt$")


def load_data(config: RunConfig):
    """``(splits, in_features, n_classes)`` of the configured data set (nothing downloaded)."""
    if config.data.dataset == "yin_yang":
        splits = yin_yang_splits()
        return splits, 4, 3
    splits = digits(config.data.split_seed, config.data.test_fraction)
    return splits, 64, 10


def build_model(config: RunConfig, in_features: int, n_classes: int) -> SpikingMLP:
    """The network with ``config.seed``'s initial weights (torch's global RNG is seeded here)."""
    torch.manual_seed(config.seed)
    return SpikingMLP(in_features, n_classes, config.network, config.hardware)


@torch.no_grad()
def accuracy(model: SpikingMLP, split, batch_size: int = 1000, time_steps: int | None = None) -> float:
    """Fraction of correctly classified samples of ``split`` (model in eval mode)."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(split.y), batch_size):
        x, y = split.X[start:start + batch_size], split.y[start:start + batch_size]
        correct += int((model(x, time_steps=time_steps).argmax(1) == y).sum())
    model.train(was_training)
    return correct / max(len(split.y), 1)


def _optimizer(config: RunConfig, model: SpikingMLP):
    t = config.train
    if t.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, t.epochs) if t.schedule == "cosine" else \
        torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)
    return opt, sched


def model_from_checkpoint(config: RunConfig, state: dict, in_features: int, n_classes: int) -> SpikingMLP:
    """The trained network of a checkpoint: built with the network options stored in it (a
    converted network's IF threshold and readout), else ``config.network``."""
    network = NetworkConfig.from_dict(state["network"]) if "network" in state else config.network
    model = SpikingMLP(in_features, n_classes, network, config.hardware)
    model.load_state_dict(state["model"])
    return model


def _train_by_conversion(config: RunConfig, out_dir: Path, resume: bool) -> tuple[SpikingMLP, list[dict]]:
    """``train.method = "conversion"``: the ReLU twin trained for ``train.epochs``, converted
    (:mod:`training.conversion`) with the first 1000 training samples as calibration data; one
    checkpoint holds the converted network."""
    from .conversion import convert, train_ann

    splits, n_in, n_classes = load_data(config)
    path = out_dir / "checkpoints" / f"epoch_{config.train.epochs:04d}.pt"
    if resume and path.is_file():
        state = torch.load(path, weights_only=True)
        if state["config"] != config.to_dict():
            raise ValueError(f"{out_dir} holds checkpoints of a different configuration; use another output "
                             "directory or resume=False (--no-resume)")
        return model_from_checkpoint(config, state, n_in, n_classes), list(state["history"])
    ann = train_ann(config, splits, n_in, n_classes)
    model = convert(ann, config, splits.train.X[:1000], percentile=config.train.conversion_percentile)
    test_split = splits.validation if splits.validation is not None else splits.test
    with torch.no_grad():
        ann_acc = float((ann(test_split.X).argmax(1) == test_split.y).float().mean())
        ann_loss = float(torch.nn.functional.cross_entropy(ann(splits.train.X), splits.train.y))
    history = [{"epoch": config.train.epochs, "loss": ann_loss, "train_accuracy": ann_acc,
                "val_accuracy": accuracy(model, test_split, config.data.eval_batch_size), "lr": 0.0}]
    _save_checkpoint(path, {"config": config.to_dict(), "epoch": config.train.epochs, "model": model.state_dict(),
                            "network": model.network.to_dict(), "history": history})
    _write_csv(out_dir / "metrics.csv", history)
    return model, history


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((p for p in (out_dir / "checkpoints").glob("epoch_*.pt") if CHECKPOINT_RE.match(p.name)),
                   key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)))
    return ckpts[-1] if ckpts else None


def _save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


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
          stop_after: int | None = None) -> tuple[SpikingMLP, list[dict]]:
    """Train (or resume) ``config`` in ``out_dir``; returns the model and per-epoch metrics.

    ``stop_after``: end after that many epochs of *this call* (for tests of interruption).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    if config.train.method == "conversion":
        return _train_by_conversion(config, out_dir, resume)
    splits, n_in, n_classes = load_data(config)
    model = build_model(config, n_in, n_classes)
    opt, sched = _optimizer(config, model)
    loader = make_loader(splits.train, config.data.batch_size, shuffle=True, seed=config.seed)
    history: list[dict] = []
    start = 0
    ckpt = latest_checkpoint(out_dir) if resume else None
    if ckpt is not None:
        state = torch.load(ckpt, weights_only=True)
        if state["config"] != config.to_dict():
            raise ValueError(f"{out_dir} holds checkpoints of a different configuration; use another output "
                             "directory or resume=False (--no-resume)")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        loader.generator.set_state(state["loader_rng"])
        torch.set_rng_state(state["torch_rng"])
        history, start = list(state["history"]), int(state["epoch"])
    epochs = range(start, config.train.epochs)
    bar = tqdm(epochs, desc=config.name, disable=not progress, unit="epoch", initial=start,
               total=config.train.epochs)
    done_now = 0
    for epoch in bar:
        model.set_hardware(config.hardware)  # fresh circuit correction at every epoch boundary
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in loader:
            opt.zero_grad()
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} in epoch {epoch + 1}; lower train.lr")
            loss.backward()
            opt.step()
            model.clip_weights_()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
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


def run(config: RunConfig, out_dir, *, resume: bool = True, progress: bool = True) -> dict:
    """Train, deploy, evaluate and write ``results.json``, CSVs and plots under ``out_dir``."""
    from .evaluate import deployment_study, plot_run

    out_dir = Path(out_dir)
    model, history = train(config, out_dir, resume=resume, progress=progress)
    splits, _, _ = load_data(config)
    rows = deployment_study(model, config, splits.test)
    _write_csv(out_dir / "evaluation.csv", rows)
    results = {"config": config.to_dict(), "history": history, "evaluation": rows,
               "final_test_accuracy_training_mode": _training_mode_accuracy(model, config, splits.test)}
    _write_json(out_dir / "results.json", results)
    plot_run(history, rows, out_dir, title=config.name)
    return results


def _training_mode_accuracy(model: SpikingMLP, config: RunConfig, split) -> float:
    model.undeploy()
    model.set_hardware(config.hardware)
    acc = accuracy(model, split, config.data.eval_batch_size)
    return acc if math.isfinite(acc) else float("nan")
