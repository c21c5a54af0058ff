"""Sweeps under crashes, kills, locks and interruptions (issue 15): regression tests.

The tiny study of ``test_sweeps`` (2 trainings, 4 points) is run once in this process as the
reference; every scenario must end with exactly its metrics (same seed => identical bits, across
worker deaths, resubmissions, interruptions and resumes).
"""
import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_sweeps import TINY, metrics_by_key
from training.cli import main
from training.sweeps import Store, load_spec, run, workers

ROOT = Path(__file__).resolve().parent.parent
GROWN = TINY.replace('"deploy.t" = [1.0, 86400.0]', '"deploy.t" = [1.0, 86400.0, 3600.0]')


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reliability_ref")
    run(TINY, out, workers=0, progress=False)
    return out


def spec_file(tmp_path, text=TINY) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def cli(args, env=None, timeout=120):
    """``python -m training.cli ARGS`` in a subprocess: (return code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "training.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=os.environ | {"OMP_NUM_THREADS": "1"} | (env or {}))
    return proc.returncode, proc.stdout, proc.stderr


# ---------------------------------------------------------------------------- dead workers
def test_killed_pool_worker_is_replaced_and_costs_no_point(reference, tmp_path, capsys):
    """SIGKILL of one local pool worker: the pool is replaced, the tasks in flight are
    resubmitted, no point fails, and the results are those of an uninterrupted run (before: every
    point failed with BrokenProcessPool, even groups never submitted)."""
    killed, stop = [], threading.Event()

    def killer():
        while not stop.is_set():
            children = multiprocessing.active_children()
            if len(children) >= 2:
                time.sleep(0.5)
                os.kill(children[0].pid, signal.SIGKILL)
                killed.append(children[0].pid)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = run(TINY, tmp_path, workers=2, progress=False)
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was killed"
    assert summary["failed"] == 0 and summary["done"] == 4
    assert summary["complete"] and summary["resubmitted"] >= 1 and summary["lost"] == 0
    assert "a worker process died" in capsys.readouterr().err
    assert metrics_by_key(tmp_path) == metrics_by_key(reference)


def test_points_lost_with_a_pool_that_keeps_breaking_stay_pending(tmp_path, monkeypatch):
    """Infrastructure failures are not point failures: when the pool breaks on every submission
    the run ends with every point pending (none recorded as failed) and a re-run does them."""
    from concurrent.futures.process import BrokenProcessPool

    from training.sweeps import executors

    class Broken:
        def submit(self, *args, **kwargs):
            raise BrokenProcessPool("simulated dead worker")

        def shutdown(self, *args, **kwargs):
            pass

    monkeypatch.setattr(executors, "_local_pool", lambda *args, **kwargs: Broken())
    summary = run(TINY, tmp_path, workers=2, progress=False, notify=lambda message: None)
    assert summary["failed"] == 0 and summary["done"] == 0 and summary["lost"] == 4 and summary["pending"] == 4
    assert not summary["complete"]
    with Store(tmp_path, readonly=True) as store:
        assert store.statuses() == {}  # nothing recorded: pending
    monkeypatch.undo()
    assert run(TINY, tmp_path, workers=0, progress=False)["done"] == 4


def test_failed_points_are_not_finished_and_the_exit_code_says_incomplete(tmp_path, monkeypatch, capsys):
    """A plain re-run after point failures keeps them failed, says so and exits 1 (before: it
    counted them as finished and exited 0); status calls the study incomplete."""
    spec = spec_file(tmp_path)
    real = workers.evaluate_point

    def flaky(loaded, key, deploy):
        if deploy["t"] > 1.0:
            raise RuntimeError("simulated evaluation failure")
        return real(loaded, key, deploy)

    monkeypatch.setattr(workers, "evaluate_point", flaky)
    out = tmp_path / "study"
    assert main(["sweep", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet"]) == 1
    monkeypatch.setattr(workers, "evaluate_point", real)
    capsys.readouterr()
    assert main(["sweep", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "2 failed earlier (kept; --retry-failed runs them again)" in text and "study incomplete" in text
    assert main(["sweep", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "2 done, 2 failed, 0 pending — incomplete" in status
    assert main(["sweep", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet", "--retry-failed"]) == 0


# ---------------------------------------------------------------------------- lock
def test_second_run_on_a_locked_study_directory_is_refused(reference, tmp_path, capsys):
    """Another process holds DIR/.lock: `sweep run` refuses with a clear message and trains
    nothing (before: both runs trained every model)."""
    out = tmp_path / "study"
    shutil.copytree(reference, out)
    spec = spec_file(tmp_path, GROWN)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["sweep", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "is in use by another `xbar sweep run`" in err and "Traceback" not in err
    finally:
        os.close(fd)
    with Store(out, readonly=True) as store:
        assert len(store.statuses()) == 4  # the grown spec's 2 new points were not run
    assert main(["sweep", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet"]) == 0  # lock released


# ---------------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("target", ["coordinator", "terminal group"])
def test_ctrl_c_stops_at_once_without_traceback(target, reference, tmp_path):
    """SIGINT to the coordinating process alone (while workers train), or to the whole process
    group as a terminal's Ctrl-C does (while the workers are still starting): the run stops its
    workers at once, prints one line, exits 130, and a re-run completes with the reference's
    results (before: a KeyboardInterrupt traceback after ~16 s of in-flight trainings)."""
    spec = spec_file(tmp_path)
    out = tmp_path / "study"
    proc = subprocess.Popen([sys.executable, "-m", "training.cli", "sweep", "run", str(spec), "--out", str(out),
                             "--workers", "2", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, start_new_session=True,
                            preexec_fn=_terminal_signals)
    deadline = time.monotonic() + 60
    ready = (out / "models") if target == "coordinator" else (out / "results.sqlite")
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.5 if target == "coordinator" else 0.3)
    children, signals = _children(proc.pid), _signal_state(proc.pid)
    t0 = time.monotonic()
    if target == "coordinator":
        proc.send_signal(signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    stopped_s = time.monotonic() - t0
    assert proc.returncode == 130, (err, f"SIGINT sent {stopped_s:.1f} s before the end; coordinator {signals}")
    assert stopped_s < 8.0, f"took {stopped_s:.1f} s to stop"
    assert "Traceback" not in err and "interrupted" in err and "run the same command again to resume" in err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)  # no worker left behind
    assert run(spec, out, workers=0, progress=False)["complete"]
    assert metrics_by_key(out) == metrics_by_key(reference)


def _terminal_signals() -> None:
    """In the child before exec: SIGINT at its default disposition, as in a terminal's process
    (a shell script's background job, such as ``make test &``, starts with SIGINT ignored, and
    so does every process it starts: the run then rightly ignores Ctrl-C and ends with exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_state(pid: int) -> str:
    """The main thread's blocked / ignored / caught signal masks (for a failure's message)."""
    try:
        lines = Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    return ", ".join(line.replace("\t", " ") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------- scheduler
def test_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path):
    """A closed port: one line naming the address, within seconds, and no study directory left
    behind (before: a 30 s wait, an OSError traceback and an empty store)."""
    pytest.importorskip("distributed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "study"
    t0 = time.monotonic()
    code, _, err = cli(["sweep", "run", spec_file(tmp_path), "--out", out, "--scheduler", f"tcp://127.0.0.1:{port}",
                        "--quiet"], timeout=60)
    assert code == 2 and time.monotonic() - t0 < 25
    assert err.strip().splitlines() == [f"xbar: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "
                                        "Connection refused (is `dask scheduler` running there, and the port open?)"]
    assert not out.exists()


# ---------------------------------------------------------------------------- checkpoints
def test_corrupt_final_checkpoint_is_moved_aside_and_the_model_retrained(reference, tmp_path, capsys):
    """A truncated final checkpoint of a model recorded as trained is detected, moved aside and
    the model retrained (before: it was trusted and every new point of it failed)."""
    out = tmp_path / "study"
    shutil.copytree(reference, out)
    final = sorted((out / "models").glob("*/checkpoints/epoch_0001.pt"))[0]
    final.write_bytes(final.read_bytes()[:500])
    summary = run(GROWN, out, workers=0, progress=False)
    assert summary["failed"] == 0 and summary["done"] == 2 and summary["trained"] == 1
    err = capsys.readouterr().err
    assert f"checkpoint {final} cannot be loaded (truncated or corrupt)" in err and "retraining model" in err
    assert final.with_name("epoch_0001.pt.corrupt").is_file() and final.is_file()
    grown_ref = tmp_path / "grown_ref"
    shutil.copytree(reference, grown_ref)
    run(GROWN, grown_ref, workers=0, progress=False)
    keys = {p.key for p in load_spec(GROWN).points}
    with Store(out, readonly=True) as a, Store(grown_ref, readonly=True) as b:
        assert {r["key"]: r["metrics"] for r in a.rows(keys)} == {r["key"]: r["metrics"] for r in b.rows(keys)}


def test_training_time_sums_every_session_of_a_resumed_training(tmp_path):
    """A training killed after its first epoch and resumed: the model's recorded training time
    is the sum over both sessions (the killed one up to its last checkpoint), not the last
    session's time only."""
    spec = spec_file(tmp_path, TINY.replace("epochs = 1", "epochs = 2").replace('["pcm", "rram"]', '["pcm"]'))
    out = tmp_path / "study"
    code = "import sys; from training.sweeps import run; run(sys.argv[1], sys.argv[2], workers=0, progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec), str(out)], cwd=ROOT,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if list(out.glob("models/*/checkpoints/epoch_0001.pt")):
                break
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study finished before it could be killed"
    run(spec, out, workers=0, progress=False)
    model_dir = next((out / "models").iterdir())
    sessions = workers.read_sessions(model_dir)
    assert [(s["start_epoch"], s["end_epoch"]) for s in sessions] == [(0, 1), (1, 2)] and sessions[0]["killed"]
    with Store(out, readonly=True) as store:
        (model,) = store.models()
    assert model["train_s"] == pytest.approx(sum(s["seconds"] for s in sessions))
    assert model["train_s"] > sessions[1]["seconds"] and sessions[0]["seconds"] > 0


# ---------------------------------------------------------------------------- read-only studies
def _read_only_view(src: Path, tmp_path: Path):
    """A command prefix that sees ``src`` read-only at the returned path: a read-only bind mount
    in a private mount namespace (root), or plain permissions (other users)."""
    if os.geteuid() != 0:
        for path in [src, *src.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return [], src
    view = tmp_path / "read_only_view"
    view.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {src} {view} && mount -o remount,ro,bind "
                            f"{view} && ! touch {view}/probe 2>/dev/null"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("root without a way to make a read-only directory (no unshare/mount)")
    return ["unshare", "-m", "sh", "-c", f'mount --bind {src} {view} && mount -o remount,ro,bind {view} && exec "$@"',
            "sh"], view


def test_read_only_study_can_be_read_and_refuses_runs_in_one_line(reference, tmp_path):
    """status/report/plan read a study on a read-only medium (before: WAL and CREATE TABLE on
    open failed); run says in one line that the directory is not writable."""
    src = tmp_path / "study"
    shutil.copytree(reference, src)
    for leftover in src.glob("results.sqlite-*"):
        leftover.unlink()
    prefix, view = _read_only_view(src, tmp_path)
    dest = tmp_path / "report_elsewhere"
    spec = spec_file(tmp_path, GROWN)

    commands = [["status", view], ["report", view, "--dest", dest], ["report", view],
                ["run", spec, "--out", view, "--workers", "0", "--quiet"]]
    script = ("import contextlib, io, json, sys\nfrom training.cli import main\nresults = []\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    out, err = io.StringIO(), io.StringIO()\n"
              "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
              "        code = main(['sweep', *argv])\n"
              "    results.append([code, out.getvalue(), err.getvalue()])\n"
              "print(json.dumps(results))\n")
    proc = subprocess.run([*prefix, sys.executable, "-c", script, json.dumps([[str(a) for a in c] for c in commands])],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    (status, report_dest, report_here, run_here) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status[0] == 0 and "4 point(s): 4 done, 0 failed, 0 pending — complete" in status[1], status
    assert report_dest[0] == 0 and (dest / "report.md").is_file() and (dest / "results.parquet").is_file(), report_dest
    assert report_here[0] == 2 and len(report_here[2].strip().splitlines()) == 1 and "--dest" in report_here[2]
    assert run_here[0] == 2 and len(run_here[2].strip().splitlines()) == 1 and "not writable" in run_here[2], run_here
