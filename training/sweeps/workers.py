"""The worker side of a study: the training and evaluation tasks, checkpoint checks, GPU placement.

Tasks (run in a local pool process, a Dask worker or the coordinating process itself):

* :func:`train_task` trains (or resumes) one training configuration and returns the bytes of its
  final checkpoint; :func:`evaluate_task` evaluates deployment points of a trained model from
  those bytes. Both catch every exception of their own work and return it as a result
  (``{"ok": False, "error": traceback}``): such a *point failure* is recorded in the store. An
  exception the coordinator gets from the executor instead (a worker process that died, a lost
  Dask worker) is an *infrastructure failure*: the points stay pending (module
  :mod:`training.sweeps.execute`).
* Checkpoints are loaded with ``torch.load(..., weights_only=True)`` only (a malicious file
  cannot run code) and checked by :func:`check_checkpoint`: empty, truncated, garbage, refused
  or foreign files raise :class:`~training.sweeps.errors.CheckpointError` with one line naming
  the file. A training resumes from its latest *usable* checkpoint: a corrupt one is moved aside
  (``epoch_NNNN.pt.corrupt``) and reported in the result's ``notes``.
* Training time: every training session is logged in ``train_sessions.json`` beside the
  checkpoints (epoch range, start time, seconds). A session killed mid-way is closed on the next
  start with the time up to its last checkpoint, so a model's recorded ``train_s`` is the sum
  over every session that trained it, not only the last one.

GPU placement (issue 13). When the run configs ask for a GPU (``device = "cuda"`` or ``"auto"``
with GPUs present) every local pool worker gets its own GPU: the worker with index ``i`` (0, 1,
... in start order) uses GPU ``i % n_gpus`` (:func:`worker_gpu`), made the only visible one
through ``CUDA_VISIBLE_DEVICES`` (so ``"cuda"`` is that GPU; when a config names ``"cuda:N"``
itself, ``torch.cuda.set_device`` is used instead and ``"cuda:N"`` keeps its meaning).
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import platform
import signal
import tempfile
import threading
import time
import traceback
from pathlib import Path

from .errors import CheckpointError
from .spec import derived_seed

SESSIONS_NAME = "train_sessions.json"
_STATE_CACHE: dict = {}
#: this worker process: its index in the pool and its GPU (None: not placed)
_WORKER: dict = {"index": None, "gpu": None}

__all__ = ["train_task", "evaluate_task", "evaluate_point", "check_checkpoint", "deployment_hardware",
           "worker_gpu", "worker_device", "visible_gpu", "final_checkpoint", "versions", "SESSIONS_NAME"]


# ============================================================================ placement
def worker_gpu(index: int, n_gpus: int) -> int:
    """The GPU (0 .. n_gpus - 1) of the pool worker with start index ``index``: round robin."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be an integer >= 0 (worker start index), got {index!r}")
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise ValueError(f"n_gpus must be an integer >= 1, got {n_gpus!r}")
    return index % n_gpus


def worker_device(index: int, n_gpus: int) -> str:
    """``"cuda:{index % n_gpus}"``: the torch device of pool worker ``index``."""
    return f"cuda:{worker_gpu(index, n_gpus)}"


def visible_gpu(index: int, visible: list[str]) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value of pool worker ``index`` given the GPUs visible to the
    coordinator (``visible``: its ``CUDA_VISIBLE_DEVICES`` entries, or ``["0", ..., "n-1"]``)."""
    return str(visible[worker_gpu(index, len(visible))])


def _worker_init(parent_pid: int, counter=None, gpus: tuple = (), pin: bool = False) -> None:
    """Process-pool initialiser: ignore SIGINT (the coordinator stops the workers), take the next
    worker index, place the worker on its GPU (module docstring), one torch thread; exit when
    the parent process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while the coordinator spawned us
    if counter is not None:
        with counter.get_lock():
            _WORKER["index"] = counter.value
            counter.value += 1
    if gpus and _WORKER["index"] is not None:
        if pin:  # configs name "cuda:N" themselves: keep every GPU visible, make ours the current one
            _WORKER["gpu"] = worker_device(_WORKER["index"], len(gpus))
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpu(_WORKER["index"], list(gpus))
            _WORKER["gpu"] = f"GPU {os.environ['CUDA_VISIBLE_DEVICES']} (cuda:0 in this worker)"
    import torch

    torch.set_num_threads(1)
    if gpus and pin and _WORKER["index"] is not None:
        torch.cuda.set_device(worker_gpu(_WORKER["index"], len(gpus)))

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _torch_device(config):
    """The torch device a RunConfig asks for (``training.config.resolve_device`` of its
    ``device``: "auto" = CUDA if available else CPU; "cuda" without a GPU raises, nothing falls
    back to the CPU silently); the CPU for a RunConfig without a ``device`` option."""
    import torch

    from training import config as run_config

    name = getattr(config, "device", "cpu")
    return torch.device("cpu") if name == "cpu" else run_config.resolve_device(name)


# ============================================================================ versions, files
def versions() -> dict:
    """Versions of this process's memxbar, torch, numpy and Python (recorded with every point),
    and the GPU this worker was placed on, if any."""
    out = dict(_versions())
    if _WORKER["gpu"] is not None:
        out["gpu"] = _WORKER["gpu"]
    return out


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


# ============================================================================ checkpoints
def check_checkpoint(data: bytes, where, config: dict | None = None) -> dict:
    """The state dict of checkpoint bytes ``data`` (file ``where``), loaded weights-only; raises
    :class:`CheckpointError` (one line naming ``where``) if it is empty, not a torch zip archive,
    truncated, refused by the weights-only loader, not a memxbar checkpoint or (``config``
    given) a checkpoint of another configuration (compared as a resumed run compares them:
    :func:`training.checkpoints.same_results_config`, so a checkpoint written before an option
    with a neutral default existed still stands for its model)."""
    import pickle

    import torch

    if not data:
        raise CheckpointError(f"checkpoint {where} is empty (0 bytes)")
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"checkpoint {where} is not a torch checkpoint (not a zip archive; starts with "
                              f"{data[:8]!r})")
    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln), "")
        raise CheckpointError(f"checkpoint {where} was refused by the weights-only loader: it holds objects other "
                              f"than tensors and plain containers (not a memxbar checkpoint; possibly malicious)"
                              + (f": {detail}" if detail else "")) from None
    except Exception as exc:  # truncated archives, bad records: torch raises RuntimeError, EOFError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"checkpoint {where} cannot be loaded (truncated or corrupt): {first}") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"checkpoint {where} is not a memxbar training checkpoint (no 'config' and 'model' "
                              "entries)")
    from training.checkpoints import same_results_config

    if config is not None and not same_results_config(state["config"], config):
        raise CheckpointError(f"checkpoint {where} holds another configuration than the model it stands for")
    return state


def usable_latest_checkpoint(model_dir: Path, config: dict, notes: list[str]) -> Path | None:
    """The latest checkpoint of ``model_dir`` that loads and holds ``config``; corrupt ones
    (newest first) are renamed ``*.corrupt`` and described in ``notes``."""
    from training.loop import latest_checkpoint

    while True:
        ckpt = latest_checkpoint(model_dir)
        if ckpt is None:
            return None
        try:
            check_checkpoint(ckpt.read_bytes(), ckpt, config)
            return ckpt
        except (CheckpointError, OSError) as exc:
            aside = ckpt.with_name(ckpt.name + ".corrupt")
            os.replace(ckpt, aside)
            notes.append(f"{exc}; moved it to {aside.name} (training resumes from the previous checkpoint)")


# ============================================================================ training
def read_sessions(model_dir: Path) -> list[dict]:
    """The training sessions logged in ``model_dir`` (an unreadable log counts as empty)."""
    try:
        sessions = json.loads((Path(model_dir) / SESSIONS_NAME).read_text())
    except (OSError, ValueError):
        return []
    ok = isinstance(sessions, list) and all(isinstance(s, dict) and isinstance(s.get("start_epoch"), int)
                                            for s in sessions)
    return sessions if ok else []


def close_open_session(sessions: list[dict], checkpoint: Path | None) -> None:
    """Close the last session if it never ended (killed): its time is that up to its last
    checkpoint (``checkpoint``, the latest usable one), or it is dropped if it wrote none."""
    if not sessions or sessions[-1].get("seconds") is not None:
        return
    last = sessions[-1]
    from training.loop import CHECKPOINT_RE

    epoch = int(CHECKPOINT_RE.match(checkpoint.name).group(1)) if checkpoint is not None else 0
    started = last.get("started")
    if epoch > last["start_epoch"] and isinstance(started, (int, float)):
        last.update(seconds=max(0.0, checkpoint.stat().st_mtime - started), end_epoch=epoch, killed=True)
    else:
        sessions.pop()


def sessions_seconds(sessions: list[dict]) -> float:
    """Training seconds summed over the closed sessions."""
    return float(sum(s["seconds"] for s in sessions if isinstance(s.get("seconds"), (int, float))))


def _write_sessions(model_dir: Path, sessions: list[dict]) -> None:
    from training.report import atomic_write_bytes

    atomic_write_bytes(Path(model_dir) / SESSIONS_NAME, (json.dumps(sessions, indent=1) + "\n").encode())


def _train_in(cfg, model_dir: Path, sessions: list[dict] | None, notes: list[str]) -> dict:
    """Train (or resume) ``cfg`` in ``model_dir``; the successful result of :func:`train_task`."""
    from training.loop import CHECKPOINT_RE, train

    ckpt = usable_latest_checkpoint(model_dir, cfg.to_dict(), notes)
    start = int(CHECKPOINT_RE.match(ckpt.name).group(1)) if ckpt else 0
    sessions = read_sessions(model_dir) if sessions is None else [dict(s) for s in sessions]
    close_open_session(sessions, ckpt)
    sessions.append({"start_epoch": start, "end_epoch": None, "started": time.time(), "seconds": None})
    _write_sessions(model_dir, sessions)
    t0 = time.perf_counter()
    _, history = train(cfg, model_dir, resume=True, progress=False)
    train_s = time.perf_counter() - t0
    sessions[-1].update(seconds=train_s, end_epoch=cfg.train.epochs)
    _write_sessions(model_dir, sessions)
    final = final_checkpoint(model_dir, cfg.train.epochs)
    if not final.is_file():
        raise FileNotFoundError(f"training of {cfg.name} ended without its final checkpoint {final}")
    metrics = model_dir / "metrics.csv"
    return {"ok": True, "history": history, "train_s": train_s, "total_train_s": sessions_seconds(sessions),
            "sessions": sessions, "epochs_trained": cfg.train.epochs - start, "checkpoint": final.read_bytes(),
            "metrics_csv": metrics.read_bytes() if metrics.is_file() else None, "versions": versions(),
            "notes": notes}


def train_task(config: dict, model_dir: str | None = None, resume_from: tuple[str, bytes] | None = None,
               sessions: list[dict] | None = None) -> dict:
    """Train (or resume) one configuration (a resolved RunConfig dict).

    ``model_dir``: train there (the study's ``models/<train_key>`` when the worker shares the
    coordinator's file system), resuming from its latest usable checkpoint and logging the
    session there. None: train in a fresh worker-local temporary directory (removed afterwards),
    first holding ``resume_from`` = ``(checkpoint file name, bytes)`` if given; ``sessions``: the
    sessions logged so far (sent by the coordinator).

    Returns ``{"ok": True, "history", "train_s" (this session), "total_train_s" (every session),
    "sessions", "epochs_trained", "checkpoint" (bytes of the final checkpoint), "metrics_csv"
    (bytes or None), "versions", "notes"}`` or ``{"ok": False, "error": traceback}``.
    """
    import torch

    from training.config import RunConfig
    from training.loop import CHECKPOINT_RE
    from training.report import atomic_write_bytes

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        cfg = RunConfig.from_dict(config)
        notes: list[str] = []
        if model_dir is not None:
            return _train_in(cfg, Path(model_dir), None, notes)
        with tempfile.TemporaryDirectory(prefix=f"memxbar-{cfg.name}-", dir=_scratch_root()) as scratch:
            if resume_from is not None:
                name, data = resume_from
                if not isinstance(name, str) or not CHECKPOINT_RE.match(name):
                    raise ValueError(f"resume_from must name a checkpoint file epoch_NNNN.pt, got {name!r}")
                atomic_write_bytes(Path(scratch) / "checkpoints" / name, data)
            return _train_in(cfg, Path(scratch), sessions or [], notes)
    except Exception:  # recorded, the study goes on
        return {"ok": False, "error": traceback.format_exc()}
    finally:
        torch.set_num_threads(threads)


# ============================================================================ evaluation
def deployment_hardware(hw, deploy: dict):
    """The HardwareConfig a point is deployed with: the trained ``hw`` (its device seed derived
    from the point's ``train_key`` by hashing) with the point's ADC, moved to its family
    (:func:`training.evaluate.deployment_hardware`). The point's ``deploy.repeat`` is not in the
    seed: it is passed to ``model.deploy(t, repeat=r)``, which draws the devices of repeat ``r``
    from the hashed path ``(seed, layer, tile, repeat r)`` — independent draws."""
    from training.evaluate import deployment_hardware as move

    return move(hw.replace(adc_bits=deploy["adc_bits"]), deploy["family"])


def _load_checkpoint(train_key: str, config: dict, checkpoint: bytes):
    """``(cfg, model state dict, splits, n_in, n_classes)`` of a trained model from the bytes of
    its final checkpoint (the last one is cached per worker process)."""
    from training.config import RunConfig
    from training.loop import load_data

    stamp = (train_key, hashlib.sha256(checkpoint).hexdigest())
    loaded = _STATE_CACHE.get(stamp)
    if loaded is None:
        cfg = RunConfig.from_dict(config)
        state = check_checkpoint(checkpoint, f"of model {train_key}", cfg.to_dict())
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
    without device non-idealities (``mode = "ideal"``), both at the point's time steps and ADC;
    energy and latency per inference with the point's energy figures (``deploy["energy"]``)."""
    import torch

    from training.evaluate import evaluate
    from training.loop import model_from_checkpoint

    from xbar.energy import EnergyConfig

    cfg, state, splits, n_in, n_classes = loaded
    energy = EnergyConfig.from_dict(deploy.get("energy", {}))
    device = _torch_device(cfg)
    model = model_from_checkpoint(cfg, state, n_in, n_classes)
    if device.type != "cpu":
        model = model.to(device)  # accuracy() moves each batch to the model's device
    test = splits.test
    torch.manual_seed(derived_seed(key, "evaluate"))
    hw = cfg.hardware.replace(adc_bits=deploy["adc_bits"])
    steps, batch = deploy["time_steps"], cfg.data.eval_batch_size
    model.set_hardware(hw.replace(mode="ideal", backward="ste"))
    # the ideal pass's energy is only recorded for ideal points (it is the chip's cost otherwise)
    ideal_point = evaluate(model, test, batch, steps, energy=energy if deploy["mode"] == "ideal" else None)
    point = ideal_point
    if deploy["mode"] != "ideal":
        model.set_hardware(deployment_hardware(cfg.hardware, deploy))
        model.deploy(0.0, repeat=deploy.get("repeat", 0))
        model.set_inference_time(deploy["t"])
        model.set_mode(deploy["mode"])
        point = evaluate(model, test, batch, steps, energy=energy)
    acc, ideal = point["accuracy"], ideal_point["accuracy"]
    # energy and latency of the evaluated network (the deployed chip; the ideal one for ideal points)
    costs = {k: point[k] for k in ENERGY_METRICS if k in point}
    return {"accuracy": acc, "ideal_accuracy": ideal, "accuracy_drop": ideal - acc, **costs}


#: energy metrics recorded per point (:meth:`training.energy.EnergyReport.metrics`)
ENERGY_METRICS = ("energy_per_inference_J", "latency_per_step_s", "spikes_per_inference")


def evaluate_task(train_key: str, config: dict, checkpoint: bytes, items: list) -> list[dict]:
    """Evaluate ``items`` = [(point key, deploy settings)] of one trained model, given the bytes
    of its final ``checkpoint``; one result per point: ``{"key", "ok", "metrics", "timings",
    "versions"}`` or ``{"key", "ok": False, "error"}``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
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
    finally:
        torch.set_num_threads(threads)
