"""Parameter studies: a TOML spec expands into points that are trained once per training
configuration, evaluated per deployment setting, stored in SQLite and reported.

* :func:`plan` — validate a spec and estimate its cost (:mod:`.plan`);
* :func:`run` — run or resume a study into a directory (:mod:`.execute`: failures, resume,
  Ctrl-C; :mod:`.executors`: local pool, GPU placement, Dask; :mod:`.workers`: the tasks and
  checkpoint checks; :mod:`.lock`: one run per directory);
* :func:`report` — tidy table, plots and Markdown (:mod:`.report`, :mod:`.report_text`,
  :mod:`.plots`; units and escaping: :mod:`.units`; why an axis costs what it costs:
  :mod:`.explain`);
* :func:`load_spec` — parse, validate and expand a spec (:mod:`.spec`; which axes may be swept
  and their allowed values: :mod:`.axes`);
* errors with one-line messages: :mod:`.errors`.

CLI: ``xbar sweep plan|run|status|report`` (:mod:`.cli`).
"""
from .errors import (CheckpointError, Interrupted, PlacementError, SchedulerError, StoreError, StudyLocked,
                     SweepError)
from .execute import run
from .plan import plan
from .report import report, table
from .spec import Point, Spec, SpecError, load_spec
from .store import Store

__all__ = ["run", "plan", "report", "table", "load_spec", "Spec", "Point", "SpecError", "Store", "SweepError",
           "StoreError", "CheckpointError", "StudyLocked", "SchedulerError", "PlacementError", "Interrupted"]
