"""Report of a study directory: tidy table (CSV + Parquet), plots and a Markdown summary.

``report(DIR)`` writes under ``DIR/report``:

* ``results.csv`` and ``results.parquet`` — one row per point of the study's (latest) spec that
  has a result: ``key``, ``train_key``, ``status``, one column per swept axis (its name), the
  resolved deployment settings (``deploy_t``, ``deploy_mode``, ...), the metrics (``accuracy``,
  ``ideal_accuracy``, ``accuracy_drop``, ``train_val_accuracy``, ``train_loss``), the timings
  (``eval_s``, ``train_s``) and ``error`` (last line, failed points);
* ``accuracy_vs_<axis>.png`` — test accuracy against each swept axis: mean over the other axes
  per replicate, then mean ± standard deviation over the replicates (``seed``);
* ``heatmap_<a>__<b>.png`` — mean accuracy over each pair of swept axes (at most 6 pairs);
* ``steps_<axis>_by_<group>.png`` — when a time-steps axis (``network.time_steps``,
  ``deploy.time_steps``) and a method axis (``train.method``, ``network.neuron``) both vary:
  deployed and ideal accuracy against the time steps, one line per method, one panel per data
  set (``data.dataset``) when that varies too; the same numbers as a table in ``report.md``;
* ``report.md`` — counts, per-axis tables, and the axis (non-ideality) whose range of values
  costs the most accuracy.
"""
from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

from .spec import DEPLOY_KEYS, SpecError, load_spec
from .store import Store

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
    if not text:
        return None, None
    try:
        spec = load_spec(text)
    except (SpecError, ValueError):
        return None, None
    return spec, {p.key for p in spec.points}


def table(out_dir):
    """The tidy ``pandas.DataFrame`` of a study directory and the swept axis names."""
    import pandas as pd

    with Store(out_dir, create=False) as store:
        spec, keys = study_keys(store)
        rows = store.rows(keys)
    axes = list(spec.axes) if spec else sorted({a for r in rows for a in r["axes"]})
    records = []
    for r in rows:
        rec = {"key": r["key"], "train_key": r["train_key"], "status": r["status"]}
        rec |= {a: _cell(r["axes"].get(a)) for a in axes}
        if "seed" not in axes:  # one replicate: the base seed's label
            rec["seed"] = (spec.base.get("seed", 0) if spec else 0)
        rec |= {f"deploy_{k}": _cell(r["deploy"].get(k)) for k in DEPLOY_KEYS}
        metrics, timings = r["metrics"] or {}, r["timings"] or {}
        rec |= {m: metrics.get(m, math.nan) for m in METRICS}
        rec |= {"eval_s": timings.get("eval_s", math.nan), "train_s": timings.get("train_s", math.nan),
                "attempts": r["attempts"], "error": (r["error"] or "").strip().splitlines()[-1:] or [""]}
        rec["error"] = rec["error"][0]
        records.append(rec)
    columns = ["key", "train_key", "status", *axes, *([] if "seed" in axes else ["seed"]),
               *[f"deploy_{k}" for k in DEPLOY_KEYS], *METRICS, "eval_s", "train_s", "attempts", "error"]
    return pd.DataFrame.from_records(records, columns=columns), axes


def _cell(v):
    """Table cell of an axis value (lists and tables as JSON text, None as "none")."""
    if v is None:
        return "none"
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def axis_summary(df, axis: str, metric: str = "accuracy"):
    """``[(value, mean, std over replicates, n replicates)]`` of ``metric`` against ``axis``."""
    rep = "seed" if axis != "seed" else None
    done = df[df["status"] == "done"]
    out = []
    for value, sub in done.groupby(axis, sort=True):
        per_rep = sub.groupby(rep)[metric].mean() if rep else sub[metric]
        std = float(per_rep.std(ddof=1)) if len(per_rep) > 1 else 0.0
        out.append((value, float(per_rep.mean()), std, len(per_rep)))
    return out


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
    only non-ideality axes (``hardware.*``, ``deploy.*``), not data, network or training ones."""
    best = None
    for axis in axes:
        if axis == "seed" or (hardware_only and not axis.startswith(("hardware.", "deploy."))):
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


# ---------------------------------------------------------------------------- plots
def _save(fig, path: Path) -> None:
    from training.report import save_figure

    save_figure(fig, path, dpi=110)


def plot_axis(df, axis: str, path: Path) -> None:
    """Accuracy (deployed and ideal) against ``axis`` with error bars over replicates."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    for metric, style, label in (("accuracy", "o-", "deployed"), ("ideal_accuracy", "s--", "ideal (no devices)")):
        stats = axis_summary(df, axis, metric)
        values = [s[0] for s in stats]
        x = values if _numeric(values) else list(range(len(values)))
        ax.errorbar(x, [s[1] for s in stats], yerr=[s[2] for s in stats], fmt=style, capsize=3, label=label)
        if not _numeric(values):
            ax.set_xticks(x, [str(v) for v in values])
        elif len(values) > 1 and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_xscale("log")
    ax.set(xlabel=axis, ylabel="test accuracy (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_heatmap(df, a: str, b: str, path: Path) -> None:
    """Mean deployed accuracy over the (a, b) grid (other axes and seeds averaged)."""
    import matplotlib.pyplot as plt

    done = df[df["status"] == "done"]
    grid = done.pivot_table(index=a, columns=b, values="accuracy", aggfunc="mean")
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * grid.shape[1], 1.0 + 0.6 * grid.shape[0]))
    im = ax.imshow(100 * grid.values, cmap="viridis", aspect="auto")  # percent, like the labels
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=30, ha="right")
    ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
    for (i, j), v in zip(itertools.product(range(grid.shape[0]), range(grid.shape[1])), grid.values.ravel()):
        if math.isfinite(v):
            ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", color="w", fontsize=8)
    ax.set(xlabel=b, ylabel=a, title="mean test accuracy (%)")
    fig.colorbar(im, ax=ax)
    _save(fig, path)


def plot_steps_by(df, axis: str, group: str, facet: str | None, path: Path) -> None:
    """Deployed (solid) and ideal (dashed) accuracy against the time-steps ``axis``, one colour
    per ``group`` value, one panel per ``facet`` value; error bars over replicates."""
    import matplotlib.pyplot as plt

    deployed = grouped_summary(df, axis, group, facet, "accuracy")
    ideal = grouped_summary(df, axis, group, facet, "ideal_accuracy")
    facets = sorted({f for f, _ in deployed}, key=str)
    groups = sorted({g for _, g in deployed}, key=str)
    fig, axs = plt.subplots(1, len(facets), figsize=(4.6 * len(facets), 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, fv in zip(axs[0], facets):
        for gi, gv in enumerate(groups):
            for stats, style, kind in ((deployed.get((fv, gv), []), "o-", "deployed"),
                                       (ideal.get((fv, gv), []), "s--", "ideal")):
                if not stats:
                    continue
                x = [s[0] for s in stats]
                ax.errorbar(x, [100 * s[1] for s in stats], yerr=[100 * s[2] for s in stats], fmt=style, capsize=3,
                            color=colours[gi % len(colours)], label=f"{gv} ({kind})")
        ax.set_xscale("log", base=2)
        ax.set(xlabel=axis, ylabel="test accuracy (%)", title=str(fv) if facet else "")
        ax.grid(alpha=0.3)
    axs[0][0].legend(fontsize=7)
    _save(fig, path)


# ---------------------------------------------------------------------------- markdown
def _markdown(df, axes, figures, counts, spec) -> str:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    done = df[df["status"] == "done"]
    lines = [f"# Sweep report: {spec.name if spec else 'study'}", ""]
    if spec is not None and spec.description:
        lines += [spec.description, ""]
    lines += [f"Points: {counts['total']} in the spec, {counts['done']} done, {counts['failed']} failed, "
              f"{counts['pending']} pending; {df['train_key'].nunique()} trained model(s). "
              f"Accuracies are test-set fractions in %, mean ± std over seed replicates.", ""]
    if len(done):
        lines += [f"Overall: deployed {pct(done['accuracy'].mean())} %, ideal (same weights, no device "
                  f"non-idealities) {pct(done['ideal_accuracy'].mean())} %, mean deployment loss "
                  f"{pct(done['accuracy_drop'].mean())} percentage points.", ""]
    worst = costliest(df, axes)
    if worst is None:
        lines += ["No hardware or deployment axis varies in this study, so no non-ideality is ranked.", ""]
    else:
        axis, (hv, hm), (lv, lm), cost = worst
        lines += ["## The non-ideality that costs most", "",
                  f"**{axis}**: mean accuracy {pct(hm)} % at {axis} = {hv} but {pct(lm)} % at {axis} = {lv} "
                  f"(a cost of {pct(cost)} percentage points over the swept range; other axes averaged).", ""]
    for axis in axes:
        stats = axis_summary(df, axis) if axis != "seed" else []
        if not stats:
            continue
        lines += [f"## {axis}", "", "| value | accuracy (%) | std (pp) | seeds |", "|---|---|---|---|"]
        lines += [f"| {v} | {pct(m)} | {pct(s)} | {n} |" for v, m, s, n in stats]
        lines.append("")
    for axis, group, facet in step_plots(df, axes):
        deployed = grouped_summary(df, axis, group, facet, "accuracy")
        ideal = grouped_summary(df, axis, group, facet, "ideal_accuracy")
        lines += [f"## Accuracy vs {axis} per {group}", "",
                  f"| {facet or 'all'} | {group} | {axis} | deployed (%) | ideal (%) | loss (pp) | seeds |",
                  "|---|---|---|---|---|---|---|"]
        for (fv, gv), stats in deployed.items():
            ideal_by_value = {s[0]: s for s in ideal.get((fv, gv), [])}
            for v, m, s, n in stats:
                im = ideal_by_value[v][1]
                lines.append(f"| {fv if facet else 'all'} | {gv} | {v} | {pct(m)} ± {pct(s)} | {pct(im)} | "
                             f"{pct(im - m)} | {n} |")
        lines.append("")
    failed = df[df["status"] == "failed"]
    if len(failed):
        lines += ["## Failed points", "", "| key | error |", "|---|---|"]
        lines += [f"| {r.key} | {str(r.error).replace('|', '/')} |" for r in failed.itertuples()]
        lines.append("")
    lines += [f"![{f}]({f})" for f in figures]
    lines += ["", "Files: `results.csv`, `results.parquet` (one row per point).", ""]
    return "\n".join(lines)


def report(out_dir) -> Path:
    """Write the report of the study in ``out_dir`` (module docstring); returns ``report.md``."""
    import matplotlib

    matplotlib.use("Agg")
    from training.report import atomic_write_bytes

    out_dir = Path(out_dir)
    df, axes = table(out_dir)
    dest = out_dir / "report"
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest / "results.csv", df.to_csv(index=False).encode())
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(dest / "results.parquet", buf.getvalue())
    figures = []
    varied = [a for a in axes if a != "seed" and df[df["status"] == "done"][a].nunique() > 1]
    for axis in varied:
        name = f"accuracy_vs_{_slug(axis)}.png"
        plot_axis(df, axis, dest / name)
        figures.append(name)
    for a, b in list(itertools.combinations(varied, 2))[:MAX_HEATMAPS]:
        name = f"heatmap_{_slug(a)}__{_slug(b)}.png"
        plot_heatmap(df, a, b, dest / name)
        figures.append(name)
    for axis, group, facet in step_plots(df, axes):
        name = f"steps_{_slug(axis)}_by_{_slug(group)}.png"
        plot_steps_by(df, axis, group, facet, dest / name)
        figures.append(name)
    with Store(out_dir, create=False) as store:
        spec, keys = study_keys(store)
    total = len(keys) if keys is not None else len(df)
    counts = {"total": total, "done": int((df["status"] == "done").sum()),
              "failed": int((df["status"] == "failed").sum())}
    counts["pending"] = total - counts["done"] - counts["failed"]
    path = dest / "report.md"
    atomic_write_bytes(path, _markdown(df, axes, figures, counts, spec).encode())
    return path
