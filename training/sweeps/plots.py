"""The figures of a sweep report (PNG, via :func:`training.report.save_figure`).

Accuracy is in percent on every axis and colour bar (as in the report's tables); axis labels
carry their units and values are written in them (durations as "1 s", "1 day", "1 year";
resistances in Ω, conductances in µS; ``adc_bits = "none"`` as "ideal (none)").

* :func:`plot_axis` — deployed and ideal accuracy against one swept axis (error bars: std over
  the seed replicates);
* :func:`plot_heatmap` — mean deployed accuracy over a pair of axes;
* :func:`plot_steps_by` — accuracy against time steps, one line per method;
* :func:`plot_metric` — accuracy against a numeric metric column (e.g. ``energy_per_inference_J``),
  one marker per point.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

from .units import axis_label, axis_unit, format_value, human_duration, metric_label

__all__ = ["plot_axis", "plot_heatmap", "plot_steps_by", "plot_metric"]


def _save(fig, path: Path) -> None:
    from training.report import save_figure

    save_figure(fig, path, dpi=110)


def numeric(values) -> bool:
    """Whether every value is an int/float (not bool)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _x_axis(ax, axis: str, values) -> list:
    """Positions of ``values`` on the x axis (numbers, log scale for wide positive ranges;
    categories otherwise) with tick labels in the axis's unit; returns the positions."""
    if numeric(values) and len(values) > 0:
        x = [float(v) for v in values]
        if len(x) > 1 and min(x) > 0 and max(x) / min(x) > 100:
            ax.set_xscale("log")
        if axis_unit(axis) == "time" or len(x) <= 8:
            ax.set_xticks(x, [format_value(axis, v) for v in values])
            ax.minorticks_off()
        return x
    x = list(range(len(values)))
    ax.set_xticks(x, [format_value(axis, v) for v in values])
    return x


def plot_axis(stats_deployed, stats_ideal, axis: str, path: Path) -> None:
    """Accuracy (deployed and ideal, %) against ``axis``; ``stats_*`` are
    :func:`~training.sweeps.report.axis_summary` lists ``[(value, mean, std, n)]``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    for stats, style, label in ((stats_deployed, "o-", "deployed"), (stats_ideal, "s--", "ideal (no devices)")):
        values = [s[0] for s in stats]
        x = _x_axis(ax, axis, values)
        ax.errorbar(x, [100 * s[1] for s in stats], yerr=[100 * s[2] for s in stats], fmt=style, capsize=3,
                    label=label)
    ax.set(xlabel=axis_label(axis), ylabel="test accuracy (%), mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_heatmap(grid, a: str, b: str, path: Path) -> None:
    """Mean deployed accuracy (%) over the (a, b) grid: ``grid`` is a pivot table (rows: values of
    ``a``, columns: values of ``b``) of accuracy fractions."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * grid.shape[1], 1.2 + 0.6 * grid.shape[0]))
    im = ax.imshow(100 * grid.values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [format_value(b, c) for c in grid.columns], rotation=30, ha="right")
    ax.set_yticks(range(grid.shape[0]), [format_value(a, i) for i in grid.index])
    for (i, j), v in zip(itertools.product(range(grid.shape[0]), range(grid.shape[1])), grid.values.ravel()):
        if math.isfinite(v):
            ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", color="w", fontsize=8)
    ax.set(xlabel=axis_label(b), ylabel=axis_label(a), title="mean test accuracy (%)")
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    _save(fig, path)


def plot_steps_by(deployed: dict, ideal: dict, axis: str, facet: str | None, path: Path) -> None:
    """Deployed (solid) and ideal (dashed) accuracy (%) against the time-steps ``axis``, one colour
    per group, one panel per facet; ``deployed``/``ideal`` are
    :func:`~training.sweeps.report.grouped_summary` dicts."""
    import matplotlib.pyplot as plt

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
        ax.set(xlabel=axis_label(axis), ylabel="test accuracy (%)", title=str(fv) if facet else "")
        ax.grid(alpha=0.3)
    axs[0][0].legend(fontsize=7)
    _save(fig, path)


def plot_metric(df, column: str, path: Path, colour_axis: str | None = None) -> None:
    """Deployed accuracy (%) of every done point against the numeric metric ``column`` (log x
    for wide positive ranges), coloured by ``colour_axis`` if given."""
    import matplotlib.pyplot as plt

    done = df[(df["status"] == "done") & df[column].notna()]
    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    groups = done.groupby(colour_axis, sort=True) if colour_axis else [(None, done)]
    for value, sub in groups:
        label = format_value(colour_axis, value) if colour_axis else None
        ax.plot(sub[column].astype(float), 100 * sub["accuracy"].astype(float), "o", ms=4, alpha=0.8, label=label)
    x = done[column].astype(float)
    if len(x) and float(x.min()) > 0 and float(x.max()) / float(x.min()) > 100:
        ax.set_xscale("log")
    ax.set(xlabel=metric_label(column), ylabel="test accuracy (%)")
    if column.endswith("_s"):
        ax.set_xlabel(f"{metric_label(column)}; e.g. {human_duration(float(x.median()))}" if len(x) else
                      metric_label(column))
    ax.grid(alpha=0.3)
    if colour_axis:
        ax.legend(fontsize=7, title=axis_label(colour_axis), title_fontsize=7)
    _save(fig, path)
