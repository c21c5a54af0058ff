"""Parameter studies (issue #8): a TOML spec expands into points that are trained once per
training configuration, evaluated per deployment setting, stored in SQLite and reported.

* :func:`plan` — validate a spec and estimate its cost (:mod:`.plan`);
* :func:`run` — run or resume a study into a directory (:mod:`.execute`);
* :func:`report` — tidy table, plots and Markdown (:mod:`.report`);
* :func:`load_spec` — parse, validate and expand a spec (:mod:`.spec`; which axes may be swept
  and their allowed values: :mod:`.axes`).

CLI: ``xbar sweep plan|run|status|report`` (:mod:`.cli`).
"""
from .execute import run
from .plan import plan
from .report import report, table
from .spec import Point, Spec, SpecError, load_spec
from .store import Store

__all__ = ["run", "plan", "report", "table", "load_spec", "Spec", "Point", "SpecError", "Store"]
