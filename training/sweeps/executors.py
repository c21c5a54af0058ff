"""Where the tasks of a study run: a local process pool, a Dask cluster, or the calling process.

* local pool: ``spawn`` processes (``workers``, default one per core, or one per GPU when the
  run configs ask for a GPU, :func:`placement`); workers use one torch thread, ignore Ctrl-C (the
  coordinator stops them at once) and exit by themselves if the coordinating process dies. A pool
  whose worker died (``BrokenProcessPool``) is replaced by :meth:`Executor.renew`.
* Dask distributed: ``scheduler = "tcp://HOST:PORT"`` (or a ``distributed.Client``).
  :func:`connect_scheduler` probes the address first and connects with a short time-out
  (:data:`SCHEDULER_TIMEOUT_S`); an unreachable scheduler is one line
  (:class:`~training.sweeps.errors.SchedulerError`), raised before anything is written.
  **A Dask scheduler and its workers are trusted code**: task results come back pickled and are
  unpickled by the coordinator, so anyone who controls the scheduler or a worker can run code in
  the coordinating process; connect only to clusters you control (on a network you trust, or
  with Dask's TLS security). GPUs on Dask: start one single-threaded worker per GPU with its own
  ``CUDA_VISIBLE_DEVICES`` (e.g. ``CUDA_VISIBLE_DEVICES=1 dask worker ADDRESS --nthreads 1
  --resources GPU=1``, or ``dask cuda worker`` from dask-cuda); when every worker declares a
  ``GPU`` resource, GPU studies submit each task with ``resources={"GPU": 1}``.
* ``workers = 0``: in the calling process, one task at a time (debugging, tests).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import PlacementError, SchedulerError
from .workers import _worker_init

#: seconds to wait for a Dask scheduler (a closed port fails at once)
SCHEDULER_TIMEOUT_S = 10.0
#: at most this many local workers per core (or one per GPU, if more)
MAX_WORKERS_PER_CORE = 4

__all__ = ["InlineExecutor", "Executor", "Placement", "placement", "connect_scheduler", "make_executor",
           "cpu_count", "SCHEDULER_TIMEOUT_S"]


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ============================================================================ placement
@dataclass(frozen=True)
class Placement:
    """``workers`` (local processes; 0 = in this process), ``gpus`` (the GPU of worker ``i`` is
    ``gpus[i % len(gpus)]``, empty: CPU), ``pin`` (configs name ``cuda:N``: set the current
    device instead of hiding the others), ``gpu_study`` (the configs ask for a GPU) and a
    description."""

    workers: int
    gpus: tuple = ()
    pin: bool = False
    gpu_study: bool = False
    text: str = ""


def _visible_gpus(n_gpus: int) -> list[str]:
    entries = [e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if e.strip()]
    return entries[:n_gpus] if len(entries) >= n_gpus else [str(i) for i in range(n_gpus)]


def check_workers(workers, limit: int | None = None) -> int:
    """``workers`` as an int in [0, limit] (default 4 x cores); ValueError otherwise."""
    limit = MAX_WORKERS_PER_CORE * cpu_count() if limit is None else limit
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= limit:
        raise ValueError(f"workers must be an integer in [0, {limit}] (0 = in this process; at most "
                         f"{MAX_WORKERS_PER_CORE} per core or one per GPU), got {workers!r}")
    return workers


def placement(devices, workers: int | None, n_gpus: int, *, local: bool = True) -> Placement:
    """Where the local workers of a study whose run configs ask for ``devices`` (e.g.
    ``{"cpu"}``, ``{"auto"}``, ``{"cuda"}``) run, given ``n_gpus`` GPUs on this machine.

    ``"cuda"``/``"cuda:N"`` without such a GPU raises :class:`PlacementError` (nothing falls back
    to the CPU silently); ``"auto"`` means the GPUs when there are any, else the CPU. On GPUs,
    ``workers`` defaults to the number of GPUs (more workers share them round robin). ``local``
    False (Dask): only whether the study wants GPUs matters; the workers bring their own.
    """
    devices = {str(d) for d in devices}
    explicit = sorted(d for d in devices if d.startswith("cuda"))
    gpu_study = bool(explicit) or ("auto" in devices and (n_gpus > 0 or not local))
    if not local:
        return Placement(workers=0, gpu_study=gpu_study, text="Dask workers (their own devices)")
    for d in explicit:
        index = d.partition(":")[2]
        if n_gpus == 0:
            raise PlacementError(f"the run configs ask for device {d!r} but torch sees no GPU here "
                                 "(torch.cuda.is_available() is False); use device = \"cpu\" or \"auto\"")
        if index and (not index.isdigit() or int(index) >= n_gpus):
            raise PlacementError(f"the run configs ask for device {d!r} but this machine has {n_gpus} GPU(s) "
                                 f"(cuda:0 .. cuda:{n_gpus - 1})")
    on_gpus = gpu_study and n_gpus > 0
    if workers is None:
        workers = n_gpus if on_gpus else cpu_count()
    workers = check_workers(workers, max(MAX_WORKERS_PER_CORE * cpu_count(), n_gpus))
    gpus = tuple(_visible_gpus(n_gpus)) if on_gpus and workers > 0 else ()
    if workers == 0:
        text = "in this process" + (" (GPU)" if on_gpus else "")
    elif gpus:
        text = f"{workers} local worker(s) on {len(gpus)} GPU(s): worker i uses GPU {list(gpus)}[i % {len(gpus)}]"
    else:
        text = f"{workers} local worker process(es) on the CPU"
    return Placement(workers=workers, gpus=gpus, pin=any(":" in d for d in explicit), gpu_study=gpu_study,
                     text=text)


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


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


def _local_pool(workers: int, gpus: tuple = (), pin: bool = False) -> cf.ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("i", 0)
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                  initargs=(os.getpid(), counter, tuple(gpus), pin))


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a local pool now: cancel queued tasks and terminate its workers (in-flight trainings
    keep their last epoch checkpoint)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5.0)


def _parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``tcp://HOST:PORT`` or ``HOST:PORT`` address, None for other schemes."""
    text = address.strip()
    parts = urlsplit(text if "://" in text else "tcp://" + text)
    if parts.scheme != "tcp":
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise SchedulerError(f"{address!r} is not a Dask scheduler address (tcp://HOST:PORT)")
    return parts.hostname, port


def connect_scheduler(scheduler, timeout_s: float = SCHEDULER_TIMEOUT_S):
    """``(client, owned)``: a ``distributed.Client`` of ``scheduler`` (an address or a Client;
    ``owned``: made here, to be closed by the caller). One-line :class:`SchedulerError` if
    Dask is missing or the scheduler cannot be reached within ``timeout_s`` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be a Dask scheduler address (tcp://HOST:PORT) or a distributed.Client, "
                         f"got {scheduler!r}")
    target = _parse_address(scheduler)
    if target is not None:
        try:
            with socket.create_connection(target, timeout=min(timeout_s, 5.0)):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {reason} (is `dask scheduler` "
                                 "running there, and the port open?)") from None
    try:
        return Client(scheduler, timeout=f"{timeout_s}s"), True
    except (OSError, TimeoutError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SchedulerError(f"cannot connect to the Dask scheduler at {scheduler} within {timeout_s:g} s: "
                             f"{reason}") from None
    except Exception as exc:  # something answered, but not the Dask protocol (garbage sizes, bad frames)
        raise SchedulerError(f"{scheduler} does not answer like a Dask scheduler ({type(exc).__name__}); check the "
                             "address and port") from None


def _dask_resources(client, gpu_study: bool) -> dict:
    """``{"resources": {"GPU": 1}}`` for a GPU study when every worker declares a GPU resource."""
    if not gpu_study:
        return {}
    workers = client.scheduler_info().get("workers", {})
    if workers and all("GPU" in (w.get("resources") or {}) for w in workers.values()):
        return {"resources": {"GPU": 1}}
    return {}


class Executor:
    """The executor of one run: ``ex`` (a ``concurrent.futures.Executor``), ``kind`` ("inline",
    "pool" or "dask"), ``slots`` (tasks that can run at once), ``generation`` (bumped by
    :meth:`renew`); :meth:`close` (wait for running tasks) or :meth:`abort` (stop now)."""

    def __init__(self, place: Placement, scheduler=None):
        self.place, self.generation, self._client, self._owned = place, 0, None, False
        if scheduler is not None:
            self._client, self._owned = connect_scheduler(scheduler)
            self.kind = "dask"
            self.ex = self._client.get_executor(pure=False, **_dask_resources(self._client, place.gpu_study))
            self.slots = max(1, sum(self._client.nthreads().values()))
        elif place.workers == 0:
            self.kind, self.ex, self.slots = "inline", InlineExecutor(), 1
        else:
            self.kind, self.slots = "pool", place.workers
            self.ex = _local_pool(place.workers, place.gpus, place.pin)

    def submit(self, fn, *args):
        """``ex.submit(fn, *args)``; a local pool starts its worker processes here, with SIGINT
        blocked so that a Ctrl-C to the whole terminal group reaches only the coordinator (the
        workers ignore SIGINT from their initialiser on, and are stopped by the coordinator)."""
        if self.kind != "pool" or threading.current_thread() is not threading.main_thread():
            return self.ex.submit(fn, *args)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.ex.submit(fn, *args)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def renew(self) -> None:
        """Replace a broken local pool by a fresh one."""
        if self.kind != "pool":
            raise RuntimeError("only a local pool can be renewed")
        _stop_pool(self.ex)
        self.ex = _local_pool(self.place.workers, self.place.gpus, self.place.pin)
        self.generation += 1

    def close(self) -> None:
        if self.kind == "pool":
            self.ex.shutdown(wait=True, cancel_futures=True)
        elif self.kind == "dask" and self._owned:
            self._client.close()

    def abort(self, futures=()) -> None:
        if self.kind == "pool":
            _stop_pool(self.ex)
        elif self.kind == "dask":
            for fut in futures:
                fut.cancel()
            if self._owned:
                self._client.close(timeout=5)


def make_executor(workers: int | None = None, scheduler=None):
    """``(executor, n_slots, closer)`` for the local pool (on the CPU), Dask or inline execution."""
    ex = Executor(placement({"cpu"}, workers, 0, local=scheduler is None), scheduler)
    return ex.ex, ex.slots, ex.close
