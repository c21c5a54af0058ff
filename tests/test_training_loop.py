"""The training loop and run configuration: exact checkpoint/resume, learning, results on disk,
atomic writes, and clear errors for bad run configs (``training.loop``, ``training.config``)."""
from __future__ import annotations

import dataclasses

import csv
import json
import math
import os

import pytest
import torch

from training import RunConfig
from training.config import DataConfig, EvalConfig, TrainConfig
from training.loop import accuracy, latest_checkpoint, load_data, run, train
from training.report import atomic_write_bytes

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "yin_yang", "batch_size": 100},
    "network": {"hidden": [16], "time_steps": 5},
    "hardware": {"mode": "noisy"},
    "train": {"epochs": 2},
    "evaluate": {"times": [1.0, 86400.0], "time_steps": [5], "repeats": 1, "modes": ["noisy"],
                 "steps_time": 86400.0},
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)


def tiny(**sections) -> RunConfig:
    values = json.loads(json.dumps(TINY))
    for key, value in sections.items():
        if isinstance(value, dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return RunConfig.from_dict(values)


def load(path):
    return torch.load(path, weights_only=True)


def assert_same_state(a: dict, b: dict, where: str = "") -> None:
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same_state(u, v, f"{where}[{i}]")
    else:
        assert a == b, where


# ====================================================================== checkpoint / resume
def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    cfg = tiny()
    _, hist_a1 = train(cfg, tmp_path / "a", progress=False, stop_after=1)
    assert len(hist_a1) == 1
    ckpt1 = tmp_path / "a" / "checkpoints" / "epoch_0001.pt"
    assert latest_checkpoint(tmp_path / "a") == ckpt1
    stat1 = os.stat(ckpt1)
    model_a, hist_a = train(cfg, tmp_path / "a", progress=False)
    # the second call resumed: epoch 1 was not trained (nor its checkpoint rewritten) again
    stat1_after = os.stat(ckpt1)
    assert (stat1.st_ino, stat1.st_mtime_ns) == (stat1_after.st_ino, stat1_after.st_mtime_ns)
    model_b, hist_b = train(cfg, tmp_path / "b", progress=False)
    assert hist_a == hist_b and len(hist_b) == 2
    assert hist_a[0] == hist_a1[0]
    a = load(tmp_path / "a" / "checkpoints" / "epoch_0002.pt")
    b = load(tmp_path / "b" / "checkpoints" / "epoch_0002.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert_same_state(a, b)  # model, optimiser, scheduler, RNG states, history
    assert_same_state(model_a.state_dict(), model_b.state_dict())
    # training changed the weights and the running ADC peaks are part of the state
    first = load(ckpt1)
    assert not torch.equal(first["model"]["layers.0.weight"], a["model"]["layers.0.weight"])
    assert float(a["model"]["layers.0.adc_peak"]) > 0
    # a finished run resumes to itself
    _, hist_again = train(cfg, tmp_path / "b", progress=False)
    assert hist_again == hist_b
    assert not list(tmp_path.rglob("*.tmp"))


def test_resume_in_circuit_mode_with_rate_encoding_is_exact(tmp_path):
    # rate encoding: the encoder's random stream is part of the checkpoint too
    cfg = tiny(network={"hidden": [6], "time_steps": 3, "encoding": "rate"}, data={"batch_size": 500},
               hardware={"mode": "circuit", "tile_rows": 8, "tile_cols": 8, "circuit_refresh": 3,
                         "crossbar": {"r_row": 5.0, "r_col": 5.0}})
    train(cfg, tmp_path / "a", progress=False, stop_after=1)
    _, hist_a = train(cfg, tmp_path / "a", progress=False)
    _, hist_b = train(cfg, tmp_path / "b", progress=False)
    assert hist_a == hist_b
    assert_same_state(load(tmp_path / "a" / "checkpoints" / "epoch_0002.pt"),
                      load(tmp_path / "b" / "checkpoints" / "epoch_0002.pt"))


def test_resume_with_a_different_config_raises(tmp_path):
    cfg = tiny(network={"hidden": [4], "time_steps": 2}, data={"batch_size": 1000})
    train(cfg, tmp_path, progress=False, stop_after=1)
    other = cfg.replace(train=TrainConfig(epochs=2, lr=0.02))
    with pytest.raises(ValueError, match="different configuration"):
        train(other, tmp_path, progress=False)
    # where the run executes is not part of the configuration: another device or thread count resumes
    train(cfg, tmp_path / "moved", progress=False, stop_after=1)
    elsewhere = cfg.replace(device="cpu", train=dataclasses.replace(cfg.train, threads=1))
    assert elsewhere.to_dict() != cfg.to_dict()
    _, hist_elsewhere = train(elsewhere, tmp_path / "moved", progress=False)
    assert len(hist_elsewhere) == cfg.train.epochs
    # resume=False starts afresh and overwrites
    _, hist = train(other, tmp_path, resume=False, progress=False, stop_after=1)
    assert len(hist) == 1 and load(latest_checkpoint(tmp_path))["config"] == other.to_dict()


# ====================================================================== learning
def test_short_training_learns_yin_yang_clearly_above_chance(tmp_path):
    cfg = tiny(network={"hidden": [32], "time_steps": 5}, data={"batch_size": 50},
               train={"epochs": 3, "lr": 0.02})
    model, hist = train(cfg, tmp_path, progress=False)
    splits, _, _ = load_data(cfg)
    acc = accuracy(model, splits.test)
    # chance is 1/3; the reference linear classifier reaches 0.64
    assert acc >= 0.7, acc
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert model.training  # accuracy() restores the mode


# ====================================================================== run: files on disk
def test_run_writes_metrics_evaluation_results_and_plots(tmp_path):
    cfg = tiny(network={"hidden": [8], "time_steps": 5}, train={"epochs": 1})
    results = run(cfg, tmp_path, progress=False)
    for name in ("metrics.csv", "evaluation.csv", "results.json", "training_curves.png", "accuracy_vs_time.png",
                 "accuracy_vs_time_steps.png"):
        assert (tmp_path / name).is_file(), name
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "metrics.csv").open() as fh:
        metrics = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in metrics] == [1]
    assert set(metrics[0]) == {"epoch", "loss", "train_accuracy", "val_accuracy", "lr"}
    with (tmp_path / "evaluation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    # 1 ideal row (T = 5), 2 inference times, 1 point of the time-step sweep
    assert sorted((r["sweep"], r["mode"], float(r["t"]), int(r["time_steps"])) for r in rows) == [
        ("ideal", "ideal", 0.0, 5), ("steps", "noisy", 86400.0, 5), ("time", "noisy", 1.0, 5),
        ("time", "noisy", 86400.0, 5)]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and r["family"] == "pcm" for r in rows)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"] == cfg.to_dict() == results["config"]
    assert RunConfig.from_dict(saved["config"]) == cfg
    assert len(saved["evaluation"]) == 4 and len(saved["history"]) == 1
    assert 0.0 <= saved["final_test_accuracy_training_mode"] <= 1.0
    # device = "auto" is resolved and recorded (CUDA when a GPU is visible)
    assert saved["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu") and cfg.device == "auto"
    # checkpoints: loadable with weights_only=True, no temporary files left anywhere
    ckpt = load(tmp_path / "checkpoints" / "epoch_0001.pt")
    assert {"config", "epoch", "model", "optimizer", "scheduler", "loader_rng", "torch_rng", "history"} <= set(ckpt)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"old")
    assert target.read_bytes() == b"old"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    import training.report as report
    monkeypatch.setattr(report.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_latest_checkpoint_orders_numerically(tmp_path):
    d = tmp_path / "checkpoints"
    d.mkdir()
    for name in ("epoch_0009.pt", "epoch_10000.pt", "epoch_0010.pt", "epoch_x.pt", ".epoch_0011.pt.abc.tmp"):
        (d / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "epoch_10000.pt"
    assert latest_checkpoint(tmp_path / "nothing") is None


# ====================================================================== RunConfig
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not (isinstance(v, float) and math.isinf(v)) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(v)


def to_toml(values: dict) -> str:
    """A minimal TOML writer (None = key left out, i.e. the default)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict) and v is not None]
    for section, table in values.items():
        if isinstance(table, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def test_run_config_dict_and_toml_round_trip(tmp_path):
    cfg = RunConfig.from_dict({
        "name": "round-trip", "seed": 3,
        "data": {"dataset": "digits", "batch_size": 32, "test_fraction": 0.25},
        "network": {"hidden": [12, 7], "time_steps": 9, "tau_syn": 2e-3, "encoding": "rate"},
        "hardware": {"mode": "circuit", "family": "rram", "tile_rows": 64, "tile_cols": 32, "dac_bits": 6,
                     "crossbar": {"r_row": 2.5, "topology": "1T1R"}, "device_params": {"d2d_sigma": 0.05},
                     "g_min": 1e-6, "train_noise": 0.5},
        "train": {"epochs": 4, "optimizer": "sgd", "schedule": "constant"},
        "evaluate": {"modes": ["noisy", "circuit"], "times": [0.0, 1.0, 3600.0], "time_steps": [3, 9],
                     "repeats": 2, "families": ["pcm"]},
    })
    assert cfg.network.hidden == (12, 7) and cfg.evaluate.times == (0.0, 1.0, 3600.0)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    path = tmp_path / "run.toml"
    path.write_text(to_toml(cfg.to_dict()))
    assert RunConfig.from_toml(path) == cfg
    # a hand-written file: omitted keys take the defaults
    path.write_text('name = "x"\n[network]\nhidden = [5]\n[hardware]\ncrossbar = { r_row = 0.5 }\n'
                    '[evaluate]\ntimes = [1.0, 2.0]\n')
    small = RunConfig.from_toml(path)
    assert small == RunConfig(name="x").replace(
        network=RunConfig().network.__class__(hidden=(5,)),
        hardware=RunConfig().hardware.replace(crossbar={"r_row": 0.5}),
        evaluate=EvalConfig(times=(1.0, 2.0)))
    assert RunConfig.from_dict({}) == RunConfig()


def test_ideal_converters_can_be_configured_from_toml(tmp_path):
    path = tmp_path / "run.toml"
    accepted = []
    for spelling in ('"none"', '"ideal"', "false", "0"):
        path.write_text(f"[hardware]\ndac_bits = {spelling}\nadc_bits = {spelling}\n")
        try:
            hw = RunConfig.from_toml(path).hardware
        except ValueError:
            continue
        accepted.append(hw.dac_bits is None and hw.adc_bits is None)
    assert any(accepted)


def test_shipped_config_loads():
    from pathlib import Path

    import training
    cfg = RunConfig.from_toml(Path(training.__file__).parent / "configs" / "yin_yang_pcm_hwa.toml")
    assert cfg.hardware.mode == "noisy" and cfg.evaluate.repeats == 3


@pytest.mark.parametrize("values, pattern", [
    ({"bogus": 1}, r"bogus.*\[run\]"),
    ({"train": {"epoch": 3}}, r"epoch.*\[train\]"),
    ({"data": {"batch": 10}}, r"batch.*\[data\]"),
    ({"evaluate": {"time": [1.0]}}, r"time.*\[evaluate\]"),
    ({"network": {"hiden": [3]}}, r"hiden"),
    ({"hardware": {"familly": "pcm"}}, r"familly"),
    ({"hardware": {"family": "flash"}}, r"family"),
    ({"hardware": {"tile_rows": 100000}}, r"tile_rows"),
    ({"evaluate": {"times": [1.0, -5.0]}}, r"evaluate\.times.*-5\.0"),
    ({"evaluate": {"times": [float("nan")]}}, r"evaluate\.times"),
    ({"evaluate": {"steps_time": -1.0}}, r"steps_time"),
    ({"evaluate": {"modes": ["analog"]}}, r"evaluate\.modes"),
    ({"evaluate": {"families": ["sram"]}}, r"evaluate\.families"),
    ({"data": {"dataset": "cifar10"}}, r"dataset.*mnist"),
    ({"train": {"epochs": 0}}, r"epochs"),
    ({"train": {"lr": -1.0}}, r"lr"),
    ({"train": {"optimizer": "lbfgs"}}, r"optimizer"),
    ({"train": 3}, r"\[train\] must be a table"),
    ({"name": "a/b"}, r"name"),
    ({"seed": -1}, r"seed"),
])
def test_bad_run_configs_raise_clear_errors(values, pattern):
    with pytest.raises(ValueError, match=pattern):
        RunConfig.from_dict(values)


@pytest.mark.parametrize("values", [{"network": {"hidden": 16}}, {"evaluate": {"times": 5.0}}])
def test_scalar_instead_of_list_gives_a_clear_error(values):
    with pytest.raises(ValueError, match="hidden|times"):
        RunConfig.from_dict(values)


def test_toml_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        RunConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        RunConfig.from_toml(bad)
    neg = tmp_path / "neg.toml"
    neg.write_text("[evaluate]\ntimes = [1.0, -3600.0]\n")
    with pytest.raises(ValueError, match="evaluate.times"):
        RunConfig.from_toml(neg)


def test_data_and_eval_configs_are_plain_values():
    assert DataConfig().dataset == "yin_yang"
    assert EvalConfig(times=[1, 2]).times == (1, 2)
