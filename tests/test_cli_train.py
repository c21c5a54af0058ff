"""``xbar train``: --epochs/--quick, the deployed-accuracy summary, threads = "auto", and
checkpoints that are validated before a run resumes from them (issues 15 and 16)."""
from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from training import RunConfig
from training.checkpoints import (CheckpointConfigError, CheckpointError, CheckpointWarning, checkpoint_path,
                                  list_checkpoints, load_checkpoint)
from training.cli import main, train_config
from training.loop import train
from training.threads import MAX_AUTO_THREADS, auto_threads, resolve_threads

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "yin_yang", "batch_size": 500},
    "network": {"hidden": [8], "time_steps": 3},
    "hardware": {"mode": "noisy"},
    "train": {"epochs": 3, "threads": 1},
    "evaluate": {"times": [1.0, 86400.0], "time_steps": [3], "repeats": 2, "modes": ["noisy"],
                 "steps_time": 86400.0},
}
TOML = """name = "tiny"
seed = 0
[data]
dataset = "yin_yang"
batch_size = 500
[network]
hidden = [8]
time_steps = 3
[hardware]
mode = "noisy"
[train]
epochs = 3
threads = 1
[evaluate]
times = [1.0, 86400.0]
time_steps = [3]
repeats = 2
modes = ["noisy"]
"""


def tiny(**train_options) -> RunConfig:
    values = json.loads(json.dumps(TINY))
    values["train"].update(train_options)
    return RunConfig.from_dict(values)


# ------------------------------------------------------------------ --epochs, --quick, summary
def test_train_epochs_and_quick_options(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(TOML)

    class Args:
        config, epochs, quick = str(cfg), None, False

    assert train_config(Args) == RunConfig.from_toml(cfg)
    Args.epochs = 5
    assert train_config(Args).train.epochs == 5 and train_config(Args).name == "tiny"
    Args.epochs, Args.quick = None, True
    quick = train_config(Args)
    assert (quick.name, quick.train.epochs, quick.evaluate.repeats) == ("tiny_quick", 2, 1)
    Args.epochs = 1
    assert train_config(Args).train.epochs == 1


def test_train_prints_the_deployed_accuracy_also_when_quiet(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(TOML)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("tiny: 1 epochs, validation accuracy")
    assert printed[1].startswith("  ideal (no hardware): ")
    noisy = [ln for ln in printed if "deployed on pcm, noisy (2 device seeds)" in ln]
    assert len(noisy) == 1 and "1 s " in noisy[0] and "1 day " in noisy[0]
    results = json.loads((out / "results.json").read_text())
    from training.loop import evaluation_count
    assert evaluation_count(RunConfig.from_dict(results["config"])) == len(results["evaluation"])  # progress bar total
    rows = [r for r in results["evaluation"] if r["sweep"] == "time" and r["t"] == 86400.0]
    mean = sum(r["accuracy"] for r in rows) / len(rows)
    assert f"1 day {100 * mean:.1f} %" in noisy[0]  # the printed number is the mean over device seeds
    energy = [ln for ln in printed if ln.startswith("  energy (")]
    assert len(energy) == 1 and f"{results['energy']['energy_per_inference_J'] * 1e9:.3g} nJ per inference" in energy[0]
    assert printed[-1].startswith(f"results in {out}")


# ------------------------------------------------------------------ threads = "auto"
def test_auto_threads_rules():
    assert auto_threads(cores=2, physical=2, load=3.5) == 1        # busy 2-core machine
    assert auto_threads(cores=2, physical=2, load=0.0) == 2
    assert auto_threads(cores=16, physical=8, load=0.2) == MAX_AUTO_THREADS == 4
    assert auto_threads(cores=16, physical=8, load=14.5) == 1
    assert auto_threads(cores=1, physical=1, load=0.0) == 1
    assert auto_threads(cores=16, physical=2, load=0.0) == 2       # hyper-threads are not cores
    assert 1 <= resolve_threads("auto") <= MAX_AUTO_THREADS
    assert resolve_threads(0) == 0 and resolve_threads(3) == 3
    assert RunConfig().train.threads == "auto"
    for bad in ("AUTO", -1, 1.5, True, None):
        with pytest.raises(ValueError, match="threads"):
            RunConfig.from_dict({"train": {"threads": bad}})


# ------------------------------------------------------------------ run names
@pytest.mark.parametrize("name", [".", "..", "a/b", "../x", "a\\b", "", "x\n", "\0", "x\ty", " lead", "trail ",
                                  "a\u202eb", "a\u2028b", "x" * 201, 5, None])
def test_run_names_must_be_one_plain_path_component(name):
    with pytest.raises(ValueError, match="name must be"):
        RunConfig.from_dict({"name": name})


@pytest.mark.parametrize("name", ["run", "yy-pcm_hwa.2", "Läufe", "α=0.5 β", "x" * 200])
def test_plain_run_names_are_accepted(name):
    assert RunConfig.from_dict({"name": name}).name == name


def test_dotdot_name_cannot_leave_results(tmp_path, capsys, monkeypatch):
    """Issue 15: ``name = ".."`` made ``xbar train`` write beside ``results/``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.toml").write_text('name = ".."\n')
    assert main(["train", "--config", "evil.toml"]) == 2
    assert "name must be" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.toml"]


# ------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-epoch tiny run (uninterrupted), its config and directory."""
    cfg = tiny()
    out = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    _, history = train(cfg, out, progress=False)
    return cfg, out, history


def _copy_run(trained, tmp_path):
    cfg, out, history = trained
    target = tmp_path / "run"
    shutil.copytree(out, target)
    return cfg, target, history


def _state(path):
    return torch.load(path, weights_only=True)


def _resave(path, state):
    torch.save(state, path)


CORRUPTIONS = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00not a checkpoint" * 50),
    "text": lambda p: p.write_text("epoch = 3\n"),
    "a list": lambda p: _resave(p, [1, 2, 3]),
    "missing key": lambda p: _resave(p, {k: v for k, v in _state(p).items() if k != "optimizer"}),
    "epoch 999": lambda p: _resave(p, _state(p) | {"epoch": 999}),
    "epoch vs name": lambda p: _resave(p, _state(p) | {"epoch": 2, "history": _state(p)["history"][:2]}),
    "epoch bool": lambda p: _resave(p, _state(p) | {"epoch": True}),
    "epoch float": lambda p: _resave(p, _state(p) | {"epoch": 3.0}),
    "short history": lambda p: _resave(p, _state(p) | {"history": _state(p)["history"][:1]}),
    "history numbering": lambda p: _resave(p, _state(p) | {"history": [dict(r, epoch=7)
                                                                         for r in _state(p)["history"]]}),
    "rng state": lambda p: _resave(p, _state(p) | {"torch_rng": torch.zeros(3, dtype=torch.uint8)}),
    "model shapes": lambda p: _resave(p, _state(p) | {"model": {k: torch.zeros(2) for k in _state(p)["model"]}}),
    "model not tensors": lambda p: _resave(p, _state(p) | {"model": {"w": "x"}}),
    "optimizer junk": lambda p: _resave(p, _state(p) | {"optimizer": {"state": 5, "param_groups": "x"}}),
}

#: corruptions that only loading into the model / optimiser reveals
FIT_ERRORS = ("model shapes", "model not tensors", "optimizer junk")


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_bad_last_checkpoint_falls_back_to_the_previous_one(kind, trained, tmp_path):
    """The newest checkpoint is damaged: a one-line warning names it and the reason, the run
    resumes from epoch 2 and ends exactly as the uninterrupted run (every random state comes
    from the good checkpoint). Before the fix: a traceback, or a silent resume from epoch 999."""
    cfg, out, history = _copy_run(trained, tmp_path)
    last = checkpoint_path(out, 3)
    CORRUPTIONS[kind](last)
    if kind not in FIT_ERRORS:  # found by the file checks alone; the others when loaded into the model
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(last, cfg)
        message = str(info.value)
        assert "\n" not in message and str(last) in message
    with pytest.warns(CheckpointWarning, match="epoch_0003.pt") as caught:
        _, resumed = train(cfg, out, progress=False)
    assert any("resuming from epoch_0002.pt" in str(w.message) for w in caught)
    assert resumed == history  # bit-identical metrics
    assert load_checkpoint(last, cfg)["epoch"] == 3  # the bad file was replaced by a good one


def test_all_checkpoints_bad_starts_from_scratch_with_a_warning(trained, tmp_path):
    cfg, out, history = _copy_run(trained, tmp_path)
    for path in list_checkpoints(out):
        path.write_bytes(b"")
    with pytest.warns(CheckpointWarning) as caught:
        _, again = train(cfg, out, progress=False)
    messages = [str(w.message) for w in caught]
    assert sum("is empty (0 bytes)" in m for m in messages) == 3 and "starts from scratch" in messages[-1]
    assert again == history


def test_checkpoint_of_another_config_is_refused_not_repaired(trained, tmp_path):
    cfg, out, _ = _copy_run(trained, tmp_path)
    other = tiny(lr=0.02)
    with pytest.raises(CheckpointConfigError, match=r"different configuration \(train.lr \(0.01 there, 0.02 here\)"):
        train(other, out, progress=False)
    with pytest.raises(CheckpointConfigError):
        load_checkpoint(checkpoint_path(out, 3), other)


def test_misnamed_files_are_ignored(trained, tmp_path):
    cfg, out, _ = _copy_run(trained, tmp_path)
    for name in ("epoch_0009.pt\n", "epoch_٠٠١٠.pt", "epoch_12.pt", "epoch_0011.pt.tmp"):
        (out / "checkpoints" / name).write_bytes(b"junk")
    assert [p.name for p in list_checkpoints(out)] == ["epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the junk is not a checkpoint
        train(cfg, out, progress=False)


def test_cli_reports_a_bad_checkpoint_in_one_warning_line(trained, tmp_path, capsys):
    cfg, out, _ = _copy_run(trained, tmp_path)
    toml = tmp_path / "run.toml"
    toml.write_text(TOML)
    checkpoint_path(out, 3).write_bytes(b"")
    assert main(["train", "--config", str(toml), "--out", str(out), "--quiet"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == [f"xbar: warning: checkpoint {checkpoint_path(out, 3)} is empty (0 bytes): an interrupted "
                   "copy?; resuming from epoch_0002.pt instead"]


def test_malicious_checkpoint_cannot_run_code(trained, tmp_path):
    """``torch.load(weights_only=True)``: a pickle that would call a function is refused."""
    cfg, out, _ = _copy_run(trained, tmp_path)
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    last = checkpoint_path(out, 3)
    torch.save({"payload": Evil()}, last)
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(last, cfg)
    with pytest.warns(CheckpointWarning):
        train(cfg, out, progress=False)
    assert not marker.exists()


def test_conversion_run_with_a_bad_checkpoint_trains_again(tmp_path):
    cfg = RunConfig.from_dict(json.loads(json.dumps(TINY)) | {"train": {"epochs": 1, "method": "conversion",
                                                                          "threads": 1}})
    _, first = train(cfg, tmp_path, progress=False)
    path = checkpoint_path(tmp_path, 1)
    _resave(path, _state(path) | {"epoch": 999})
    with pytest.warns(CheckpointWarning, match="training the network again"):
        _, again = train(cfg, tmp_path, progress=False)
    assert again == first
