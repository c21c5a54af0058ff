"""How many torch CPU threads a training run uses (``[train] threads``).

The networks trained here are small (a few hundred neurons, batches of 50): each op is short and
a second intra-op thread helps little, while an OpenMP thread that has no core of its own
spin-waits and slows every op down. Measured on a 2-core machine shared with other jobs
(``training/configs/yin_yang_pcm_hwa.toml``, one epoch): ``threads = 0`` (torch's default, one
thread per core) was up to 9x slower than ``threads = 1``. So ``"auto"`` (the default) picks

    min(4, physical cores, cores this process may use, idle cores) but at least 1,

where *idle cores* is the number of usable cores minus the 1-minute load average (other work
already running): a busy 2-core machine gets 1 thread, an idle 16-core machine 4.
``threads = 0`` leaves torch's setting alone; ``threads = N`` sets N.
"""
from __future__ import annotations

import math
import os

__all__ = ["auto_threads", "resolve_threads", "MAX_AUTO_THREADS"]

#: the most threads "auto" picks (small networks stop gaining beyond a few threads)
MAX_AUTO_THREADS = 4


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except (ImportError, OSError):
        return None


def auto_threads(*, cores: int | None = None, physical: int | None = None, load: float | None = None) -> int:
    """The ``"auto"`` thread count (module docstring); arguments override the measured machine
    (for tests): ``cores`` usable logical cores, ``physical`` physical cores, ``load`` the
    1-minute load average."""
    cores = _usable_cores() if cores is None else cores
    physical = (_physical_cores() or cores) if physical is None else physical
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    idle = math.floor(cores - load)
    return max(1, min(MAX_AUTO_THREADS, physical, cores, idle))


def resolve_threads(threads) -> int:
    """``[train] threads`` → the number to pass to ``torch.set_num_threads`` (0: leave torch alone)."""
    return auto_threads() if threads == "auto" else int(threads)
