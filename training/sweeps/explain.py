"""Why an axis costs what it costs: the significance of an accuracy difference and the physical
size of a non-ideality at the swept value (for the report's per-axis sections).

* :func:`axis_effect` — best minus worst mean accuracy over an axis's values with a 95 %
  confidence interval over the seed replicates (Welch's t interval on the per-seed means); a
  difference whose interval contains 0 is not significant: the axis "costs nothing" that this
  study can measure.
* :func:`ir_drop` — the relative IR drop of one crossbar tile of a hardware config, from the exact
  circuit solver (:class:`xbar.Crossbar`): every row driven at ``v_read``, every device at
  ``g_max`` (the worst case) or at the middle of the conductance window; the loss of column
  current against the ideal ``v @ G``. The report prints it for wire-resistance and tile-size
  axes next to the accuracy difference and its confidence interval, so a reader sees whether an
  axis that "costs nothing" had a small physical effect, or a large one the network tolerates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: axes whose values change the tile's IR drop
IR_AXES = ("hardware.crossbar.r_row", "hardware.crossbar.r_col", "hardware.crossbar.r_source",
           "hardware.crossbar.r_sense", "hardware.tile_rows", "hardware.tile_cols")
#: tiles larger than this (devices) are not solved for an explanation (time)
MAX_EXPLAIN_DEVICES = 256 * 256

__all__ = ["Effect", "axis_effect", "ir_drop", "IR_AXES"]


@dataclass(frozen=True)
class Effect:
    """``best``/``worst`` axis values, ``delta`` (fraction of accuracy, best - worst mean),
    ``ci`` (95 % interval of delta or None with fewer than 2 seeds on a side), seed counts."""

    best: object
    worst: object
    delta: float
    ci: tuple | None
    n_best: int
    n_worst: int

    @property
    def significant(self) -> bool | None:
        """Whether the 95 % interval excludes 0 (None without an interval)."""
        return None if self.ci is None else not (self.ci[0] <= 0.0 <= self.ci[1])


def _welch(a: list[float], b: list[float]) -> tuple[float, float] | None:
    """95 % Welch t interval of mean(a) - mean(b), None if a side has fewer than 2 values."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se2 = va / len(a) + vb / len(b)
    if se2 == 0:
        return (ma - mb, ma - mb)
    dof = se2 ** 2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof)) * math.sqrt(se2)
    return (ma - mb - half, ma - mb + half)


def axis_effect(df, axis: str, metric: str = "accuracy") -> Effect | None:
    """The :class:`Effect` of ``axis`` on ``metric`` over the done rows of ``df`` (the report
    table): per value, the mean over the other axes per seed; best and worst value by the mean
    over seeds. None with fewer than two values."""
    done = df[df["status"] == "done"]
    if axis not in done or done[axis].nunique() < 2:
        return None
    per_value = {}
    for value, sub in done.groupby(axis, sort=False):
        seeds = sub.groupby("seed")[metric].mean() if axis != "seed" else sub[metric]
        per_value[value] = [float(x) for x in seeds]
    means = {v: sum(x) / len(x) for v, x in per_value.items()}
    best = max(means, key=means.get)
    worst = min(means, key=means.get)
    return Effect(best, worst, means[best] - means[worst], _welch(per_value[best], per_value[worst]),
                  len(per_value[best]), len(per_value[worst]))


def ir_drop(hardware: dict) -> dict | None:
    """Relative IR drop of one tile of the hardware config ``hardware`` (a HardwareConfig dict;
    module docstring): ``{"worst", "mean", "mid", "rows", "cols", "g_max", "g_mid", "v_read"}``
    — the loss of column current at the worst column and mean over the columns with every
    device at ``g_max``, and the mean with every device at the middle of the window (a typical
    programmed state); None if the tile is too large to solve quickly."""
    import torch

    from training.hardware import HardwareConfig
    from xbar import Crossbar

    hw = HardwareConfig.from_dict(hardware)
    rows, cols = hw.tile_rows, hw.tile_cols
    if rows * cols > MAX_EXPLAIN_DEVICES:
        return None
    g_min, g_max = hw.window()
    v = torch.full((1, rows), float(hw.v_read), dtype=torch.float64)
    out = {"rows": rows, "cols": cols, "g_max": g_max, "g_mid": 0.5 * (g_min + g_max), "v_read": float(hw.v_read)}
    for name, level in (("max", g_max), ("mid", out["g_mid"])):
        g = torch.full((rows, cols), level, dtype=torch.float64)
        loss = 1.0 - Crossbar(g, config=hw.crossbar_config()).solve(v)[0] / (v @ g)[0]
        if name == "max":
            out["worst"], out["mean"] = float(loss.max()), float(loss.mean())
        else:
            out["mid"] = float(loss.mean())
    return out
