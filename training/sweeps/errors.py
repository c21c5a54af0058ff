"""The errors of the sweep machinery: each one a single line naming the file (row, key) and what
is wrong, so that ``xbar sweep ...`` can print it without a traceback.

* :class:`SweepError` — base class (the CLI prints ``xbar: error: <message>``, exit code 2);
* :class:`StoreError` — a study directory or ``results.sqlite`` that cannot be created, read or
  written (garbage, truncated, wrong schema, bad JSON in a row, read-only);
* :class:`CheckpointError` — a checkpoint file that is empty, truncated, not a torch file, refused
  by the weights-only loader or holding another configuration;
* :class:`StudyLocked` — another ``xbar sweep run`` holds the study directory;
* :class:`SchedulerError` — a Dask scheduler that cannot be reached (or ``distributed`` missing);
* :class:`PlacementError` — a study that asks for GPUs where there are none;
* :class:`Interrupted` — Ctrl-C (a ``KeyboardInterrupt``) after the run has stopped its workers;
  ``summary`` holds the counts of what finished.
"""
from __future__ import annotations

__all__ = ["SweepError", "StoreError", "CheckpointError", "StudyLocked", "SchedulerError", "PlacementError",
           "Interrupted"]


class SweepError(Exception):
    """An error of the sweep machinery with a one-line message (module docstring)."""


class StoreError(SweepError, ValueError):
    """A study directory or results database that cannot be used."""


class CheckpointError(SweepError, ValueError):
    """A checkpoint file that cannot be used."""


class StudyLocked(SweepError):
    """The study directory is held by another running ``xbar sweep run``."""


class SchedulerError(SweepError, OSError):
    """The Dask scheduler cannot be reached."""


class PlacementError(SweepError, ValueError):
    """Workers cannot be placed as the run configs ask (e.g. ``device = "cuda"`` without a GPU)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C: the run stopped its workers; ``summary`` counts what finished before."""

    def __init__(self, summary: dict):
        super().__init__("interrupted")
        self.summary = summary
