"""The Markdown text of a sweep report (``report.md``; :mod:`training.sweeps.report` writes it).

Accuracies in percent, differences in percentage points (pp), axis values in their units
(:mod:`training.sweeps.units`); every axis section ends with the best-minus-worst difference and
its 95 % confidence interval over the seed replicates, and for wire resistances and tile sizes
the relative IR drop of a tile at each swept value (:mod:`training.sweeps.explain`), so an axis
that "costs nothing" says why. Everything copied from the study database is escaped.
"""
from __future__ import annotations

from .explain import IR_AXES, axis_effect, ir_drop
from .units import axis_label, axis_unit, md, metric_label, si

__all__ = ["markdown"]

#: cost metrics tabulated beside the accuracy of every axis value (column -> unit)
COST_COLUMNS = {"energy_per_inference_J": "J", "latency_per_step_s": "s"}
#: a confidence interval whose half-width is at most this (pp) rules out any cost that matters
NEGLIGIBLE_PP = 1.0


def pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _effect_line(df, axis: str) -> list[str]:
    from .report import value_md

    if axis.startswith("deploy.energy."):
        return ["An energy figure changes the energy and latency metrics only (the columns above): the network, "
                "its devices and its accuracy are the same at every value.", ""]
    effect = axis_effect(df, axis)
    if effect is None:
        return []
    if effect.delta == 0:
        return ["Every value gives the same mean accuracy: this axis costs nothing in this study.", ""]
    head = (f"Best − worst: {pct(effect.delta)} pp ({value_md(axis, effect.best)} vs "
            f"{value_md(axis, effect.worst)})")
    if effect.ci is None:
        return [head + "; with a single seed replicate per value there is no confidence interval "
                "(add `replicates` to tell a real cost from seed-to-seed spread).", ""]
    ci = f"95 % CI [{pct(effect.ci[0])}, {pct(effect.ci[1])}] pp (Welch, {effect.n_best} vs {effect.n_worst} seeds)"
    if effect.significant:
        return [f"{head}, {ci}: significant.", ""]
    half = 0.5 * (effect.ci[1] - effect.ci[0])
    if half <= NEGLIGIBLE_PP / 100:
        return [f"{head}, {ci}: **not significant**, and any real difference is below {pct(abs(effect.delta) + half)} "
                "pp — this axis costs nothing this study can measure.", ""]
    return [f"{head}, {ci}: **not significant** — within the seed-to-seed spread; with "
            f"{min(effect.n_best, effect.n_worst)} seeds per value the study cannot tell a cost this size from "
            "chance (more `replicates` narrow the interval).", ""]


def _metric_value(column: str, value: float) -> str:
    """A metric value with its unit and SI prefix (``3.6e-09`` J -> ``3.6 nJ``); plain if unitless."""
    unit = axis_unit(column)
    unit = "s" if unit == "time" else unit
    return si(float(value), unit) if unit else f"{value:.3g}"


def _circuit_solved(df) -> bool:
    """Whether any done point solves the crossbar circuit (deployed or trained in circuit mode)."""
    done = df[df["status"] == "done"]
    return bool((done.get("deploy_mode") == "circuit").any()) if "deploy_mode" in done else False


def _span(values: list[float], digits: str = ".2g") -> str:
    lo, hi = min(values), max(values)
    return f"{100 * lo:{digits}}" if f"{100 * lo:{digits}}" == f"{100 * hi:{digits}}" else \
        f"{100 * lo:{digits}}–{100 * hi:{digits}}"


def _ir_lines(df, axis: str, configs: dict) -> list[str]:
    """The IR drop at each swept value of an IR axis (``configs``: value -> the distinct hardware
    dicts of the points with that value; a range when the other axes change it, e.g. the family's
    g_max)."""
    trained_in_circuit = any(h.get("mode") == "circuit" for hs in configs.values() for h in hs)
    if not _circuit_solved(df) and not trained_in_circuit:
        return ["No point of this study is trained or deployed in `circuit` mode, so wire resistances and tile "
                "sizes do not enter its accuracy (only circuit mode solves the crossbar with its IR drop).", ""]
    from .report import _sort_key, value_md

    parts, g_max, v_read = [], [], []
    for value, hardwares in sorted(configs.items(), key=lambda item: _sort_key(item[0])):
        drops = []
        for hardware in hardwares:
            try:
                drop = ir_drop(hardware)
            except (ValueError, TypeError, KeyError, RuntimeError):
                drop = None
            if drop is not None:
                drops.append(drop)
        if not drops:
            continue
        g_max += [d["g_max"] for d in drops]
        v_read += [d["v_read"] for d in drops]
        tiles = sorted({f"{d['rows']}×{d['cols']}" for d in drops})
        parts.append(f"{value_md(axis, value)} ({', '.join(tiles)}): {_span([d['mean'] for d in drops])} % mean, "
                     f"{_span([d['worst'] for d in drops])} % worst column, "
                     f"{_span([d['mid'] for d in drops])} % at mid-window")
    if not parts:
        return []
    g_text = " / ".join(si(g, "S") for g in sorted(set(g_max)))
    v_text = " / ".join(si(v, "V") for v in sorted(set(v_read)))
    spread = " (ranges: over the configurations of the other axes)" if len(set(g_max)) > 1 else ""
    return [f"IR drop of one tile at these values (exact circuit solve, every row at v_read = {v_text}, every "
            f"device at g_max = {g_text}; loss of column current vs the ideal v·G){spread}: " + "; ".join(parts)
            + ".", ""]


def _ir_configs(df, axis: str, spec, limit: int = 4) -> dict:
    """``{axis value: up to ``limit`` distinct hardware dicts of the done points with that value}``."""
    import json

    if spec is None:
        return {}
    by_key = {p.key: p for p in spec.points}
    done = df[df["status"] == "done"]
    out: dict = {}
    for key, value in zip(done["key"], done[axis]):
        point = by_key.get(key)
        if point is None:
            continue
        hardwares = out.setdefault(value, {})
        text = json.dumps(point.train["hardware"], sort_keys=True)
        if text not in hardwares and len(hardwares) < limit:
            hardwares[text] = point.train["hardware"]
    return {value: list(h.values()) for value, h in out.items()}


def markdown(df, axes, figures, counts, spec) -> str:
    """``report.md`` (module docstring)."""
    from .report import axis_summary, costliest, grouped_summary, metric_columns, name_md, step_plots, value_md

    done = df[df["status"] == "done"]
    seeds = done["seed"].nunique() if len(done) else 0
    lines = [f"# Sweep report: {md(spec.name) if spec else 'study'}", ""]
    if spec is not None and spec.description:
        lines += [md(spec.description, limit=2000), ""]
    lines += [f"Points: {counts['total']} in the spec, {counts['done']} done, {counts['failed']} failed, "
              f"{counts['pending']} pending; {df['train_key'].nunique()} trained model(s). "
              f"Accuracies are test-set accuracies in percent (%), mean ± std over {seeds} seed replicate(s); "
              "differences in percentage points (pp). (`results.csv`/`results.parquet` hold fractions in [0, 1].)",
              ""]
    if len(done):
        lines += [f"Overall: deployed {pct(done['accuracy'].mean())} %, ideal (same weights, no device "
                  f"non-idealities) {pct(done['ideal_accuracy'].mean())} %, mean deployment loss "
                  f"{pct(done['accuracy_drop'].mean())} pp.", ""]
    worst = costliest(df, axes)
    if worst is None:
        lines += ["No hardware or deployment non-ideality axis varies in this study (energy figures, "
                  "`deploy.energy.*`, change costs only), so no non-ideality is ranked.", ""]
    else:
        axis, (hv, hm), (lv, lm), cost = worst
        lines += ["## The non-ideality that costs most", "",
                  f"**{name_md(axis)}** ({md(axis_label(axis))}): mean accuracy {pct(hm)} % at {value_md(axis, hv)} "
                  f"but {pct(lm)} % at {value_md(axis, lv)} (a cost of {pct(cost)} pp over the swept range; other "
                  "axes averaged).", ""]
        lines += _effect_line(df, axis)
    for axis in axes:
        stats = axis_summary(df, axis) if axis != "seed" else []
        if not stats:
            continue
        costs = [c for c in COST_COLUMNS if c in done and done[c].notna().any()]
        lines += [f"## {md(axis_label(axis))} — `{name_md(axis)}`", "",
                  "| value | accuracy (%) | std (pp) | seeds |" + "".join(f" {md(metric_label(c))} |" for c in costs),
                  "|---|---|---|---|" + "---|" * len(costs)]
        for v, m, s, n in stats:
            at = done[done[axis] == v]
            cells = "".join(f" {si(float(at[c].mean()), COST_COLUMNS[c])} |" if at[c].notna().any() else " — |"
                            for c in costs)
            lines.append(f"| {value_md(axis, v)} | {pct(m)} | {pct(s)} | {n} |{cells}")
        lines.append("")
        lines += _effect_line(df, axis)
        if axis in IR_AXES and len(stats) > 1:
            lines += _ir_lines(df, axis, _ir_configs(df, axis, spec))
    for axis, group, facet in step_plots(df, axes):
        deployed = grouped_summary(df, axis, group, facet, "accuracy")
        ideal = grouped_summary(df, axis, group, facet, "ideal_accuracy")
        lines += [f"## Accuracy vs {name_md(axis)} per {name_md(group)}", "",
                  f"| {name_md(facet) if facet else 'all'} | {name_md(group)} | {name_md(axis)} | deployed (%) | "
                  "ideal (%) | loss (pp) | seeds |", "|---|---|---|---|---|---|---|"]
        for (fv, gv), stats in deployed.items():
            ideal_by_value = {s[0]: s for s in ideal.get((fv, gv), [])}
            for v, m, s, n in stats:
                im = ideal_by_value[v][1]
                lines.append(f"| {value_md(facet, fv) if facet else 'all'} | {value_md(group, gv)} | "
                             f"{value_md(axis, v)} | {pct(m)} ± {pct(s)} | {pct(im)} | {pct(im - m)} | {n} |")
        lines.append("")
    for column in metric_columns(df):
        values = done[column].dropna().astype(float)
        corr = done[[column, "accuracy"]].dropna().astype(float).corr().iloc[0, 1]
        relation = (f"Pearson correlation with the deployed accuracy {corr:+.2f}" if corr == corr else
                    "no correlation with the deployed accuracy to compute (one of the two is the same at every "
                    "point)")
        lines += [f"## Accuracy vs {md(metric_label(column))}", "",
                  f"{len(values)} point(s), `{name_md(column)}` from {_metric_value(column, values.min())} to "
                  f"{_metric_value(column, values.max())}; "
                  f"{relation}. "
                  f"Figure: `accuracy_vs_metric_{''.join(c if c.isalnum() else '_' for c in column).strip('_')}.png`.",
                  ""]
    failed = df[df["status"] == "failed"]
    if len(failed):
        lines += ["## Failed points", "", "| key | error |", "|---|---|"]
        lines += [f"| {md(r.key)} | {md(r.error)} |" for r in failed.itertuples()]
        lines.append("")
    lines += [f"![{f}]({f})" for f in figures]
    lines += ["", "Files: `results.csv`, `results.parquet` (one row per point).", ""]
    return "\n".join(lines)
