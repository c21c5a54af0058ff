"""Benchmark of the parameter-study machinery (``training.sweeps``, issue #8): prints ONE table.

Rows (measured, target, pass/fail):

* **Executor overhead per point** beyond the point's own work. One tiny trained model (Yin-Yang,
  4-8-3 LIF, T = 5, 1 epoch) is deployed at many deployment-only points (``deploy.t`` x
  ``deploy.adc_bits``, ``noisy`` mode). The model is trained beforehand, so the timed
  ``run(..., workers=1)`` (local process pool, start-up of the worker process included) does
  evaluations only. Its wall time is compared (a) with the sum of the points' own evaluation
  times recorded in the store (``eval_s``) and (b) with an in-process loop doing the same
  evaluations (``execute.evaluate_point`` on the model loaded once); overhead = (wall - work) /
  points (target <= 50 ms both ways). The in-process loop must give exactly the stored metrics.
  For information: the pool's fixed start-up (spawn, imports; timed separately) and the overhead
  without it, and the same for ``workers=0`` (in the coordinating process).
* **Throughput of 2 local workers vs 1** on a study of 8 independent trainings of tiny models
  (3 epochs, one point each; ``--quick``: 4 trainings of 1 epoch): points per second with ``workers=2`` over ``workers=1`` (target >= 1.7x). The runs
  alternate 1, 2, 2, 1, ... so that a drifting load of the shared machine affects both alike;
  the summed training times recorded in the store show how much the workers slowed each other
  (CPU contention) rather than the executor.
* **Dask LocalCluster = local pool**: a small study (2 families x 2 inference times x 5 seeds,
  10 trainings of 3 epochs, 20 points; ``--quick``: 2 seeds, 2 epochs) run with the local pool
  (2 workers) and on a Dask ``LocalCluster`` (2 worker processes, 1 thread each): the metrics
  tables (every column of ``training.sweeps.table`` except the timings ``eval_s`` and
  ``train_s``) must be identical.
* **Resume after SIGKILL**: the same study run by ``python -c "run(...)"`` (2 workers) in a
  subprocess that is killed with SIGKILL five times at random moments (``random.Random(--seed)``:
  a delay drawn uniformly from [0, W] s after the subprocess has created its store, W = half the
  wall time of the uninterrupted run), then completed in this process; the final table must equal
  the uninterrupted local run exactly. Also checked: the store is readable after every kill and
  the orphaned pool workers exit by themselves.
* **Kill one worker**: the same study run in this process with 2 local workers while one pool
  worker is killed with SIGKILL at a random moment (``random.Random(--seed + 1)``, uniform in
  [0, W/2] s after both workers are up): the broken pool must be replaced and the tasks in flight
  resubmitted, so that no point fails and the study completes in that same run (a plain re-run
  would finish any point left pending); the final table must equal the uninterrupted run.

Usage: ``python bench/sweep.py [--quick] [--seed N] [--out DIR]`` (full run ~6 min on 2 loaded
cores; ``--quick`` is a smoke run with fewer points and trainings).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.sweeps import Store, load_spec, run, table  # noqa: E402
from training.sweeps import execute  # noqa: E402
from bench._tables import print_targets  # noqa: E402

OVERHEAD_TARGET_S = 0.050
SPEEDUP_TARGET = 1.7
TIMING_COLUMNS = ("eval_s", "train_s")
SUBPROCESS_CODE = ("import sys; from training.sweeps import run; "
                   "run(sys.argv[1], sys.argv[2], workers=2, progress=False)")


# ============================================================================ specs
def toml_value(v) -> str:
    """A TOML literal of a scalar or list (strings quoted, floats with repr)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"TOML value must be finite, got {v!r}")
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def spec_text(name: str, grid: dict, *, epochs: int = 1, hidden: int = 8, replicates: int | None = None) -> str:
    """TOML of a tiny Yin-Yang study (4-``hidden``-3 LIF, T = 5, noisy PCM training, noisy deployment)."""
    lines = ["[study]", f"name = {toml_value(name)}", "seed = 0"]
    if replicates is not None:
        lines.append(f"replicates = {replicates}")
    lines += ["", "[base]",
              f"network = {{ hidden = [{hidden}], time_steps = 5 }}",
              'hardware = { mode = "noisy", family = "pcm" }',
              f"train = {{ epochs = {epochs} }}",
              "", "[deploy]", 'mode = "noisy"', "", "[grid]"]
    lines += [f"{toml_value(axis)} = {toml_value(values)}" for axis, values in grid.items()]
    return "\n".join(lines) + "\n"


def metrics_table(out_dir):
    """The study's tidy table without the timing columns, rows sorted by point key."""
    df, _ = table(out_dir)
    return df.drop(columns=list(TIMING_COLUMNS)).sort_values("key").reset_index(drop=True)


def tables_equal(a, b) -> tuple[bool, str]:
    """``(equal, description of the first difference)`` of two metrics tables (exact comparison)."""
    if list(a.columns) != list(b.columns):
        return False, f"columns differ: {list(a.columns)} vs {list(b.columns)}"
    if len(a) != len(b) or list(a["key"]) != list(b["key"]):
        return False, f"points differ: {len(a)} vs {len(b)} rows"
    if a.equals(b):
        return True, "identical"
    for col in a.columns:
        diff = a[col] != b[col]
        if diff.any():
            i = int(diff.to_numpy().nonzero()[0][0])
            return False, f"{int(diff.sum())} row(s) differ in {col!r}, e.g. {a[col].iloc[i]!r} vs {b[col].iloc[i]!r}"
    return False, "dtypes differ"


def load_average() -> float:
    return os.getloadavg()[0]


# ============================================================================ executor overhead
def overhead_spec(n_times: int) -> tuple[str, str]:
    """(pre-training spec with one point, big spec of 4 x ``n_times`` deployment points); one model."""
    times = [float(f"{10 ** (7.5 * i / max(n_times - 1, 1)):.6g}") for i in range(n_times)]
    pre = spec_text("overhead", {"deploy.t": [0.5]})
    big = spec_text("overhead", {"deploy.t": times, "deploy.adc_bits": [4, 6, 8, "none"]})
    return pre, big


def in_process_loop(spec, model_dir: Path) -> tuple[float, dict]:
    """Wall time of evaluating every point of ``spec`` in this process (model loaded once) and
    ``{key: metrics}``."""
    points = list(spec.points)
    train_key = points[0].train_key
    if any(p.train_key != train_key for p in points):
        raise ValueError("the overhead study must have one trained model")
    loaded = execute._load_state(train_key, points[0].train, str(model_dir / train_key))
    t0 = time.perf_counter()
    metrics = {p.key: execute.evaluate_point(loaded, p.key, p.deploy) for p in points}
    return time.perf_counter() - t0, metrics


def stored_work(out_dir, keys) -> tuple[float, float, dict]:
    """(sum of eval_s, sum of load_s, {key: metrics}) of the points ``keys`` in a study directory."""
    with Store(out_dir, create=False) as store:
        rows = store.rows(set(keys), status="done")
    if len(rows) != len(keys):
        raise RuntimeError(f"only {len(rows)} of {len(keys)} overhead points finished")
    eval_s = sum(r["timings"]["eval_s"] for r in rows)
    load_s = sum(r["timings"]["load_s"] for r in rows)
    metrics = {r["key"]: {k: r["metrics"][k] for k in ("accuracy", "ideal_accuracy", "accuracy_drop")} for r in rows}
    return eval_s, load_s, metrics


def _warm() -> None:
    """First task of a fresh worker: import what an evaluation needs."""
    import training.evaluate  # noqa: F401
    import training.loop  # noqa: F401


def pool_startup(workers: int = 1) -> float:
    """Seconds to start a local pool of ``workers``, run one import task and shut it down."""
    t0 = time.perf_counter()
    ex, _, close = execute.make_executor(workers)
    try:
        ex.submit(_warm).result()
    finally:
        close()
    return time.perf_counter() - t0


def measure_overhead(work: Path, n_times: int, repeats: int) -> dict:
    """Executor overhead per point of the local pool (1 worker) and of inline execution."""
    pre_text, big_text = overhead_spec(n_times)
    big = load_spec(big_text)
    n = len(big.points)
    trained = work / "overhead_trained"
    run(pre_text, trained, workers=0, progress=False)  # trains the model, evaluates one other point
    res = {"points": n, "pool": [], "inline": [], "identical": True}
    print(f"executor overhead: {n} deployment points of one model, {repeats} repeat(s)", flush=True)
    for r in range(repeats):
        startup = pool_startup(1)
        loop_s, loop_metrics = in_process_loop(big, trained / execute.MODELS_DIR)
        for workers, label in ((1, "pool"), (0, "inline")):
            d = work / f"overhead_{label}_{r}"
            shutil.copytree(trained, d)
            summary = run(big_text, d, workers=workers, progress=False)
            if summary["done"] != n or summary["trained"] != 0:
                raise RuntimeError(f"overhead run {label}: expected {n} evaluations and no training, got {summary}")
            eval_s, load_s, metrics = stored_work(d, {p.key for p in big.points})
            res["identical"] &= metrics == loop_metrics
            wall = summary["elapsed_s"]
            start = startup if workers else 0.0
            res[label].append({"wall": wall, "loop": loop_s, "eval": eval_s, "load": load_s, "startup": start,
                               "vs_store": (wall - eval_s) / n, "vs_loop": (wall - loop_s) / n,
                               "steady": (wall - start - eval_s) / n})
            print(f"  repeat {r} {label:6s}: wall {wall:.2f} s, stored eval {eval_s:.2f} s (+ load {load_s:.2f} s), "
                  f"in-process loop {loop_s:.2f} s -> {1e3 * (wall - eval_s) / n:.1f} / "
                  f"{1e3 * (wall - loop_s) / n:.1f} ms per point (pool start-up alone {start:.2f} s); "
                  f"load avg {load_average():.2f}", flush=True)
            shutil.rmtree(d)
    return res


# ============================================================================ 2 workers vs 1
def measure_scaling(work: Path, trainings: int, epochs: int, rounds: int) -> dict:
    """Wall time and summed training time of a study of independent trainings, 1 vs 2 workers."""
    text = spec_text("scaling", {}, epochs=epochs, replicates=trainings)
    n = len(load_spec(text).points)
    order = [w for r in range(rounds) for w in ((1, 2) if r % 2 == 0 else (2, 1))]
    res = {1: [], 2: [], "points": n}
    print(f"throughput: {trainings} independent trainings ({epochs} epoch(s) each), runs {order}", flush=True)
    for i, workers in enumerate(order):
        d = work / f"scaling_{i}_w{workers}"
        summary = run(text, d, workers=workers, progress=False)
        if summary["done"] != n or summary["trained"] != trainings:
            raise RuntimeError(f"scaling run with {workers} worker(s) did not train and evaluate everything: {summary}")
        with Store(d, create=False) as store:
            train_s = sum(m["train_s"] for m in store.models())
        res[workers].append({"wall": summary["elapsed_s"], "train_s": train_s})
        print(f"  {workers} worker(s): {summary['elapsed_s']:.1f} s wall, {train_s:.1f} s of training "
              f"({train_s / summary['elapsed_s']:.2f} trainings in flight on average); "
              f"load avg {load_average():.2f}", flush=True)
        shutil.rmtree(d)
    wall = {w: sum(x["wall"] for x in res[w]) for w in (1, 2)}
    res["speedup"] = wall[1] / wall[2]
    res["throughput"] = {w: n * len(res[w]) / wall[w] for w in (1, 2)}
    res["train_inflation"] = sum(x["train_s"] for x in res[2]) / sum(x["train_s"] for x in res[1])
    return res


# ============================================================================ Dask
def consistency_spec(epochs: int, replicates: int) -> str:
    return spec_text("consistency", {"hardware.family": ["pcm", "rram"], "deploy.t": [1.0, 86400.0]},
                     epochs=epochs, replicates=replicates)


def measure_dask(work: Path, text: str, reference) -> dict:
    """Run ``text`` on a Dask LocalCluster (2 processes x 1 thread); compare with ``reference``."""
    import distributed

    out = work / "dask"
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        summary = run(text, out, scheduler=client, progress=False)
    equal, why = tables_equal(metrics_table(out), reference)
    print(f"dask: {summary['done']} points, {summary['trained']} trainings in {time.perf_counter() - t0:.1f} s "
          f"(cluster start included); table vs local pool: {why}", flush=True)
    return {"equal": equal, "why": why, "summary": summary}


# ============================================================================ SIGKILL and resume
def descendants(pid: int) -> set[int]:
    """Process ids of every descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: set[int], timeout: float) -> tuple[float, set[int]]:
    """(seconds until every pid exited, pids still alive after ``timeout``)."""
    t0 = time.perf_counter()
    left = set(pids)
    while left and time.perf_counter() - t0 < timeout:
        left = {p for p in left if alive(p)}
        if left:
            time.sleep(0.05)
    return time.perf_counter() - t0, left


def store_counts(out: Path) -> tuple[int, int]:
    """(points done, models done) in a study directory; raises if the store is unreadable."""
    with Store(out, create=False) as store:
        done = sum(v == "done" for v in store.statuses().values())
        models = sum(m["status"] == "done" for m in store.models())
    return done, models


def kill_once(spec_path: Path, out: Path, delay: float) -> dict:
    """Start the study in a subprocess, SIGKILL it ``delay`` s after its store appears."""
    proc = subprocess.Popen([sys.executable, "-c", SUBPROCESS_CODE, str(spec_path), str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "results.sqlite").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    end = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    family = descendants(proc.pid)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    if not killed and proc.returncode != 0:
        raise RuntimeError(f"the study subprocess failed (rc {proc.returncode}):\n{err.decode()[-2000:]}")
    orphan_s, left = wait_gone(family, timeout=15.0)
    for pid in left:  # our own subprocess's workers that did not exit by themselves
        os.kill(pid, signal.SIGKILL)
    done, models = store_counts(out)
    checkpoints = len(list((out / execute.MODELS_DIR).glob("*/checkpoints/epoch_*.pt")))
    return {"delay": delay, "killed": killed, "rc": proc.returncode, "workers": len(family),
            "orphan_exit_s": orphan_s, "orphans_left": len(left), "done": done, "models": models,
            "checkpoints": checkpoints}


def measure_kill_resume(work: Path, text: str, reference, kills: int, window: float, seed: int) -> dict:
    """SIGKILL the study ``kills`` times at seeded random moments, complete it, compare tables."""
    rng = random.Random(seed)
    spec_path = work / "killed.toml"
    spec_path.write_text(text)
    out = work / "killed"
    total = len(load_spec(text).points)
    attempts = []
    print(f"SIGKILL and resume: {kills} kills, delays U(0, {window:g}) s after the store appears (seed {seed})",
          flush=True)
    for i in range(kills):
        a = kill_once(spec_path, out, rng.uniform(0.0, window))
        attempts.append(a)
        what = "killed" if a["killed"] else "finished before the kill"
        print(f"  kill {i + 1}: {what} after {a['delay']:.2f} s; store readable: {a['done']}/{total} points, "
              f"{a['models']} models, {a['checkpoints']} epoch checkpoints; {a['workers']} child process(es) gone "
              f"after {a['orphan_exit_s']:.2f} s"
              + (f", {a['orphans_left']} LEFT (killed by the benchmark)" if a["orphans_left"] else ""), flush=True)
    summary = run(spec_path, out, workers=2, progress=False)
    equal, why = tables_equal(metrics_table(out), reference)
    print(f"  completion run: {summary['skipped']} skipped, {summary['done']} done, {summary['failed']} failed, "
          f"{summary['trained']} trainings finished; table vs uninterrupted run: {why}", flush=True)
    return {"attempts": attempts, "equal": equal, "why": why, "summary": summary, "total": total}


# ============================================================================ kill one pool worker
def measure_kill_worker(work: Path, text: str, reference, window: float, seed: int) -> dict:
    """Run ``text`` with 2 local workers in this process, SIGKILL one pool worker at a seeded
    random moment; complete with a plain re-run if needed; compare with ``reference``."""
    import multiprocessing

    delay = random.Random(seed + 1).uniform(0.0, window)
    out = work / "kill_worker"
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set():
            if len(multiprocessing.active_children()) >= 2:
                end = time.monotonic() + delay
                while time.monotonic() < end and not stop.is_set():
                    time.sleep(0.01)
                children = multiprocessing.active_children()
                if children and not stop.is_set():
                    os.kill(children[0].pid, signal.SIGKILL)
                    killed.append(children[0].pid)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    notes: list[str] = []
    thread.start()
    try:
        first = run(text, out, workers=2, progress=False, notify=notes.append)
    finally:
        stop.set()
        thread.join()
    second = None if first["complete"] else run(text, out, workers=2, progress=False)
    equal, why = tables_equal(metrics_table(out), reference)
    print(f"kill one worker: SIGKILL {'sent' if killed else 'NOT sent'} {delay:.2f} s after both workers were up; "
          f"first run: {first['done']} done, {first['failed']} failed, {first['lost']} pending, "
          f"{first['resubmitted']} task(s) resubmitted in {first['elapsed_s']:.1f} s"
          + (f"; re-run: {second['done']} done" if second else "") + f"; table vs uninterrupted run: {why}",
          flush=True)
    return {"killed": bool(killed), "first": first, "second": second, "equal": equal, "why": why, "delay": delay}


# ============================================================================ table
def overhead_rows(ov: dict) -> list[tuple]:
    ms = lambda v: f"{1e3 * v:.1f} ms"  # noqa: E731
    rows = []
    for label, name, target in (("pool", "local pool, 1 worker", OVERHEAD_TARGET_S), ("inline", "workers=0", None)):
        runs = ov[label]
        vs_store = statistics.median(r["vs_store"] for r in runs)
        vs_loop = statistics.median(r["vs_loop"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        detail = f"(wall {wall:.1f} s for {ov['points']} points, median of {len(runs)})"
        tgt = "<= 50 ms" if target else "(info)"
        rows.append((f"overhead per point vs stored eval_s, {name}", f"{ms(vs_store)} {detail}", tgt,
                     None if target is None else vs_store <= target))
        rows.append((f"overhead per point vs in-process loop, {name}", ms(vs_loop), tgt,
                     None if target is None else vs_loop <= target))
        if label == "pool":
            startup = statistics.median(r["startup"] for r in runs)
            steady = statistics.median(r["steady"] for r in runs)
            rows.append(("  of which pool start-up (spawn, imports; once per run)",
                         f"{startup:.2f} s = {ms(startup / ov['points'])} per point", "(info)", None))
            rows.append(("  steady-state overhead per point (vs eval_s, start-up removed)", ms(steady), "(info)",
                         None))
    rows.append(("executor metrics = in-process evaluation (exact)", "yes" if ov["identical"] else "NO", "identical",
                 ov["identical"]))
    return rows


def table_rows(ov: dict, sc: dict, dk: dict, kr: dict, kw: dict) -> list[tuple]:
    rows = overhead_rows(ov)
    tp = sc["throughput"]
    rows.append((f"throughput 2 workers / 1 worker ({sc['points']} trainings, {len(sc[1])}+{len(sc[2])} runs)",
                 f"{sc['speedup']:.2f}x ({60 * tp[1]:.1f} -> {60 * tp[2]:.1f} points/min)", ">= 1.7x",
                 sc["speedup"] >= SPEEDUP_TARGET))
    rows.append(("training time per model, 2 workers / 1 worker (CPU contention)", f"{sc['train_inflation']:.2f}x",
                 "(info)", None))
    rows.append((f"Dask LocalCluster table = local pool ({dk['summary']['done']} points)", dk["why"], "identical",
                 dk["equal"]))
    att = kr["attempts"]
    n_killed = sum(a["killed"] for a in att)
    progress = ", ".join(str(a["done"]) for a in att)
    rows.append(("SIGKILLs that hit a running study", f"{n_killed} of {len(att)} (points done after each: {progress} "
                 f"of {kr['total']})", f"{len(att)} of {len(att)}", n_killed == len(att)))
    left = sum(a["orphans_left"] for a in att)
    slowest = max(a["orphan_exit_s"] for a in att)
    rows.append(("orphaned pool workers exit by themselves after a kill",
                 f"{'all' if not left else f'{left} did NOT'} (slowest {slowest:.2f} s)", "all", left == 0))
    rows.append(("resumed table = uninterrupted run", kr["why"], "identical", kr["equal"]))
    first = kw["first"]
    complete = first["complete"] or bool(kw["second"] and kw["second"]["complete"])
    rows.append(("kill one pool worker (SIGKILL): failed points, pending after that run",
                 f"{first['failed']} failed, {first['lost']} pending, {first['resubmitted']} task(s) resubmitted"
                 + ("" if kw["killed"] else " (NO kill: the run ended first)"), "0 failed",
                 kw["killed"] and first["failed"] == 0 and complete))
    rows.append(("kill one pool worker: table = uninterrupted run", kw["why"], "identical", kw["equal"]))
    return rows


# ============================================================================ main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer points, trainings and repeats")
    p.add_argument("--seed", type=int, default=0, help="seed of the random kill moments (default 0)")
    p.add_argument("--out", type=Path, default=None, help="keep the study directories here (default: temporary)")
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error("--seed must be >= 0")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # the in-process loop runs like a worker: one thread
    q = args.quick
    t0 = time.perf_counter()
    print(f"bench/sweep.py{' --quick' if q else ''}: torch {torch.__version__}, {os.cpu_count()} cores, "
          f"load average (1 min) {load_average():.2f}", flush=True)
    with (tempfile.TemporaryDirectory(prefix="bench_sweep_") if args.out is None else _keep(args.out)) as tmp:
        work = Path(tmp)
        ov = measure_overhead(work, n_times=10 if q else 60, repeats=1 if q else 3)
        sc = measure_scaling(work, trainings=4 if q else 8, epochs=1 if q else 3, rounds=1 if q else 2)
        text = consistency_spec(epochs=2 if q else 3, replicates=2 if q else 5)
        t1 = time.perf_counter()
        ref_summary = run(text, work / "reference", workers=2, progress=False)
        reference = metrics_table(work / "reference")
        print(f"reference (local pool, 2 workers): {ref_summary['done']} points, {ref_summary['trained']} trainings "
              f"in {time.perf_counter() - t1:.1f} s", flush=True)
        dk = measure_dask(work, text, reference)
        window = 0.5 * ref_summary["elapsed_s"]  # kill moments spread over the first half of a whole run
        kr = measure_kill_resume(work, text, reference, kills=5, window=window, seed=args.seed)
        kw = measure_kill_worker(work, text, reference, window=0.5 * window, seed=args.seed)
    print(f"\nload average (1 min) at the end {load_average():.2f}; total {time.perf_counter() - t0:.0f} s\n")
    print_targets(table_rows(ov, sc, dk, kr, kw))
    if q:
        print("\n(--quick: smoke run, too few points and trainings for the timing targets)")


class _keep:
    """Context manager yielding a kept output directory (``--out``)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        if any(self.path.iterdir()):
            raise SystemExit(f"--out {self.path} must be empty or new (the benchmark needs fresh study directories)")
        return str(self.path)

    def __exit__(self, *exc) -> None:
        return None


if __name__ == "__main__":
    main()
