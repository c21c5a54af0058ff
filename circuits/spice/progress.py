"""A progress bar for one long call that reports no progress of its own (an ngspice run, a
deployment study): a background thread advances a ``tqdm`` bar with the elapsed time against an
estimate, so a long run is never silent.

``with elapsed_bar("ngspice 128x128", estimate_s=70.0): run()`` shows
``ngspice 128x128:  40%|████      | 28/70 s (estimate)`` on stderr, refreshed twice a second; past
the estimate the bar stays at 99 % and the elapsed time keeps counting. ``enable=False`` shows
nothing; ``enable=None`` shows the bar only when stderr is a terminal (tqdm's rule).
"""
from __future__ import annotations

import contextlib
import threading
import time

from tqdm.auto import tqdm

__all__ = ["elapsed_bar"]


@contextlib.contextmanager
def elapsed_bar(desc: str, *, estimate_s: float | None = None, enable: bool | None = True,
                interval: float = 0.5):
    """Show a bar of the elapsed time (s) of the ``with`` body against ``estimate_s`` (s; None:
    elapsed time only) until the body ends; the bar is closed on exit, also on errors."""
    total = max(1.0, float(estimate_s)) if estimate_s is not None else None
    fmt = ("{desc}: {percentage:3.0f}%|{bar}| {elapsed} of ~" + f"{_clock(total)} (estimate)") if total else \
        "{desc}: {elapsed} elapsed"
    disable = {True: False, False: True, None: None}[enable]  # None: tqdm's rule (off unless a terminal)
    bar = tqdm(total=total, desc=desc, disable=disable, bar_format=fmt,
               leave=False, dynamic_ncols=True)
    stop = threading.Event()
    start = time.perf_counter()

    def tick() -> None:
        while not stop.wait(interval):
            elapsed = time.perf_counter() - start
            bar.n = min(elapsed, 0.99 * total) if total else elapsed
            bar.refresh()

    thread = None if bar.disable else threading.Thread(target=tick, name="memxbar-elapsed-bar", daemon=True)
    if thread is not None:
        thread.start()
    try:
        yield bar
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        bar.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"
