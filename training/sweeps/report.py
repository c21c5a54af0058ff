"""Report of a study directory: tidy table (CSV + Parquet), plots and a Markdown summary.

``report(DIR)`` reads the study read-only and writes under ``DIR/report`` (or ``dest``):

* ``results.csv`` and ``results.parquet`` — one row per point of the study's (latest) spec that
  has a result: ``key``, ``train_key``, ``status``, one column per swept axis (its name), the
  resolved deployment settings (``deploy_t``, ``deploy_mode``, ...), the metrics (``accuracy``,
  ``ideal_accuracy``, ``accuracy_drop``, ``train_val_accuracy``, ``train_loss`` as fractions in
  [0, 1], and every other numeric metric the points hold, e.g. ``energy_per_inference_J``), the
  timings (``eval_s``, ``train_s``) and ``error`` (last line, failed points). A column whose
  values mix types (``deploy.adc_bits = [8, "none"]``) holds text (``"8"``, ``"none"``);
* ``accuracy_vs_<axis>.png`` — test accuracy (%) against each swept axis: mean over the other
  axes per replicate, then mean ± standard deviation over the replicates (``seed``); axis labels
  with units, durations as "1 day", "1 year";
* ``heatmap_<a>__<b>.png`` — mean accuracy (%) over each pair of swept axes (at most 6 pairs);
* ``steps_<axis>_by_<group>.png`` — when a time-steps axis (``network.time_steps``,
  ``deploy.time_steps``) and a method axis (``train.method``, ``network.neuron``) both vary:
  deployed and ideal accuracy against the time steps, one line per method, one panel per data
  set (``data.dataset``) when that varies too; the same numbers as a table in ``report.md``;
* ``accuracy_vs_metric_<column>.png`` — accuracy against each extra numeric metric column;
* ``report.md`` — counts, per-axis tables in the axes' units, for every axis the best-minus-worst
  accuracy difference with its 95 % confidence interval over the seeds (so an axis that costs
  nothing is shown to be within the seed-to-seed spread) and, for wire resistances and tile
  sizes, the relative IR drop at each swept value (:mod:`training.sweeps.explain`), and the axis
  (non-ideality) whose range of values costs the most accuracy. Accuracies are percentages
  everywhere in the report. Text copied from the database (names, values, descriptions, error
  messages) is escaped (:func:`training.sweeps.units.md`): a study cannot inject Markdown or
  HTML into ``report.md``.
"""
from __future__ import annotations

import io
import itertools
import math
import re
from pathlib import Path

from .errors import StoreError
from .spec import DEPLOY_KEYS, SpecError, load_spec
from .store import Store
from .units import format_value, md

MAX_HEATMAPS = 6
#: axes counted in inference time steps, and the axes that name a training method / neuron model
STEP_AXES = ("network.time_steps", "deploy.time_steps")
METHOD_AXES = ("train.method", "network.neuron")
FACET_AXIS = "data.dataset"
METRICS = ("accuracy", "ideal_accuracy", "accuracy_drop", "train_val_accuracy", "train_loss")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def study_keys(store: Store):
    """``(spec or None, keys of its points or None)`` from the latest spec stored in the DB."""
    text = store.meta("spec_text")
    if not text or not isinstance(text, str):
        return None, None
    try:
        spec = load_spec(text if "\n" in text else text + "\n")
    except (SpecError, ValueError, TypeError):
        return None, None
    return spec, {p.key for p in spec.points}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v):
    """Table cell of an axis value (lists and tables as JSON text, None as "none")."""
    import json

    if v is None:
        return "none"
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else repr(v)
    return str(v)


def _homogeneous(df, columns):
    """Columns whose values mix kinds (numbers, booleans, text) as text: Parquet needs one type."""
    for col in columns:
        values = [v for v in df[col] if not (isinstance(v, float) and math.isnan(v))]
        kinds = {"number" if _is_number(v) else "bool" if isinstance(v, bool) else "text" for v in values}
        if len(kinds) > 1:
            df[col] = df[col].map(_text)
    return df


def _extra_metrics(rows, taken) -> list[str]:
    """Numeric metric names beyond :data:`METRICS` held by the rows (in first-seen order)."""
    names: dict[str, bool] = {}
    for r in rows:
        for k, v in (r["metrics"] or {}).items():
            if k in METRICS or not isinstance(k, str):
                continue
            names[k] = names.get(k, True) and (v is None or _is_number(v))
    return [k for k, ok in names.items() if ok and k not in taken]


def table(out_dir):
    """The tidy ``pandas.DataFrame`` of a study directory and the swept axis names (read only)."""
    import pandas as pd

    with Store(out_dir, readonly=True) as store:
        spec, keys = study_keys(store)
        rows = store.rows(keys)
    axes = list(spec.axes) if spec else sorted({a for r in rows for a in r["axes"]})
    fixed = ["key", "train_key", "status", *axes, *([] if "seed" in axes else ["seed"]),
             *[f"deploy_{k}" for k in DEPLOY_KEYS], *METRICS]
    extra = _extra_metrics(rows, set(fixed) | {"eval_s", "train_s", "attempts", "error"})
    records = []
    for r in rows:
        rec = {"key": r["key"], "train_key": r["train_key"], "status": r["status"]}
        rec |= {a: _cell(r["axes"].get(a)) for a in axes}
        if "seed" not in axes:  # one replicate: the base seed's label
            rec["seed"] = (spec.base.get("seed", 0) if spec else 0)
        rec |= {f"deploy_{k}": _cell(r["deploy"].get(k)) for k in DEPLOY_KEYS}
        metrics, timings = r["metrics"] or {}, r["timings"] or {}
        rec |= {m: _float(metrics.get(m)) for m in (*METRICS, *extra)}
        rec |= {"eval_s": _float(timings.get("eval_s")), "train_s": _float(timings.get("train_s")),
                "attempts": r["attempts"], "error": ((str(r["error"] or "")).strip().splitlines()[-1:] or [""])[0]}
        records.append(rec)
    columns = [*fixed, *extra, "eval_s", "train_s", "attempts", "error"]
    df = pd.DataFrame.from_records(records, columns=columns)
    return _homogeneous(df, [*axes, "seed", *[f"deploy_{k}" for k in DEPLOY_KEYS]]), axes


def _float(v) -> float:
    return float(v) if _is_number(v) else math.nan


def _sort_key(v):
    """Numbers (and numeric text) by value first, then other values as text."""
    if _is_number(v):
        return (0, float(v), "")
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def axis_summary(df, axis: str, metric: str = "accuracy"):
    """``[(value, mean, std over replicates, n replicates)]`` of ``metric`` against ``axis``
    (values in numeric order, then text)."""
    rep = "seed" if axis != "seed" else None
    done = df[df["status"] == "done"]
    out = []
    for value, sub in done.groupby(axis, sort=False):
        per_rep = sub.groupby(rep)[metric].mean() if rep else sub[metric]
        std = float(per_rep.std(ddof=1)) if len(per_rep) > 1 else 0.0
        out.append((value, float(per_rep.mean()), std, len(per_rep)))
    return sorted(out, key=lambda s: _sort_key(s[0]))


def grouped_summary(df, axis: str, group: str, facet: str | None, metric: str = "accuracy"):
    """``{(facet value, group value): axis_summary(rows of that pair, axis, metric)}``
    (``facet`` None: one facet, value None)."""
    done = df[df["status"] == "done"]
    out = {}
    for fv, fsub in (done.groupby(facet, sort=True) if facet else [(None, done)]):
        for gv, gsub in fsub.groupby(group, sort=True):
            out[fv, gv] = axis_summary(gsub, axis, metric)
    return out


def step_plots(df, axes) -> list[tuple[str, str, str | None]]:
    """``[(step axis, method axis, facet axis or None)]`` to draw (module docstring); a
    ``deploy.time_steps`` axis equal to ``network.time_steps`` on every row (zipped) is left out."""
    done = df[df["status"] == "done"]
    varied = [a for a in axes if a != "seed" and done[a].nunique() > 1] if len(done) else []
    steps = [a for a in STEP_AXES if a in varied]
    if len(steps) == 2 and (done[steps[0]] == done[steps[1]]).all():
        steps = steps[:1]
    facet = FACET_AXIS if FACET_AXIS in varied else None
    return [(s, g, facet) for s in steps for g in METHOD_AXES if g in varied]


def costliest(df, axes, hardware_only: bool = True) -> tuple[str, tuple, tuple, float] | None:
    """``(axis, (best value, mean), (worst value, mean), cost)`` of the swept axis whose values
    span the widest range of mean accuracy (``None`` without a varied axis). ``hardware_only``:
    only non-ideality axes (``hardware.*``, ``deploy.*`` but not the energy figures
    ``deploy.energy.*``), not data, network or training ones."""
    best = None
    for axis in axes:
        if axis == "seed" or (hardware_only and not axis.startswith(("hardware.", "deploy."))):
            continue
        if axis.startswith("deploy.energy."):  # energy figures change costs, never the network
            continue
        stats = axis_summary(df, axis)
        if len(stats) < 2:
            continue
        hi = max(stats, key=lambda s: s[1])
        lo = min(stats, key=lambda s: s[1])
        cost = hi[1] - lo[1]
        if best is None or cost > best[3]:
            best = (axis, (hi[0], hi[1]), (lo[0], lo[1]), cost)
    return best


def metric_columns(df) -> list[str]:
    """Extra numeric metric columns (beyond :data:`METRICS`) with two or more distinct values
    among the done points."""
    known = {"key", "train_key", "status", "seed", "eval_s", "train_s", "attempts", "error", *METRICS}
    done = df[df["status"] == "done"]
    out = []
    for col in df.columns:
        if col in known or col.startswith("deploy_") or "." in col:
            continue
        values = done[col].dropna()
        if len(values) and all(_is_number(v) for v in values) and values.nunique() > 1:
            out.append(col)
    return out


def report(out_dir, dest=None) -> Path:
    """Write the report of the study in ``out_dir`` (module docstring) into ``dest`` (default
    ``out_dir/report``); returns ``report.md``. The study is only read."""
    import matplotlib

    matplotlib.use("Agg")
    from training.report import atomic_write_bytes

    from . import plots
    from .report_text import markdown

    out_dir = Path(out_dir)
    df, axes = table(out_dir)
    dest = Path(dest) if dest is not None else out_dir / "report"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest / "results.csv", df.to_csv(index=False).encode())
    except OSError as exc:
        raise StoreError(f"cannot write the report into {dest}: {exc.strerror or exc} (give another place with "
                         "`xbar sweep report DIR --dest OUT`)") from None
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(dest / "results.parquet", buf.getvalue())
    figures = []
    done = df[df["status"] == "done"]
    varied = [a for a in axes if a != "seed" and done[a].nunique() > 1]
    for axis in varied:
        name = f"accuracy_vs_{_slug(axis)}.png"
        plots.plot_axis(axis_summary(df, axis), axis_summary(df, axis, "ideal_accuracy"), axis, dest / name)
        figures.append(name)
    for a, b in list(itertools.combinations(varied, 2))[:MAX_HEATMAPS]:
        name = f"heatmap_{_slug(a)}__{_slug(b)}.png"
        grid = done.pivot_table(index=a, columns=b, values="accuracy", aggfunc="mean")
        grid = grid.loc[sorted(grid.index, key=_sort_key), sorted(grid.columns, key=_sort_key)]
        plots.plot_heatmap(grid, a, b, dest / name)
        figures.append(name)
    for axis, group, facet in step_plots(df, axes):
        name = f"steps_{_slug(axis)}_by_{_slug(group)}.png"
        plots.plot_steps_by(grouped_summary(df, axis, group, facet, "accuracy"),
                            grouped_summary(df, axis, group, facet, "ideal_accuracy"), axis, facet, dest / name)
        figures.append(name)
    worst = costliest(df, axes)
    for column in metric_columns(df):
        name = f"accuracy_vs_metric_{_slug(column)}.png"
        plots.plot_metric(df, column, dest / name, colour_axis=worst[0] if worst else None)
        figures.append(name)
    with Store(out_dir, readonly=True) as store:
        spec, keys = study_keys(store)
    total = len(keys) if keys is not None else len(df)
    counts = {"total": total, "done": int((df["status"] == "done").sum()),
              "failed": int((df["status"] == "failed").sum())}
    counts["pending"] = total - counts["done"] - counts["failed"]
    path = dest / "report.md"
    atomic_write_bytes(path, markdown(df, axes, figures, counts, spec).encode())
    return path


_SAFE_NAME = re.compile(r"[A-Za-z0-9_.]+")


def name_md(axis) -> str:
    """An axis or column name for Markdown: as is when it is a plain dotted name, else escaped."""
    text = str(axis)
    return text if _SAFE_NAME.fullmatch(text) else md(text)


def value_md(axis: str, value) -> str:
    """An axis value in its unit, escaped for Markdown."""
    return md(format_value(axis, value))
