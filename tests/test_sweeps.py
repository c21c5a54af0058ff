"""Parameter studies (training.sweeps): spec validation, seeds, reuse, store, executors, report.

One tiny study (Yin-Yang, 4-8-3 LIF network, 5 time steps, 1 epoch; 2 device families x 2
inference times = 4 points, 2 trainings) is run once with the local process pool and used as
the reference of the other executors and of the kill/resume test. The real ``--scheduler
ADDRESS`` path (separate scheduler and worker processes) is tested in ``test_sweeps_dask.py``.
"""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.sweeps import SpecError, Store, load_spec, report, run, table
from training.sweeps import execute, workers
from training.sweeps.cli import status_text
from training.sweeps.plan import format_plan, plan

TINY = """
[study]
name = "tiny"

[base]
network = { hidden = [8], time_steps = 5 }
hardware = { mode = "noisy", family = "pcm" }
train = { epochs = 1 }

[deploy]
mode = "noisy"

[grid]
"hardware.family" = ["pcm", "rram"]
"deploy.t" = [1.0, 86400.0]
"""


def metrics_by_key(out_dir) -> dict:
    """``{key: (status, accuracy, ideal accuracy)}`` of the TINY study's points in ``out_dir``."""
    keys = {p.key for p in load_spec(TINY).points}
    with Store(out_dir, create=False) as store:
        return {r["key"]: (r["status"], r["metrics"]["accuracy"], r["metrics"]["ideal_accuracy"])
                for r in store.rows(keys)}


def same_state(a, b) -> bool:
    """Whether two loaded checkpoints hold equal values (tensors compared exactly); the files
    themselves differ (torch.save writes a random serialization id)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep_ref")
    summary = run(TINY, out, workers=2, progress=False)
    return out, summary


# ---------------------------------------------------------------------------- spec
def test_validation_reports_every_problem_at_once():
    bad = """
[study]
name = "bad"
colour = "red"
[base]
network = { hidden = [8], time_steps = 5 }
[grid]
"hardware.family" = ["pcm", "floating_gate"]
"hardware.device_params.d2d_sigma" = [0.0, 0.1]
"hardware.tile_rowz" = [64]
"deploy.t" = [1.0, -1.0]
"deploy.mode" = ["noisy", "spice"]
"evaluate.times" = [[1.0]]
[zip]
"hardware.crossbar.r_row" = [1.0, 2.0]
"hardware.crossbar.r_col" = [1.0]
[random]
samples = 2
"hardware.adc_bits" = { gaussian = [4, 8] }
[extra]
x = 1
"""
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    text = str(info.value)
    expected = ["unknown top-level key(s) ['extra']", "unknown [study] key(s) ['colour']",
                "unknown axis 'hardware.tile_rowz'", "deploy.t must be a finite inference time",
                "deploy.mode must be one of ['ideal', 'noisy', 'circuit']", "[evaluate] section is not used",
                "[zip] axes must have equal lengths", "[random] axis 'hardware.adc_bits' must be a table with one of",
                "unknown floating_gate parameter(s) ['d2d_sigma']"]
    for fragment in expected:
        assert fragment in text, fragment
    assert len(info.value.problems) == len(expected)
    assert isinstance(info.value, ValueError)


def test_forbidden_axes_and_base_errors():
    with pytest.raises(SpecError) as info:
        load_spec({"base": {"train": {"epochs": 0}}, "grid": {"hardware.seed": [1, 2], "name": ["a"]}})
    text = str(info.value)
    assert "epochs must be an integer >= 1" in text
    assert "'hardware.seed' cannot be swept" in text and "'name' cannot be swept" in text


def test_seeds_and_keys_independent_of_order_and_spelling():
    a = load_spec({"base": {"network": {"hidden": [8], "time_steps": 5}},
                   "grid": {"hardware.family": ["pcm", "rram"], "hardware.crossbar.r_row": [1, 2.5],
                            "deploy.t": [1.0, 10.0], "seed": [0, 1]}})
    b = load_spec({"base": {"network": {"time_steps": 5, "hidden": [8]}},
                   "grid": {"seed": [1, 0], "deploy.t": [10, 1], "hardware.crossbar.r_row": [2.5, 1.0],
                            "hardware.family": ["rram", "pcm"]}})
    seeds = lambda s: {p.key: (p.train["seed"], p.train["hardware"]["seed"]) for p in s.points}  # noqa: E731
    assert len(a.points) == 16 and a.trainings == 8
    assert seeds(a) == seeds(b)
    assert len({v for v in seeds(a).values()}) == 8  # every training config gets its own seeds
    ordered = [p.key for p in a.points]
    assert ordered != [p.key for p in b.points] and sorted(ordered) == sorted(p.key for p in b.points)


def test_random_and_zip_axes_are_seeded():
    spec = {"study": {"seed": 3, "replicates": 2}, "base": {"network": {"hidden": [8]}},
            "zip": {"hardware.tile_rows": [32, 64], "hardware.tile_cols": [32, 64]},
            "random": {"samples": 3, "hardware.device_params.d2d_sigma": {"uniform": [0.0, 0.1]},
                       "deploy.adc_bits": {"choice": [4, 6, "none"]}}}
    a, b = load_spec(spec), load_spec(spec)
    assert [p.key for p in a.points] == [p.key for p in b.points]
    assert len(a.points) == 2 * 3 * 2
    assert {p.axes["hardware.tile_rows"] for p in a.points} == {32, 64}
    other = load_spec(spec | {"study": {"seed": 4, "replicates": 2}})
    assert {p.key for p in other.points} != {p.key for p in a.points}


# ---------------------------------------------------------------------------- execution
def test_models_are_trained_once_and_reused(reference, tmp_path):
    out, summary = reference
    assert summary["points"] == 4 and summary["done"] == 4 and summary["failed"] == 0
    assert summary["trained"] == 2
    with Store(out, create=False) as store:
        assert len(store.models()) == 2
    assert len(list((out / "models").iterdir())) == 2
    again = run(TINY, out, workers=0, progress=False)
    assert again["skipped"] == 4 and again["done"] == 0 and again["trained"] == 0
    grown = TINY.replace('"deploy.t" = [1.0, 86400.0]', '"deploy.t" = [1.0, 86400.0, 7200.0]')
    more = run(grown, out, workers=0, progress=False)  # new deployment points only: no training
    assert more["skipped"] == 4 and more["done"] == 2 and more["trained"] == 0
    run(TINY, out, workers=0, progress=False)  # restore the reference's latest spec
    assert "4 point(s): 4 done, 0 failed, 0 pending — complete; 2 model(s) trained" in status_text(out)


def test_failures_are_recorded_and_retried(tmp_path, monkeypatch):
    spec = TINY.replace('["pcm", "rram"]', '["pcm"]')
    real = workers.evaluate_point

    def flaky(loaded, key, deploy):
        if deploy["t"] > 1.0:
            raise RuntimeError("simulated evaluation failure")
        return real(loaded, key, deploy)

    monkeypatch.setattr(workers, "evaluate_point", flaky)
    first = run(spec, tmp_path, workers=0, progress=False)
    assert first["done"] == 1 and first["failed"] == 1
    with Store(tmp_path, create=False) as store:
        failed = store.rows(status="failed")
    assert len(failed) == 1 and "simulated evaluation failure" in failed[0]["error"]
    monkeypatch.setattr(workers, "evaluate_point", real)
    assert run(spec, tmp_path, workers=0, progress=False)["done"] == 0  # failed points are kept ...
    retry = run(spec, tmp_path, workers=0, progress=False, retry_failed=True)  # ... until retried
    assert retry["done"] == 1 and retry["trained"] == 0
    with Store(tmp_path, create=False) as store:
        assert {r["status"] for r in store.rows()} == {"done"}
        assert max(r["attempts"] for r in store.rows()) == 2


def test_sigkill_mid_study_then_resume_matches_uninterrupted(reference, tmp_path):
    ref_dir, _ = reference
    spec_path = tmp_path / "tiny.toml"
    spec_path.write_text(TINY)
    out = tmp_path / "killed"
    code = ("import sys; from training.sweeps import run; "
            "run(sys.argv[1], sys.argv[2], workers=0, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec_path), str(out)],
                            cwd=Path(__file__).resolve().parent.parent)
    done, deadline = 0, time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "results.sqlite").is_file():
                with Store(out, create=False) as store:
                    done = sum(v == "done" for v in store.statuses().values())
                if done >= 1:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study finished before it could be killed"
    with Store(out, create=False) as store:  # readable right after the kill, finished points kept
        kept = store.statuses()
    assert 1 <= sum(v == "done" for v in kept.values()) < 4
    resumed = run(spec_path, out, workers=0, progress=False)
    assert resumed["skipped"] == len(kept) and resumed["failed"] == 0
    assert metrics_by_key(out) == metrics_by_key(ref_dir)


def test_dask_local_cluster_matches_local_pool(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    ref_dir, _ = reference
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        summary = run(TINY, tmp_path, scheduler=client, progress=False)
    assert summary["done"] == 4 and summary["trained"] == 2
    assert metrics_by_key(tmp_path) == metrics_by_key(ref_dir)


def test_worker_local_training_resumes_from_a_sent_checkpoint(tmp_path):
    """The Dask path trains in a worker-local directory from the checkpoint bytes it is sent and
    returns the same final checkpoint as training on in the study directory."""
    from training.config import RunConfig
    from training.loop import train

    config = load_spec(TINY.replace("epochs = 1", "epochs = 2")).points[0].train
    in_place = tmp_path / "in_place"
    train(RunConfig.from_dict(config), in_place, progress=False, stop_after=1)
    first = (in_place / "checkpoints" / "epoch_0001.pt").read_bytes()
    local = execute.train_task(config, str(in_place))
    remote = execute.train_task(config, None, ("epoch_0001.pt", first))
    assert local["ok"] and remote["ok"], (local.get("error"), remote.get("error"))
    assert local["epochs_trained"] == remote["epochs_trained"] == 1 and local["history"] == remote["history"]
    a, b = (torch.load(io.BytesIO(r["checkpoint"]), weights_only=True) for r in (local, remote))
    assert same_state(a, b)  # model, optimiser, random states and history
    assert remote["metrics_csv"] == (in_place / "metrics.csv").read_bytes()
    assert not execute.train_task(config, None, ("../evil.pt", first))["ok"]


def test_worker_with_another_memxbar_version_fails_its_points(reference, tmp_path, monkeypatch):
    ref_dir, _ = reference
    out = tmp_path / "copy"
    shutil.copytree(ref_dir, out)
    real = workers.evaluate_task

    def other_version(*args):
        return [r | {"versions": r["versions"] | {"memxbar": "0.0.1"}} for r in real(*args)]

    monkeypatch.setattr(workers, "evaluate_task", other_version)
    grown = TINY.replace('"deploy.t" = [1.0, 86400.0]', '"deploy.t" = [1.0, 86400.0, 3600.0]')
    summary = run(grown, out, workers=0, progress=False)  # 2 new points of trained models
    assert summary["trained"] == 0 and summary["failed"] == 2 and summary["done"] == 0
    with Store(out, create=False) as store:
        failed = store.rows(status="failed")
    assert {r["versions"]["memxbar"] for r in failed} == {"0.0.1"}
    assert all("install the same memxbar version on every worker" in r["error"] for r in failed)


# ---------------------------------------------------------------------------- plan, report, CLI
def test_plan_and_report(reference):
    out, _ = reference
    summary = plan(TINY, out)
    assert summary["points"] == 4 and summary["todo_points"] == 0
    fresh = plan(TINY)
    assert fresh["todo_trainings"] == 2 and fresh["train_cpu_s"] > 0
    assert "4 point(s), 2 training configuration(s)" in format_plan(fresh, workers=2)
    md = report(out)
    text = md.read_text()
    assert "The non-ideality that costs most" in text and "hardware.family" in text
    dest = out / "report"
    for name in ("results.csv", "results.parquet", "accuracy_vs_hardware_family.png", "accuracy_vs_deploy_t.png",
                 "heatmap_hardware_family__deploy_t.png"):
        assert (dest / name).is_file(), name
    import pandas as pd

    df = pd.read_parquet(dest / "results.parquet")
    assert len(df) == 4 and set(df["hardware.family"]) == {"pcm", "rram"}
    assert df.equals(table(out)[0])
    assert json.loads(json.dumps(list(df.columns)))[:3] == ["key", "train_key", "status"]
    # every point records the energy of the evaluated chip; the report plots accuracy against it
    assert (df["energy_per_inference_J"] > 0).all() and (df["latency_per_step_s"] > 0).all()
    assert list(dest.glob("accuracy_vs_metric_energy_per_inference*.png")), sorted(p.name for p in dest.iterdir())


def test_cli_plan_and_errors(tmp_path, capsys):
    from training.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text(TINY)
    assert main(["sweep", "plan", str(spec), "--workers", "2"]) == 0
    assert "study 'tiny': 4 point(s)" in capsys.readouterr().out
    spec.write_text(TINY + '"deploy.mode" = ["fast"]\n')
    assert main(["sweep", "plan", str(spec)]) == 2
    assert "deploy.mode must be one of" in capsys.readouterr().err
    assert main(["sweep", "status", str(tmp_path / "nothing")]) == 2
