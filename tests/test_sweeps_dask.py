"""``xbar sweep run SPEC --scheduler ADDRESS`` against a real Dask cluster of separate processes.

A ``dask scheduler`` and one ``dask worker`` run as subprocesses (their own process group,
killed at the end); the worker's working and local directory is not the study directory and
it is never told the study directory: models travel as bytes (``training.sweeps.execute``).
The tiny study of ``test_sweeps`` run through the CLI must store exactly the metrics of an
in-process (``workers = 0``) run of the same spec.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_sweeps import TINY, metrics_by_key, same_state
from training.sweeps import Store, load_spec, run
from training.sweeps.execute import versions

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 45.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dask_command(kind: str) -> list[str]:
    """The command starting a Dask ``kind`` ("scheduler" or "worker") from this Python environment."""
    script = Path(sys.executable).with_name("dask")
    if script.is_file():
        return [str(script), kind]
    return [sys.executable, "-m", f"distributed.cli.dask_{kind}"]


def start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """``cmd`` in a new session (its own process group), output to ``log``."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Terminate the process group of ``proc`` (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


@pytest.fixture
def dask_cluster(tmp_path):
    """``(scheduler address, worker local directory, log files)`` of a scheduler and one
    single-threaded worker started as separate processes."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    worker_dir = tmp_path / "worker_local"
    worker_dir.mkdir()
    logs = [tmp_path / "scheduler.log", tmp_path / "worker.log"]
    procs = []
    try:
        procs.append(start(dask_command("scheduler") + ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                                                        "--idle-timeout", "300s"], worker_dir, logs[0]))
        procs.append(start(dask_command("worker") + [address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                                     "--local-directory", str(worker_dir), "--death-timeout", "60s",
                                                     "--host", "127.0.0.1"], worker_dir, logs[1]))
        deadline = time.monotonic() + START_TIMEOUT_S
        with distributed.Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
        yield address, worker_dir, logs
    finally:
        for proc in reversed(procs):
            stop(proc)


@pytest.mark.slow
def test_cli_run_on_dask_cluster_without_shared_study_dir_matches_local(dask_cluster, tmp_path):
    address, worker_dir, logs = dask_cluster
    spec_path = tmp_path / "tiny.toml"
    spec_path.write_text(TINY)
    out = tmp_path / "study"
    proc = subprocess.run([sys.executable, "-m", "training.cli", "sweep", "run", str(spec_path), "--out", str(out),
                           "--scheduler", address, "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=os.environ | {"OMP_NUM_THREADS": "1"})
    output = proc.stdout + proc.stderr + "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)
    assert proc.returncode == 0, output
    assert "4 done and 0 failed now, 2 model(s) trained" in proc.stdout, output

    local = tmp_path / "local"
    run(TINY, local, workers=0, progress=False)
    assert metrics_by_key(out) == metrics_by_key(local)

    # the coordinator wrote each model's final checkpoint, metrics and training-session log; the
    # worker left nothing behind
    train_keys = {p.train_key for p in load_spec(TINY).points}
    for key in train_keys:
        model_dir = out / "models" / key
        assert sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()) == \
            ["checkpoints/epoch_0001.pt", "metrics.csv", "train_sessions.json"]
        assert same_state(torch.load(model_dir / "checkpoints" / "epoch_0001.pt", weights_only=True),
                          torch.load(local / "models" / key / "checkpoints" / "epoch_0001.pt", weights_only=True))
    assert not list(worker_dir.rglob("memxbar-*")), "worker-local training directories were not removed"
    with Store(out, create=False) as store:
        assert [r["versions"] for r in store.rows()] == [versions()] * 4  # recorded by the worker
