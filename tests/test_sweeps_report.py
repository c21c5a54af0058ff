"""Sweep reports (issues 15 and 16): Parquet of mixed axes, units and human times, the
explanation of an axis that costs nothing (confidence interval, IR drop), metric columns, and
escaping of database text. The studies here are written straight into a store with chosen
metrics (no training), so each test takes a second or two.
"""
import dataclasses
import math

import pandas as pd
import pytest
from scipy import stats

from training.sweeps import Store, load_spec, report, table
from training.sweeps import plots
from training.sweeps.explain import axis_effect, ir_drop
from training.sweeps.units import format_value, human_duration, md, si

BASE = """
[study]
name = "fake"
replicates = 3

[base]
network = { hidden = [8], time_steps = 5 }
hardware = { mode = "noisy", family = "pcm", tile_rows = 32, tile_cols = 32 }
train = { epochs = 1 }

[deploy]
mode = "circuit"
"""


def fake_study(out, grid: str, accuracy, *, extra=None, failed=None, axes_override=None):
    """Write a study of ``BASE`` + ``grid`` whose points have ``accuracy(point)`` (fraction),
    ``extra(point)`` more metrics, and failed rows for ``failed(point)`` -> error text or None."""
    spec = load_spec(BASE + "\n[grid]\n" + grid)
    with Store(out) as store:
        store.set_meta("spec_text", spec.source)
        for p in spec.points:
            error = failed(p) if failed else None
            if axes_override:
                p = dataclasses.replace(p, axes=axes_override(p))
            if error is not None:
                store.record_point(p, status="failed", error=error, versions={})
                continue
            acc = accuracy(p)
            metrics = {"accuracy": acc, "ideal_accuracy": min(1.0, acc + 0.01), "accuracy_drop": 0.01,
                       "train_val_accuracy": 0.9, "train_loss": 0.3} | (extra(p) if extra else {})
            store.record_point(p, status="done", metrics=metrics, timings={"eval_s": 0.1, "train_s": 2.0}, versions={})
    return spec


def noise(p, scale=0.004) -> float:
    """A small deterministic spread per seed replicate (fraction)."""
    return scale * (p.axes["seed"] - 1)


def test_mixed_integer_and_none_axis_writes_parquet(tmp_path):
    """`deploy.adc_bits = [8, "none"]` (documented values): the Parquet file is written and
    equals the table (before: ArrowTypeError on the mixed column, only the CSV written)."""
    fake_study(tmp_path, '"deploy.adc_bits" = [8, "none", 4]', lambda p: 0.8 + noise(p))
    md_path = report(tmp_path)
    df = pd.read_parquet(tmp_path / "report" / "results.parquet")
    assert df.equals(table(tmp_path)[0])
    assert set(df["deploy.adc_bits"]) == {"8", "none", "4"} and set(df["deploy_adc_bits"]) == {"8", "none", "4"}
    text = md_path.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 4 bits") or line.startswith("| 8 bits")
            or line.startswith("| ideal (none)")]
    assert [r.split(" |")[0] for r in rows] == ["| 4 bits", "| 8 bits", "| ideal (none)"]  # numeric order, then text


def test_units_human_times_and_percent_everywhere(tmp_path, monkeypatch):
    fake_study(tmp_path, '"deploy.t" = [1.0, 86400.0, 31536000.0]\n"hardware.crossbar.r_row" = [1.0, 30.0]',
               lambda p: 0.9 - 0.05 * (p.deploy["t"] > 1e6) + noise(p))
    figures = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.__setitem__(path.name, fig))
    text = report(tmp_path).read_text()
    for cell in ("| 1 s |", "| 1 day |", "| 1 year |", "| 1 Ω |", "| 30 Ω |"):
        assert cell in text, cell
    assert "86400" not in text and "31536000" not in text
    assert "## time after programming — `deploy.t`" in text
    assert "## row-wire resistance r\\_row (Ω per segment) — `hardware.crossbar.r_row`" in text
    fig = figures["accuracy_vs_deploy_t.png"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 s", "1 day", "1 year"]
    assert "%" in ax.get_ylabel() and ax.get_xlabel() == "time after programming"
    ys = ax.lines[0].get_ydata()
    assert 80 < min(ys) <= max(ys) < 95  # percent, not fractions
    heat = figures["heatmap_deploy_t__hardware_crossbar_r_row.png"]
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["1 s", "1 day", "1 year"]
    assert "(%)" in heat.axes[1].get_ylabel()  # colour bar


def test_axis_that_costs_nothing_says_why(tmp_path):
    """r_row = 30 Ω on 32x32 tiles with no accuracy change: the report shows the difference
    with its 95 % CI (not significant) and the tile's IR drop at each swept value."""
    spec = fake_study(tmp_path, '"hardware.crossbar.r_row" = [1.0, 30.0]\n"hardware.family" = ["pcm", "rram"]',
                      lambda p: (0.9 if p.axes["hardware.family"] == "pcm" else 0.6) + noise(p, 0.01)
                      - 0.002 * (p.axes["hardware.crossbar.r_row"] > 1))
    text = report(tmp_path).read_text()
    section = text.split("— `hardware.crossbar.r_row`", 1)[1].split("\n## ", 1)[0]
    assert "**not significant**" in section and "within the seed-to-seed spread" in section
    drops = {(v, f): ir_drop(next(p.train["hardware"] for p in spec.points if p.axes["hardware.crossbar.r_row"] == v
                                  and p.axes["hardware.family"] == f)) for v in (1.0, 30.0) for f in ("pcm", "rram")}
    assert drops[1.0, "pcm"]["mean"] < drops[30.0, "pcm"]["mean"] < drops[30.0, "rram"]["mean"]  # rram: higher g_max
    low, high = (f"{100 * drops[30.0, f]['mean']:.2g}" for f in ("pcm", "rram"))
    assert f"30 Ω (32×32): {low}–{high} % mean" in section
    assert f"every device at g_max = 25 µS / {si(drops[1.0, 'rram']['g_max'], 'S')}" in section
    family = text.split("— `hardware.family`", 1)[1].split("\n## ", 1)[0]
    assert ": significant." in family and "Best − worst: 30.0 pp (pcm vs rram)" in family


def test_narrow_interval_says_the_axis_costs_nothing(tmp_path):
    """With little seed-to-seed spread the interval is narrow: the report rules out any cost
    above its bound and says the axis costs nothing measurable."""
    fake_study(tmp_path, '"hardware.crossbar.r_row" = [1.0, 30.0]',
               lambda p: 0.9 + noise(p, 0.001) - 0.0005 * (p.axes["hardware.crossbar.r_row"] > 1))
    section = report(tmp_path).read_text().split("— `hardware.crossbar.r_row`", 1)[1].split("\n## ", 1)[0]
    assert "**not significant**, and any real difference is below" in section
    assert "this axis costs nothing this study can measure" in section


def test_ir_drop_vanishes_without_wire_resistance_and_grows_with_it():
    """Physics of the explanation: ideal wires and terminals give exactly v @ G; the loss grows
    with r_row and with the tile size."""
    ideal = {"family": "pcm", "tile_rows": 16, "tile_cols": 16,
             "crossbar": {"r_row": 0.0, "r_col": 0.0, "r_source": 0.0, "r_sense": 0.0}}
    assert abs(ir_drop(ideal)["mean"]) < 1e-12 and abs(ir_drop(ideal)["worst"]) < 1e-12
    losses = [ir_drop(ideal | {"crossbar": ideal["crossbar"] | {"r_row": r}})["mean"] for r in (1.0, 10.0, 30.0)]
    assert 0 < losses[0] < losses[1] < losses[2] < 1
    big = ir_drop(ideal | {"tile_rows": 64, "tile_cols": 64, "crossbar": ideal["crossbar"] | {"r_row": 10.0}})
    assert big["mean"] > losses[1]


def test_effect_interval_is_welchs():
    """The report's 95 % interval equals scipy's Welch t interval of the per-seed means."""
    rows = []
    best, worst = [0.91, 0.93, 0.90, 0.94], [0.85, 0.88, 0.84]
    for value, accs in (("a", best), ("b", worst)):
        rows += [{"status": "done", "x": value, "seed": i, "accuracy": acc} for i, acc in enumerate(accs)]
    effect = axis_effect(pd.DataFrame(rows), "x")
    ref = stats.ttest_ind(best, worst, equal_var=False).confidence_interval(0.95)
    assert effect.best == "a" and effect.worst == "b" and effect.significant
    assert effect.delta == pytest.approx(sum(best) / 4 - sum(worst) / 3)
    assert effect.ci == pytest.approx((ref.low, ref.high), rel=1e-9)


def test_accuracy_against_a_metric_column(tmp_path):
    """A numeric metric beyond the accuracies (e.g. energy per inference, J) becomes a column,
    a plot of accuracy against it and a report section."""
    fake_study(tmp_path, '"hardware.crossbar.r_row" = [1.0, 30.0]',
               lambda p: 0.9 + noise(p),
               extra=lambda p: {"energy_per_inference_J": 1e-9 * p.axes["hardware.crossbar.r_row"]})
    df, _ = table(tmp_path)
    assert sorted(set(df["energy_per_inference_J"])) == [1e-9, 1e-9 * 30.0]
    text = report(tmp_path).read_text()
    assert (tmp_path / "report" / "accuracy_vs_metric_energy_per_inference_J.png").is_file()
    assert "## Accuracy vs energy per inference (J)" in text


def test_database_text_cannot_inject_markdown_or_html(tmp_path):
    """Study name, description, axis values and error messages come from the database and are
    escaped in report.md."""
    evil = '<img src=x onerror=alert(1)> [click](javascript:alert(1)) ![i](http://e/x.png) | `code` **b**'
    spec_text = BASE.replace('name = "fake"', 'name = "<script>x<script>"\ndescription = ' + repr(evil).replace(
        "'", '"'))
    spec = load_spec(spec_text + '\n[grid]\n"hardware.family" = ["pcm", "rram"]')
    with Store(tmp_path) as store:
        store.set_meta("spec_text", spec.source)
        for i, p in enumerate(spec.points):
            if p.axes["hardware.family"] == "rram" and p.axes["seed"] == 0:
                store.record_point(p, status="failed", error="Traceback\nRuntimeError: " + evil, versions={})
            else:
                q = dataclasses.replace(p, axes=p.axes | {"hardware.family": evil if i % 2 else "pcm"})
                store.record_point(q, status="done", metrics={"accuracy": 0.5, "ideal_accuracy": 0.5,
                                                              "accuracy_drop": 0.0}, versions={})
    text = report(tmp_path).read_text()
    assert "<img" not in text and "<script" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "\\[click\\](javascript" in text
    failed = text.split("## Failed points", 1)[1]
    assert "RuntimeError: &lt;img" in failed and "\\| \\`code\\`" in failed
    assert text.count("onerror") == text.count(md(evil)) >= 3  # every copy is the escaped one


def test_formatting_helpers():
    assert [human_duration(s) for s in (0, 1.0, 90.0, 3600.0, 86400.0, 2 * 86400.0, 31536000.0)] == \
        ["0 s", "1 s", "1.5 min", "1 h", "1 day", "2 days", "1 year"]
    assert si(2.5e-5, "S") == "25 µS" and si(30.0, "Ω") == "30 Ω" and si(0.2, "V") == "200 mV"
    assert format_value("deploy.adc_bits", "none") == "ideal (none)"
    assert format_value("deploy.adc_bits", "6") == "6 bits"
    assert format_value("hardware.crossbar.r_row", 1.5e3) == "1.5 kΩ"
    assert format_value("hardware.family", "pcm") == "pcm" and format_value("train.lr", 0.01) == "0.01"
    assert md("a|b\n<c>") == "a\\|b &lt;c&gt;" and not math.isnan(len(md("x" * 1000)))
    assert len(md("x" * 1000)) == 300
