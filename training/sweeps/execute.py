"""Two-stage execution of a study: train once per training config, then evaluate its deployment points.

Stage 1 trains every training configuration that has unfinished points (one task per
``train_key``). Stage 2 evaluates the deployment points of a trained model in small tasks (a
fresh model from the final checkpoint per point, programmed with the point's device seed),
submitted as soon as that model is ready. Only the coordinating process writes the SQLite store
(:mod:`training.sweeps.store`), one transaction per finished point.

How models move. A training task returns the bytes of its final checkpoint (and of
``metrics.csv``); the coordinator writes them atomically into ``DIR/models/<train_key>/``
(``checkpoints/epoch_NNNN.pt``, ``metrics.csv``) and only then records the model as trained in
the store. Evaluation tasks receive the checkpoint bytes as an argument and never read ``DIR``.
Where a model is trained depends on the executor:

* local executors (same machine) train *in* ``DIR/models/<train_key>``, with a checkpoint after
  every epoch, so a training interrupted by a kill resumes from its latest epoch (the
  coordinator then finds the final checkpoint already in place);
* Dask workers train in a temporary directory under the worker's local directory
  (``dask worker --local-directory``, else the system temp dir), removed afterwards; the latest
  checkpoint of an interrupted local training found in ``DIR`` is sent along to resume from.
  Dask workers therefore never see ``DIR``: no shared file system is needed.

A model whose final checkpoint is in ``DIR`` and that is recorded as trained in the store is
never trained again; its points are evaluated from that checkpoint.

Executors:

* local: a ``spawn`` process pool (``workers``, default = cores); workers use one torch thread
  and exit by themselves if the coordinating process dies;
* Dask distributed: ``scheduler = "tcp://HOST:PORT"`` (or a ``distributed.Client``). The
  coordinator must reach the scheduler and the workers must reach each other and the
  scheduler; no shared file system is needed. The task functions travel by reference, so every
  worker needs memxbar and its dependencies (``dask[distributed]``, torch, scikit-learn, ...)
  installed, memxbar at the same version as the coordinator; the data sets need nothing else
  (Yin-Yang is generated, ``digits`` ships with scikit-learn). Each finished point records the
  versions of the worker process that evaluated it (``versions`` column: memxbar, torch, numpy,
  python; the coordinator's for points that never reached a worker); a model or point from a
  worker with another memxbar version is recorded as failed, naming both versions;
* ``workers = 0``: in the calling process, one task at a time (debugging, tests).

Every random number of a point derives from its resolved config (``training.sweeps.spec``), so
the results do not depend on the executor, the number of workers, where a model was trained or
the order of completion: local and Dask runs of one spec store identical metrics.
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import io
import math
import os
import platform
import tempfile
import threading
import time
import traceback
from pathlib import Path

from .spec import Point, Spec, derived_seed, load_spec
from .store import Store

MODELS_DIR = "models"
_STATE_CACHE: dict = {}


# ============================================================================ worker side
def _worker_init(parent_pid: int) -> None:
    """Process-pool initialiser: one torch thread; exit when the parent process is gone."""
    import torch

    torch.set_num_threads(1)

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def versions() -> dict:
    """Versions of this process's memxbar, torch, numpy and Python (recorded with every point)."""
    return dict(_versions())


@functools.cache
def _versions() -> dict:
    from importlib import metadata

    import numpy
    import torch

    try:
        memxbar = metadata.version("memxbar")
    except metadata.PackageNotFoundError:
        memxbar = "unknown"
    return {"memxbar": memxbar, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def final_checkpoint(model_dir, epochs: int) -> Path:
    """The final checkpoint of an ``epochs``-epoch training in ``model_dir``."""
    return Path(model_dir) / "checkpoints" / f"epoch_{epochs:04d}.pt"


def _scratch_root() -> str | None:
    """Parent of worker-local training directories: the Dask worker's local directory inside a
    Dask worker, else None (the system temp dir)."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):  # not in a Dask worker
        return None


def _train_in(cfg, model_dir: Path) -> dict:
    """Train (or resume) ``cfg`` in ``model_dir``; the successful result of :func:`train_task`."""
    from training.loop import CHECKPOINT_RE, latest_checkpoint, train

    ckpt = latest_checkpoint(model_dir)
    start = int(CHECKPOINT_RE.match(ckpt.name).group(1)) if ckpt else 0
    t0 = time.perf_counter()
    _, history = train(cfg, model_dir, resume=True, progress=False)
    train_s = time.perf_counter() - t0
    final = final_checkpoint(model_dir, cfg.train.epochs)
    if not final.is_file():
        raise FileNotFoundError(f"training of {cfg.name} ended without its final checkpoint {final}")
    metrics = model_dir / "metrics.csv"
    return {"ok": True, "history": history, "train_s": train_s, "epochs_trained": cfg.train.epochs - start,
            "checkpoint": final.read_bytes(), "metrics_csv": metrics.read_bytes() if metrics.is_file() else None,
            "versions": versions()}


def train_task(config: dict, model_dir: str | None = None, resume_from: tuple[str, bytes] | None = None) -> dict:
    """Train (or resume) one configuration (a resolved RunConfig dict).

    ``model_dir``: train there (the study's ``models/<train_key>`` when the worker shares the
    coordinator's file system), resuming from its latest checkpoint. None: train in a fresh
    worker-local temporary directory (removed afterwards), first holding ``resume_from`` =
    ``(checkpoint file name, bytes)`` if given.

    Returns ``{"ok": True, "history", "train_s", "epochs_trained", "checkpoint" (bytes of the
    final checkpoint), "metrics_csv" (bytes or None), "versions"}`` or ``{"ok": False, "error":
    traceback}``.
    """
    import torch

    from training.config import RunConfig
    from training.loop import CHECKPOINT_RE
    from training.report import atomic_write_bytes

    try:
        torch.set_num_threads(1)
        cfg = RunConfig.from_dict(config)
        if model_dir is not None:
            return _train_in(cfg, Path(model_dir))
        with tempfile.TemporaryDirectory(prefix=f"memxbar-{cfg.name}-", dir=_scratch_root()) as scratch:
            if resume_from is not None:
                name, data = resume_from
                if not CHECKPOINT_RE.match(name):
                    raise ValueError(f"resume_from must name a checkpoint file epoch_NNNN.pt, got {name!r}")
                atomic_write_bytes(Path(scratch) / "checkpoints" / name, data)
            return _train_in(cfg, Path(scratch))
    except Exception:  # recorded, the study goes on
        return {"ok": False, "error": traceback.format_exc()}


def _load_checkpoint(train_key: str, config: dict, checkpoint: bytes):
    """``(cfg, model state dict, splits, n_in, n_classes)`` of a trained model from the bytes of
    its final checkpoint (the last one is cached per worker process)."""
    import torch

    from training.config import RunConfig
    from training.loop import load_data

    stamp = (train_key, hashlib.sha256(checkpoint).hexdigest())
    loaded = _STATE_CACHE.get(stamp)
    if loaded is None:
        cfg = RunConfig.from_dict(config)
        state = torch.load(io.BytesIO(checkpoint), weights_only=True)
        if state["config"] != cfg.to_dict():
            raise ValueError(f"the checkpoint sent for model {train_key} holds a different configuration")
        splits, n_in, n_classes = load_data(cfg)
        loaded = (cfg, state, splits, n_in, n_classes)
        _STATE_CACHE.clear()
        _STATE_CACHE[stamp] = loaded
    return loaded


def _load_state(train_key: str, config: dict, model_dir: str):
    """:func:`_load_checkpoint` of the final checkpoint in ``model_dir`` (a local model directory)."""
    from training.config import RunConfig

    path = final_checkpoint(model_dir, RunConfig.from_dict(config).train.epochs)
    if not path.is_file():
        raise FileNotFoundError(f"model {train_key} has no final checkpoint {path}")
    return _load_checkpoint(train_key, config, path.read_bytes())


def evaluate_point(loaded, key: str, deploy: dict) -> dict:
    """Metrics of one deployment point: accuracy of the deployed network and of the same network
    without device non-idealities (``mode = "ideal"``), both at the point's time steps and ADC."""
    import torch

    from training.evaluate import deployment_hardware
    from training.loop import accuracy, model_from_checkpoint

    cfg, state, splits, n_in, n_classes = loaded
    model = model_from_checkpoint(cfg, state, n_in, n_classes)
    torch.manual_seed(derived_seed(key, "evaluate"))
    hw = cfg.hardware.replace(adc_bits=deploy["adc_bits"])
    steps, batch = deploy["time_steps"], cfg.data.eval_batch_size
    model.set_hardware(hw.replace(mode="ideal", backward="ste"))
    ideal = accuracy(model, splits.test, batch, steps)
    acc = ideal
    if deploy["mode"] != "ideal":
        model.set_hardware(deployment_hardware(hw, deploy["family"], 0))
        model.deploy(0.0)
        model.set_inference_time(deploy["t"])
        model.set_mode(deploy["mode"])
        acc = accuracy(model, splits.test, batch, steps)
    return {"accuracy": acc, "ideal_accuracy": ideal, "accuracy_drop": ideal - acc}


def evaluate_task(train_key: str, config: dict, checkpoint: bytes, items: list) -> list[dict]:
    """Evaluate ``items`` = [(point key, deploy settings)] of one trained model, given the bytes
    of its final ``checkpoint``; one result per point: ``{"key", "ok", "metrics", "timings",
    "versions"}`` or ``{"key", "ok": False, "error"}``."""
    import torch

    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        loaded = _load_checkpoint(train_key, config, checkpoint)
        load_s = time.perf_counter() - t0
    except Exception:
        err = traceback.format_exc()
        return [{"key": k, "ok": False, "error": err} for k, _ in items]
    out = []
    for key, deploy in items:
        t0 = time.perf_counter()
        try:
            metrics = evaluate_point(loaded, key, deploy)
            out.append({"key": key, "ok": True, "metrics": metrics, "versions": versions(),
                        "timings": {"eval_s": time.perf_counter() - t0, "load_s": load_s}})
        except Exception:
            out.append({"key": key, "ok": False, "error": traceback.format_exc()})
        load_s = 0.0
    return out


# ============================================================================ executors
class InlineExecutor(cf.Executor):
    """Runs tasks in the calling process (``workers = 0``), one per :meth:`step`, newest first,
    so that the points of a trained model are evaluated (and stored) before the next training."""

    def __init__(self):
        self._queue: list = []

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        self._queue.append((fut, fn, args, kwargs))
        return fut

    def step(self) -> None:
        if not self._queue:
            return
        fut, fn, args, kwargs = self._queue.pop()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)


def make_executor(workers: int | None = None, scheduler=None):
    """``(executor, n_slots, closer)`` for the local pool, Dask or inline execution."""
    if scheduler is not None:
        from distributed import Client

        if not isinstance(scheduler, (str, Client)) or (isinstance(scheduler, str) and not scheduler.strip()):
            raise ValueError(f"scheduler must be a Dask scheduler address (tcp://HOST:PORT) or a distributed.Client, "
                             f"got {scheduler!r}")
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        slots = max(1, sum(client.nthreads().values()))
        ex = client.get_executor(pure=False)
        return ex, slots, (lambda: None) if client is scheduler else client.close
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0 = in this process), got {workers!r}")
    if workers == 0:
        return InlineExecutor(), 1, lambda: None
    import multiprocessing

    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(os.getpid(),))
    return pool, workers, lambda: pool.shutdown(wait=True, cancel_futures=True)


# ============================================================================ coordinator
class _Run:
    """State of one ``run()``: the store, pending futures and the progress bar."""

    def __init__(self, spec: Spec, store: Store, out: Path, executor, slots: int, bar):
        self.spec, self.store, self.out, self.ex, self.slots, self.bar = spec, store, out, executor, slots, bar
        self.points = {p.key: p for p in spec.points}
        self.pending: dict = {}
        self.counts = {"done": 0, "failed": 0, "trained": 0}
        self.vers = versions()
        self.waiting: list[tuple[str, list[Point]]] = []  # training groups not yet submitted
        self.training = 0  # trainings in flight
        # workers on this machine train in the study directory (resumable per epoch); others
        # (Dask) in a directory of their own, and get or return models as bytes only
        self.trains_in_place = isinstance(executor, (InlineExecutor, cf.ProcessPoolExecutor))

    def start_groups(self, groups: dict[str, list[Point]]) -> None:
        """Queue every training group; at most ``slots`` trainings are in flight, so the
        evaluations of a finished model run before further trainings (FIFO executors)."""
        self.waiting = list(groups.items())
        self._next_trainings()

    def _next_trainings(self) -> None:
        while self.waiting and self.training < self.slots:
            self.start_group(*self.waiting.pop(0))

    def model_dir(self, train_key: str) -> Path:
        """The study's directory of model ``train_key``."""
        return self.out / MODELS_DIR / train_key

    def submit(self, kind: str, fn, *args, payload) -> None:
        try:
            self.pending[self.ex.submit(fn, *args)] = (kind, payload)
        except Exception:
            if kind == "train":
                self.training -= 1
            self._fail_points(payload if kind == "eval" else payload[1], "could not submit:\n" + traceback.format_exc())

    def start_group(self, train_key: str, points: list[Point]) -> None:
        """Evaluate the points of a recorded model whose final checkpoint is in the study
        directory; else (re)train it first."""
        cfg = points[0].train
        model = self.store.model(train_key)
        final = final_checkpoint(self.model_dir(train_key), cfg["train"]["epochs"])
        if model and model["status"] == "done" and final.is_file():
            self.start_evaluation(train_key, points, final.read_bytes())
            return
        self.training += 1
        model_dir, resume_from = (str(self.model_dir(train_key)), None) if self.trains_in_place else \
            (None, self._resume_from(train_key))
        self.submit("train", train_task, cfg, model_dir, resume_from, payload=(train_key, points))

    def _resume_from(self, train_key: str) -> tuple[str, bytes] | None:
        """``(file name, bytes)`` of the latest checkpoint of ``train_key`` in the study directory
        (left by an interrupted local run), or None."""
        from training.loop import latest_checkpoint

        ckpt = latest_checkpoint(self.model_dir(train_key))
        return (ckpt.name, ckpt.read_bytes()) if ckpt else None

    def start_evaluation(self, train_key: str, points: list[Point], checkpoint: bytes) -> None:
        """Submit the points of a trained model in chunks; each task gets the checkpoint bytes."""
        size = max(1, min(8, math.ceil(len(points) / (4 * self.slots))))
        for i in range(0, len(points), size):
            chunk = points[i:i + size]
            self.submit("eval", evaluate_task, train_key, chunk[0].train, checkpoint,
                        [(p.key, p.deploy) for p in chunk], payload=chunk)

    def _fail_points(self, points: list[Point], error: str, worker_versions: dict | None = None) -> None:
        for p in points:
            self.store.record_point(p, status="failed", error=error, versions=worker_versions or self.vers)
            self.counts["failed"] += 1
            self.bar.update(1)

    def _version_mismatch(self, worker_versions: dict | None) -> str | None:
        """The problem if a worker runs another memxbar version than this process, else None."""
        theirs = (worker_versions or {}).get("memxbar")
        if theirs == self.vers["memxbar"]:
            return None
        return (f"the worker runs memxbar {theirs!r} but the coordinator {self.vers['memxbar']!r}; install the same "
                "memxbar version on every worker")

    def _save_model_files(self, train_key: str, epochs: int, result: dict) -> None:
        """Write the returned final checkpoint (and metrics.csv) atomically into the study's model
        directory, unless it already holds these bytes (trained in place)."""
        from training.report import atomic_write_bytes

        model_dir = self.model_dir(train_key)
        files = {final_checkpoint(model_dir, epochs): result["checkpoint"]}
        if result.get("metrics_csv") is not None:
            files[model_dir / "metrics.csv"] = result["metrics_csv"]
        for path, data in files.items():
            if not (path.is_file() and path.read_bytes() == data):
                atomic_write_bytes(path, data)

    def on_train(self, result: dict, train_key: str, points: list[Point]) -> None:
        """Record a finished training (model files first, then the store) and start its evaluations."""
        cfg = points[0].train
        self.training -= 1
        error = result.get("error") if not result["ok"] else self._version_mismatch(result.get("versions"))
        if error is None:
            try:
                self._save_model_files(train_key, cfg["train"]["epochs"], result)
            except OSError:
                error = f"could not write model {train_key} into {self.model_dir(train_key)}:\n" + \
                    traceback.format_exc()
        if error is not None:
            self.store.record_model(train_key, cfg, status="failed", error=error)
            self._fail_points(points, "training failed:\n" + error, result.get("versions"))
        else:
            self.store.record_model(train_key, cfg, status="done", history=result["history"],
                                    train_s=result["train_s"], epochs_trained=result["epochs_trained"])
            self.counts["trained"] += result["epochs_trained"] > 0
            self.start_evaluation(train_key, points, result["checkpoint"])
        self._next_trainings()

    def on_eval(self, results: list[dict], points: list[Point]) -> None:
        """Record the evaluated points (with the versions of the worker that evaluated them)."""
        model = self.store.model(points[0].train_key) or {}
        history = model.get("history") or [{}]
        for res in results:
            p = self.points[res["key"]]
            error = res.get("error") if not res["ok"] else self._version_mismatch(res.get("versions"))
            if error is not None:
                self._fail_points([p], error, res.get("versions"))
                continue
            metrics = res["metrics"] | {"train_val_accuracy": history[-1].get("val_accuracy"),
                                        "train_loss": history[-1].get("loss")}
            timings = res["timings"] | {"train_s": model.get("train_s")}
            self.store.record_point(p, status="done", metrics=metrics, timings=timings, versions=res["versions"])
            self.counts["done"] += 1
            self.bar.update(1)

    def loop(self) -> None:
        self._next_trainings()
        while self.pending or self.waiting:
            if not self.pending:  # only unsubmitted groups left (submissions failed): go on with them
                self.training = 0  # nothing is in flight
                self._next_trainings()
                continue
            if isinstance(self.ex, InlineExecutor):
                self.ex.step()
            finished, _ = cf.wait(list(self.pending), return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                kind, payload = self.pending.pop(fut)
                try:
                    result = fut.result()
                except Exception:  # the worker died or the task could not run
                    err = "task failed in the executor:\n" + traceback.format_exc()
                    result = {"ok": False, "error": err} if kind == "train" else \
                        [{"key": p.key, "ok": False, "error": err} for p in payload]
                if kind == "train":
                    self.on_train(result, *payload)
                else:
                    self.on_eval(result, payload)
                self.bar.set_postfix(trained=self.counts["trained"], failed=self.counts["failed"])


def todo_points(spec: Spec, store: Store, retry_failed: bool = False) -> list[Point]:
    """Points of ``spec`` without a finished row ("done"; "failed" too unless ``retry_failed``)."""
    status = store.statuses()
    skip = {"done"} if retry_failed else {"done", "failed"}
    return [p for p in spec.points if status.get(p.key) not in skip]


def run(spec, out, *, workers: int | None = None, scheduler=None, retry_failed: bool = False,
        progress: bool = True) -> dict:
    """Run (or resume) a study into ``out``; returns counts and the elapsed time (module docstring)."""
    from tqdm import tqdm  # plain text bar: no ipywidgets warning inside notebooks

    from training.report import atomic_write_bytes

    spec = load_spec(spec)
    out = Path(out).resolve()
    t0 = time.perf_counter()
    with Store(out) as store:
        store.set_meta("spec_text", spec.source)
        store.set_meta("study", spec.name)
        if spec.source:
            atomic_write_bytes(out / "spec.toml", spec.source.encode())
        todo = todo_points(spec, store, retry_failed)
        groups: dict[str, list[Point]] = {}
        for p in todo:
            groups.setdefault(p.train_key, []).append(p)
        executor, slots, close = make_executor(workers, scheduler) if todo else (None, 1, lambda: None)
        bar = tqdm(total=len(todo), desc=spec.name, unit="point", disable=not progress, smoothing=0.1)
        state = _Run(spec, store, out, executor, slots, bar)
        try:
            state.start_groups(groups)
            state.loop()
        finally:
            bar.close()
            close()
    return {"points": len(spec.points), "skipped": len(spec.points) - len(todo), "done": state.counts["done"],
            "failed": state.counts["failed"], "trained": state.counts["trained"],
            "elapsed_s": time.perf_counter() - t0}
