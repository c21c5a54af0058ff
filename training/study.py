"""The main job: a small end-to-end hardware-aware training study on the embedded default.

``xbar study --out results`` (``make report``) trains three Yin-Yang LIF SNNs on 128x128-cell
crossbar tiles (1 Ohm wire segments, 1 Ohm driver and sense resistances, 8-bit DAC/ADC):

* ``baseline``  — trained without hardware awareness (``mode = "ideal"``);
* ``hwa_pcm``   — hardware-aware: PCM programming/read noise and faults injected in training;
* ``hwa_rram``  — hardware-aware on RRAM.

Each is deployed (programmed once, ``repeats`` device seeds) on its device family — the
baseline on both PCM and RRAM — and evaluated in ``noisy`` (device conductances) and
``circuit`` (exact IR drop and sneak paths) modes at 1 s, 1 h, 1 day, 1 month and 1 year after
programming and over 5-40 time steps at 1 day. RRAM's retention data (Wan et al. 2022) end
2 days after programming; the study reads later with ``retention_beyond_data = "extend"`` (the
spread keeps growing in log t at the data's rate; :mod:`devices.rram`), a choice carried by every
run's ``device_params`` and recorded in its results. Every run lives in its own resumable directory
(``OUT/study/<name>``); the comparison plots and ``report.md`` go to ``OUT/study``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from .config import DEFAULT_TIMES, RunConfig
from .evaluate import summarise
from .loop import _write_json, run
from .report import atomic_write_bytes, save_figure

TIME_LABELS = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "1 month", 31536000.0: "1 year"}


def study_configs(quick: bool = False) -> dict[str, RunConfig]:
    """The three runs of the study (``quick``: 2 epochs, 1 device seed — a smoke test)."""
    evaluate = {"modes": ["noisy", "circuit"], "times": list(DEFAULT_TIMES), "time_steps": [5, 10, 20, 40],
                "steps_time": 86400.0, "repeats": 1 if quick else 3}
    # one torch thread: these small networks gain nothing from a second one, and idle OpenMP
    # threads spin-waiting between the many small ops slow a busy machine down badly
    base = {"seed": 0, "train": {"epochs": 2 if quick else 30, "lr": 1e-2, "threads": 1},
            "data": {"dataset": "yin_yang", "batch_size": 50}}
    retention = {"retention_beyond_data": "extend"}  # every family accepts it; only RRAM's data end at 2 days
    runs = {
        "baseline": {"hardware": {"mode": "ideal", "family": "pcm", "device_params": retention},
                     "evaluate": evaluate | {"families": ["rram"]}},
        "hwa_pcm": {"hardware": {"mode": "noisy", "family": "pcm", "device_params": retention}, "evaluate": evaluate},
        "hwa_rram": {"hardware": {"mode": "noisy", "family": "rram", "device_params": retention},
                     "evaluate": evaluate},
    }
    return {name: RunConfig.from_dict(base | {"name": name} | spec) for name, spec in runs.items()}


def run_study(out_dir, *, quick: bool = False, progress: bool = True) -> Path:
    """Run (or resume) the study under ``out_dir/study``; returns the path of ``report.md``."""
    root = Path(out_dir) / "study"
    t0 = time.perf_counter()
    results = {}
    for name, cfg in study_configs(quick).items():
        results[name] = run(cfg, root / name, resume=True, progress=progress)
    elapsed = time.perf_counter() - t0
    summary = _summary(results)
    _write_json(root / "summary.json", summary | {"elapsed_s": elapsed, "quick": quick})
    figures = _plots(results, root)
    report = root / "report.md"
    atomic_write_bytes(report, _markdown(results, summary, figures, elapsed, quick).encode())
    return report


def _summary(results: dict) -> dict:
    """Mean/std accuracy per (run, family, mode, time) at the trained number of time steps."""
    out = {}
    for name, res in results.items():
        rows, steps = res["evaluation"], res["config"]["network"]["time_steps"]
        ideal = [r["accuracy"] for r in rows if r["mode"] == "ideal" and r["time_steps"] == steps]
        entry = {"ideal": ideal[0] if ideal else math.nan, "deployed": {}}
        for family in sorted({r["family"] for r in rows if r["mode"] != "ideal"}):
            for mode in ("noisy", "circuit"):
                for t in DEFAULT_TIMES:
                    mean, std, n = summarise(rows, mode=mode, family=family, t=t, sweep="time")
                    if n:
                        entry["deployed"][f"{family}/{mode}/{t:g}"] = {"mean": mean, "std": std, "n": n}
        out[name] = entry
    return out


def _plots(results: dict, root: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []

    def save(fig, name):
        save_figure(fig, root / name)
        names.append(name)

    pairs = {"pcm": ("baseline", "hwa_pcm"), "rram": ("baseline", "hwa_rram")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
    for ax, (family, runs) in zip(axes, pairs.items()):
        for name, style in zip(runs, ("o--", "s-")):
            rows = results[name]["evaluation"]
            for mode, color in (("noisy", "C0"), ("circuit", "C3")):
                stats = [summarise(rows, mode=mode, family=family, t=t, sweep="time") for t in DEFAULT_TIMES]
                mean = [s[0] for s in stats]
                std = [s[1] for s in stats]
                ax.errorbar(DEFAULT_TIMES, mean, yerr=std, fmt=style, color=color, capsize=2,
                            label=f"{name}, {mode}")
        ax.set_xscale("log")
        ax.set(xlabel="time after programming t (s)", title=f"Yin-Yang on {family.upper()} crossbars")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy (mean ± std over device seeds)")
    save(fig, "accuracy_vs_time.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
    for ax, (family, runs) in zip(axes, pairs.items()):
        for name, style in zip(runs, ("o--", "s-")):
            rows = results[name]["evaluation"]
            t_steps = results[name]["config"]["evaluate"]["steps_time"]
            sweep = sorted({r["time_steps"] for r in rows if r.get("sweep") == "steps" and r["family"] == family})
            for mode in ("ideal", "circuit"):
                fam = results[name]["config"]["hardware"]["family"] if mode == "ideal" else family
                acc = [summarise(rows, mode=mode, family=fam, t=None if mode == "ideal" else t_steps,
                                 time_steps=s, sweep="ideal" if mode == "ideal" else "steps")[0] for s in sweep]
                ax.plot(sweep, acc, style, label=f"{name}, {mode}")
        ax.set(xlabel="time steps T", title=f"{family.upper()}: accuracy vs time steps (t = 1 day)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy")
    save(fig, "accuracy_vs_time_steps.png")
    return names


def _markdown(results: dict, summary: dict, figures: list[str], elapsed: float, quick: bool) -> str:
    cfg = results["baseline"]["config"]
    hw, net = cfg["hardware"], cfg["network"]
    lines = ["# memxbar study: hardware-aware training of a Yin-Yang SNN on memristive crossbars", ""]
    if quick:
        lines += ["**Quick smoke run (2 epochs, 1 device seed): numbers are not meaningful.**", ""]
    lines += [f"Network: 4-{'-'.join(map(str, net['hidden']))}-3 LIF SNN, {net['time_steps']} steps of "
              f"{net['dt'] * 1e3:g} ms, direct encoding, leaky-integrator readout ({net['readout']}). "
              f"Tiles {hw['tile_rows']}x{hw['tile_cols']} cells, differential pairs, "
              f"{hw['dac_bits']}-bit DAC / {hw['adc_bits']}-bit ADC, wires and terminals per "
              f"xbar.CrossbarConfig defaults (1 Ohm), {cfg['train']['epochs']} epochs "
              f"(Adam, lr {cfg['train']['lr']:g}, cosine). Test set: 1000 Yin-Yang samples (seed 40).", "",
              "## Accuracy of the deployed networks (test set, mean ± std over device seeds)", "",
              "| run | ideal | family | mode | " + " | ".join(TIME_LABELS[t] for t in DEFAULT_TIMES) + " |",
              "|---|---|---|---|" + "---|" * len(DEFAULT_TIMES)]
    for name, entry in summary.items():
        families = sorted({k.split("/")[0] for k in entry["deployed"]})
        for family in families:
            for mode in ("noisy", "circuit"):
                cells = []
                for t in DEFAULT_TIMES:
                    s = entry["deployed"].get(f"{family}/{mode}/{t:g}")
                    cells.append(f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}" if s else "—")
                lines.append(f"| {name} | {100 * entry['ideal']:.1f} | {family} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "`noisy`: programmed device conductances (programming noise, read noise, drift with global drift "
              "compensation, stuck-at faults) in an ideal matmul; `circuit`: the same devices in the exact crossbar "
              "circuit (IR drop, sneak paths).", ""]
    lines += [f"![{f}]({f})" for f in figures]
    lines += ["", f"Per-run details (training curves, CSVs, plots): `baseline/`, `hwa_pcm/`, `hwa_rram/`. "
              f"Total time {elapsed:.0f} s (runs resume from their checkpoints).", ""]
    return "\n".join(lines)
