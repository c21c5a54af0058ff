"""Two-stage execution of a study: train once per training config, then evaluate its deployment points.

Stage 1 trains every training configuration that has unfinished points (one task per
``train_key``). Stage 2 evaluates the deployment points of a trained model in small tasks (a
fresh model from the final checkpoint per point, programmed with the point's device seed),
submitted as soon as that model is ready. Only the coordinating process writes the SQLite store
(:mod:`training.sweeps.store`), one transaction per finished point, and only one run at a time
may use a study directory (:mod:`training.sweeps.lock`; a second run gets a clear message).

How models move. A training task returns the bytes of its final checkpoint (and of
``metrics.csv``); the coordinator writes them atomically into ``DIR/models/<train_key>/``
(``checkpoints/epoch_NNNN.pt``, ``metrics.csv``, ``train_sessions.json``) and only then records
the model as trained in the store. Evaluation tasks receive the checkpoint bytes as an argument
and never read ``DIR``. Where a model is trained depends on the executor:

* local executors (same machine) train *in* ``DIR/models/<train_key>``, with a checkpoint after
  every epoch, so a training interrupted by a kill resumes from its latest epoch (the
  coordinator then finds the final checkpoint already in place);
* Dask workers train in a temporary directory under the worker's local directory
  (``dask worker --local-directory``, else the system temp dir), removed afterwards; the latest
  usable checkpoint of an interrupted local training found in ``DIR`` is sent along to resume
  from. Dask workers therefore never see ``DIR``: no shared file system is needed.

A model recorded as trained whose final checkpoint loads (weights-only, same configuration) is
never trained again; a final checkpoint that is missing, empty, truncated or foreign is moved
aside (``*.corrupt``, with a one-line note) and the model is retrained.

Failures. A task that raises inside its own work (a training that diverges, an evaluation
error) is a *point failure*: its points are recorded as "failed" with the traceback, kept on
re-runs, and run again with ``retry_failed``. A task the executor loses (a pool worker killed by
SIGKILL or the OOM killer, a lost Dask worker, a submission refused) is an *infrastructure
failure*: the points are not recorded. A broken local pool is replaced and its in-flight tasks
are resubmitted once (:data:`TASK_RETRIES`); points still lost stay pending, so that a plain
re-run runs them. After :data:`MAX_POOL_BREAKS` broken pools the run stops submitting and ends
with the rest pending. The summary's ``complete`` is True only when every point of the spec is
done (``xbar sweep run`` exits 0 only then).

Ctrl-C stops the run at once: queued tasks are cancelled and the local workers terminated
(trainings keep their latest epoch checkpoint); :class:`~training.sweeps.errors.Interrupted`
carries the counts. Re-running the same command resumes.

Executors, GPU placement and Dask (trust, GPUs): :mod:`training.sweeps.executors`; the tasks
and checkpoint checks: :mod:`training.sweeps.workers`. Every random number of a point derives
from its resolved config (:mod:`training.sweeps.spec`), so the results do not depend on the
executor, the number of workers, where a model was trained, resubmissions or the order of
completion: local and Dask runs of one spec store identical metrics.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import os
import sys
import time
from pathlib import Path

from . import workers as _w
from .errors import CheckpointError, Interrupted, StoreError
from .executors import Executor, InlineExecutor, gpu_count, make_executor, placement
from .lock import StudyLock
from .spec import Point, Spec, load_spec
from .store import Store
from .workers import (_load_checkpoint, _load_state, _worker_init, evaluate_point, evaluate_task,  # noqa: F401
                      final_checkpoint, train_task, versions)

MODELS_DIR = "models"
#: resubmissions of a task lost with a broken local pool
TASK_RETRIES = 1
#: broken local pools replaced before a run stops submitting
MAX_POOL_BREAKS = 3
#: notes printed about lost tasks (the rest are counted)
MAX_LOST_NOTES = 5

__all__ = ["run", "todo_points", "make_executor", "InlineExecutor", "MODELS_DIR", "TASK_RETRIES",
           "MAX_POOL_BREAKS"]


class _Task:
    """A submitted task: ``kind`` ("train" or "eval"), the function and arguments, ``points``,
    the resubmissions so far and the executor generation it was submitted to."""

    def __init__(self, kind: str, fn, args: tuple, points: list[Point], train_key: str):
        self.kind, self.fn, self.args, self.points, self.train_key = kind, fn, args, points, train_key
        self.tries, self.generation = 0, -1


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


class _Run:
    """State of one ``run()``: the store, the executor, pending tasks and the progress bar."""

    def __init__(self, spec: Spec, store: Store, out: Path, executor: Executor, bar, notify):
        self.spec, self.store, self.out, self.exec, self.bar, self.notify = spec, store, out, executor, bar, notify
        self.points = {p.key: p for p in spec.points}
        self.pending: dict = {}
        self.counts = {"done": 0, "failed": 0, "trained": 0, "lost": 0, "resubmitted": 0}
        self.vers = versions()
        self.waiting: list[tuple[str, list[Point]]] = []  # training groups not yet submitted
        self.training = 0  # trainings in flight
        self.breaks = 0
        self.stopped: str | None = None  # why the run stopped submitting
        self.lost_notes = 0
        # workers on this machine train in the study directory (resumable per epoch); others
        # (Dask) in a directory of their own, and get or return models as bytes only
        self.trains_in_place = executor.kind in ("inline", "pool")

    @property
    def slots(self) -> int:
        return self.exec.slots

    # ------------------------------------------------------------------ submission
    def start_groups(self, groups: dict[str, list[Point]]) -> None:
        """Queue every training group; at most ``slots`` trainings are in flight, so the
        evaluations of a finished model run before further trainings (FIFO executors)."""
        self.waiting = list(groups.items())
        self._next_trainings()

    def _next_trainings(self) -> None:
        while self.waiting and self.training < self.slots and not self.stopped:
            self.start_group(*self.waiting.pop(0))

    def model_dir(self, train_key: str) -> Path:
        """The study's directory of model ``train_key``."""
        return self.out / MODELS_DIR / train_key

    def submit(self, task: _Task) -> None:
        if self.stopped:
            self._give_up(task, self.stopped)
            return
        try:
            fut = self.exec.submit(task.fn, *task.args)
        except Exception as exc:  # a broken pool, a closed client: infrastructure
            self.on_lost(task, exc)
            return
        task.generation = self.exec.generation
        self.pending[fut] = task

    def start_group(self, train_key: str, points: list[Point]) -> None:
        """Evaluate the points of a recorded model whose final checkpoint in the study directory
        loads; else (re)train it first."""
        cfg = points[0].train
        model = self.store.model(train_key)
        final = final_checkpoint(self.model_dir(train_key), cfg["train"]["epochs"])
        if model and model["status"] == "done" and final.is_file():
            try:
                data = final.read_bytes()
                _w.check_checkpoint(data, final, _full_config(cfg))
                self.start_evaluation(train_key, points, data)
                return
            except (CheckpointError, OSError) as exc:
                aside = final.with_name(final.name + ".corrupt")
                os.replace(final, aside)
                self.notify(f"{exc}; moved it to {aside.name} and retraining model {train_key}")
        self.training += 1
        if self.trains_in_place:
            args = (cfg, str(self.model_dir(train_key)), None, None)
        else:
            args = (cfg, None, *self._resume_from(train_key, cfg))
        self.submit(_Task("train", _w.train_task, args, points, train_key))

    def _resume_from(self, train_key: str, cfg: dict) -> tuple[tuple[str, bytes] | None, list[dict]]:
        """``((file name, bytes) of the latest usable checkpoint of ``train_key`` in the study
        directory (left by an interrupted local run) or None, the sessions logged there)``."""
        model_dir = self.model_dir(train_key)
        notes: list[str] = []
        ckpt = _w.usable_latest_checkpoint(model_dir, _full_config(cfg), notes) if model_dir.is_dir() else None
        for note in notes:
            self.notify(note)
        sessions = _w.read_sessions(model_dir)
        _w.close_open_session(sessions, ckpt)
        return ((ckpt.name, ckpt.read_bytes()) if ckpt else None), sessions

    def start_evaluation(self, train_key: str, points: list[Point], checkpoint: bytes) -> None:
        """Submit the points of a trained model in chunks; each task gets the checkpoint bytes."""
        size = max(1, min(8, math.ceil(len(points) / (4 * self.slots))))
        for i in range(0, len(points), size):
            chunk = points[i:i + size]
            args = (train_key, chunk[0].train, checkpoint, [(p.key, p.deploy) for p in chunk])
            self.submit(_Task("eval", _w.evaluate_task, args, chunk, train_key))

    # ------------------------------------------------------------------ infrastructure failures
    def on_lost(self, task: _Task, exc: BaseException) -> None:
        """A task the executor lost (module docstring): renew a broken local pool, resubmit the
        task once, else leave its points pending."""
        reason = _reason(exc)
        if self.exec.kind == "pool" and isinstance(exc, cf.BrokenExecutor):
            first_sign = task.generation == self.exec.generation or task.generation < 0
            if first_sign and not self.stopped:
                self.breaks += 1
                if self.breaks > MAX_POOL_BREAKS:
                    self.stopped = f"the local worker pool broke {self.breaks} times (last: {reason})"
                    self.notify(f"{self.stopped}; stopping: the remaining points stay pending")
                else:
                    self.notify(f"a worker process died ({reason}); started a new pool, resubmitting the tasks that "
                                "were in flight")
                    self.exec.renew()
            if not self.stopped and task.tries < TASK_RETRIES:
                task.tries += 1
                self.counts["resubmitted"] += 1
                self.submit(task)
                return
        self._give_up(task, reason)

    def _give_up(self, task: _Task, reason: str) -> None:
        n = len(task.points)
        self.counts["lost"] += n
        self.bar.update(n)
        if self.lost_notes < MAX_LOST_NOTES:
            what = {"train": f"training of model {task.train_key}", "eval": f"evaluation of {n} point(s)"}.get(
                task.kind, f"{n} point(s) of model {task.train_key}")
            self.notify(f"lost the {what} ({reason}); its points stay pending: re-run to resume")
        self.lost_notes += 1
        if task.kind == "train":
            self.training -= 1
            self._next_trainings()

    # ------------------------------------------------------------------ results
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
        """Write the returned final checkpoint (and metrics.csv, the session log) atomically into
        the study's model directory, unless it already holds these bytes (trained in place)."""
        import json

        from training.report import atomic_write_bytes

        model_dir = self.model_dir(train_key)
        files = {final_checkpoint(model_dir, epochs): result["checkpoint"]}
        if result.get("metrics_csv") is not None:
            files[model_dir / "metrics.csv"] = result["metrics_csv"]
        if not self.trains_in_place and result.get("sessions") is not None:
            files[model_dir / _w.SESSIONS_NAME] = (json.dumps(result["sessions"], indent=1) + "\n").encode()
        for path, data in files.items():
            try:
                if not (path.is_file() and path.read_bytes() == data):
                    atomic_write_bytes(path, data)
            except OSError as exc:
                raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None

    def on_train(self, result: dict, task: _Task) -> None:
        """Record a finished training (model files first, then the store) and start its evaluations."""
        train_key, points = task.train_key, task.points
        cfg = points[0].train
        self.training -= 1
        for note in result.get("notes") or []:
            self.notify(f"model {train_key}: {note}")
        error = result.get("error") if not result["ok"] else self._version_mismatch(result.get("versions"))
        if error is None:
            self._save_model_files(train_key, cfg["train"]["epochs"], result)
            self.store.record_model(train_key, cfg, status="done", history=result["history"],
                                    train_s=result.get("total_train_s", result["train_s"]),
                                    epochs_trained=result["epochs_trained"])
            self.counts["trained"] += result["epochs_trained"] > 0
            self.start_evaluation(train_key, points, result["checkpoint"])
        else:
            self.store.record_model(train_key, cfg, status="failed", error=error)
            self._fail_points(points, "training failed:\n" + error, result.get("versions"))
        self._next_trainings()

    def on_eval(self, results: list[dict], task: _Task) -> None:
        """Record the evaluated points (with the versions of the worker that evaluated them)."""
        model = self.store.model(task.train_key) or {}
        history = model.get("history") or [{}]
        last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
        for res in results:
            p = self.points[res["key"]]
            error = res.get("error") if not res["ok"] else self._version_mismatch(res.get("versions"))
            if error is not None:
                self._fail_points([p], error, res.get("versions"))
                continue
            metrics = res["metrics"] | {"train_val_accuracy": last.get("val_accuracy"), "train_loss": last.get("loss")}
            timings = res["timings"] | {"train_s": model.get("train_s")}
            self.store.record_point(p, status="done", metrics=metrics, timings=timings, versions=res["versions"])
            self.counts["done"] += 1
            self.bar.update(1)

    def loop(self) -> None:
        self._next_trainings()
        while self.pending or self.waiting:
            if not self.pending:  # nothing in flight: go on with unsubmitted groups (or drop them)
                self.training = 0
                if self.stopped:
                    for train_key, points in self.waiting:
                        self._give_up(_Task("group", None, (), points, train_key), self.stopped)
                    self.waiting = []
                self._next_trainings()
                continue
            if isinstance(self.exec.ex, InlineExecutor):
                self.exec.ex.step()
            finished, _ = cf.wait(list(self.pending), return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                task = self.pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as exc:  # the executor lost the task: infrastructure
                    self.on_lost(task, exc)
                    continue
                if task.kind == "train":
                    self.on_train(result, task)
                else:
                    self.on_eval(result, task)
                self.bar.set_postfix(trained=self.counts["trained"], failed=self.counts["failed"],
                                     lost=self.counts["lost"])


def _full_config(train: dict) -> dict:
    """The RunConfig dict a checkpoint of resolved training config ``train`` holds."""
    from training.config import RunConfig

    return RunConfig.from_dict(train).to_dict()


def todo_points(spec: Spec, store: Store, retry_failed: bool = False) -> list[Point]:
    """Points of ``spec`` without a finished row ("done"; "failed" too unless ``retry_failed``)."""
    status = store.statuses()
    skip = {"done"} if retry_failed else {"done", "failed"}
    return [p for p in spec.points if status.get(p.key) not in skip]


def _stderr(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"xbar sweep: {message}", file=sys.stderr)


def _prepare_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StoreError(f"study directory {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the study directory {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise StoreError(f"the study directory {out} is not writable (a run writes results.sqlite and models/ "
                         "there; status and report can read a read-only study)")


def _summary(spec: Spec, store: Store, todo: list[Point], state: _Run | None, place_text: str, t0: float) -> dict:
    statuses = store.statuses()
    keys = [p.key for p in spec.points]
    todo_keys = {p.key for p in todo}
    before = [statuses.get(k) for k in keys if k not in todo_keys]
    done_all = sum(statuses.get(k) == "done" for k in keys)
    failed_all = sum(statuses.get(k) == "failed" for k in keys)
    counts = state.counts if state is not None else {"done": 0, "failed": 0, "trained": 0, "lost": 0,
                                                     "resubmitted": 0}
    return {"points": len(keys), "skipped": len(keys) - len(todo), "done_before": before.count("done"),
            "failed_before": before.count("failed"), "done": counts["done"], "failed": counts["failed"],
            "trained": counts["trained"], "lost": counts["lost"], "resubmitted": counts["resubmitted"],
            "done_total": done_all, "failed_total": failed_all, "pending": len(keys) - done_all - failed_all,
            "complete": done_all == len(keys), "placement": place_text, "elapsed_s": time.perf_counter() - t0}


def run(spec, out, *, workers: int | None = None, scheduler=None, retry_failed: bool = False,
        progress: bool = True, notify=None) -> dict:
    """Run (or resume) a study into ``out`` (module docstring).

    ``workers``: local worker processes (default: one per core, or one per GPU when the run
    configs ask for a GPU; 0 = in this process); ``scheduler``: a Dask scheduler address or
    Client instead; ``retry_failed``: run failed points again; ``notify``: called with one-line
    notes (corrupt checkpoints moved aside, lost tasks; default: printed to stderr).

    Returns ``{"points", "skipped" (not run now: done or failed before), "done_before",
    "failed_before", "done", "failed", "trained", "lost" (points left pending by infrastructure
    failures), "resubmitted", "done_total", "failed_total", "pending", "complete",
    "placement", "elapsed_s"}``. Raises :class:`~training.sweeps.errors.Interrupted` on Ctrl-C,
    other :class:`~training.sweeps.errors.SweepError` subclasses for unusable directories,
    schedulers or placements (before anything is written).
    """
    from tqdm import tqdm  # plain text bar: no ipywidgets warning inside notebooks

    from training.report import atomic_write_bytes

    t0 = time.perf_counter()
    spec = load_spec(spec)
    notify = notify or _stderr
    out = Path(out).expanduser().resolve()
    devices = {p.train.get("device", "cpu") for p in spec.points}
    local = scheduler is None
    needs_gpus = local and any(str(d) == "auto" or str(d).startswith("cuda") for d in devices)
    place = placement(devices, workers, gpu_count() if needs_gpus else 0, local=local)
    executor = Executor(place, scheduler)  # a Dask scheduler is reached before anything is written
    state, aborted = None, False
    try:
        _prepare_dir(out)
        with StudyLock(out), Store(out) as store:
            store.set_meta("spec_text", spec.source)
            store.set_meta("study", spec.name)
            if spec.source:
                try:
                    atomic_write_bytes(out / "spec.toml", spec.source.encode())
                except OSError as exc:
                    raise StoreError(f"cannot write {out / 'spec.toml'}: {exc.strerror or exc}") from None
            todo = todo_points(spec, store, retry_failed)
            groups: dict[str, list[Point]] = {}
            for p in todo:
                groups.setdefault(p.train_key, []).append(p)
            bar = tqdm(total=len(todo), desc=spec.name, unit="point", disable=not progress, smoothing=0.1)
            state = _Run(spec, store, out, executor, bar, notify)
            try:
                state.start_groups(groups)
                state.loop()
            except KeyboardInterrupt:
                aborted = True
                executor.abort(list(state.pending))
                raise Interrupted(_summary(spec, store, todo, state, place.text, t0)) from None
            except BaseException:
                aborted = True
                executor.abort(list(state.pending))
                raise
            finally:
                bar.close()
            return _summary(spec, store, todo, state, place.text, t0)
    except BaseException:
        if not aborted:
            aborted = True
            executor.abort(list(state.pending) if state is not None else [])
        raise
    finally:
        if not aborted:
            executor.close()
