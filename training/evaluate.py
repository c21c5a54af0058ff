"""Evaluation of deployed networks: accuracy over inference time, time steps and device family.

Deployment is done the way chips are used: the trained weights are programmed **once** per
repeat (:meth:`training.SpikingMLP.deploy` with ``repeat=k``: devices seeded by hashing
``(hardware.seed, layer, tile, repeat k)``, so the repeats are independent draws), then the same
devices are read at every inference time ``t`` (drift, read noise, faults; global drift
compensation if configured). The model stays on its device (CPU or CUDA); the data splits are
moved there batch by batch.
Every row of the returned tables is a plain dict (CSV/JSON-ready)::

    {"family", "repeat", "sweep", "mode", "t", "time_steps", "accuracy",
     "energy_per_inference_J", "latency_per_step_s", "latency_per_inference_s", "spikes_per_inference",
     "energy_array_J", "energy_dac_J", "energy_adc_J", "energy_sense_J", "energy_digital_J", "energy_neuron_J"}

The energy and latency per inference are measured during the same evaluation
(:class:`training.energy.EnergyMeter`: the conductances read at ``t``, the network's spike counts
on the split; ``energy=None`` leaves them out). :func:`deployment_study` works on a copy of the
model: the model it is given (weights, hardware, deployment, random generators) is not changed.

``sweep`` says which study a row belongs to: "time" (accuracy vs inference time at the trained
number of steps), "steps" (vs the number of time steps at one inference time) or "ideal" (no
hardware; ``t = 0`` and the family of the training config). The same (t, T) point can appear in
both sweeps: each is a fresh read of the devices.
"""
from __future__ import annotations

import copy
from pathlib import Path

from devices.validation import check_int
from xbar.energy import EnergyConfig

from .config import RunConfig
from .energy import EnergyMeter
from .hardware import HardwareConfig
from .model import SpikingMLP

#: the default energy figures of deployment studies (:class:`xbar.energy.EnergyConfig`)
DEFAULT_ENERGY = EnergyConfig()


def deployment_hardware(hw: HardwareConfig, family: str | None = None, repeat: int = 0) -> HardwareConfig:
    """``hw`` in deployment mode (``noisy``, straight-through), moved to ``family`` (its default
    preset and window; ``retention_beyond_data`` is kept). The device seed stays ``hw.seed``: deployment repeat ``k`` draws its devices
    from the hashed path ``(seed, layer, tile, repeat k)`` when programmed with
    ``model.deploy(t, repeat=k)``; ``repeat`` here must be 0 (the seed is no longer offset by the
    repeat, which made repeat 1 / tile 0 reuse repeat 0 / tile 1's devices)."""
    if check_int("repeat", repeat, low=0) != 0:
        raise ValueError(f"repeat = {repeat}: the devices of a deployment repeat are chosen by "
                         "model.deploy(t, repeat=...), not by the hardware seed; call deployment_hardware(hw, family)")
    changes = {"mode": "noisy", "backward": "ste"}
    if family is not None and family != hw.family:
        # the other family's defaults, keeping the study-wide policy beyond the retention data
        # (a field every family accepts)
        keep = {k: v for k, v in hw.device_params.items() if k in _CROSS_FAMILY_DEVICE_PARAMS}
        changes.update(family=family, preset=None, device_params=keep, g_min=None, g_max=None)
    return hw.replace(**changes)


#: device parameters that mean the same for every family and follow the weights to another family
_CROSS_FAMILY_DEVICE_PARAMS = ("retention_beyond_data",)


def evaluate(model: SpikingMLP, split, batch_size: int = 1000, time_steps: int | None = None,
             energy: EnergyConfig | EnergyMeter | None = DEFAULT_ENERGY) -> dict:
    """``{"accuracy", energy metrics...}`` of ``model`` on ``split``: the accuracy and, unless
    ``energy`` is None, the energy and latency per inference measured during the same pass
    (:meth:`training.energy.EnergyReport.metrics`). ``energy`` may be an :class:`EnergyMeter` of
    ``model`` to reuse (its tiles' admittances are kept while the conductances stay the same)."""
    from .loop import accuracy

    steps = model.network.time_steps if time_steps is None else int(time_steps)
    if energy is None:
        return {"accuracy": accuracy(model, split, batch_size, time_steps=steps)}
    meter = energy if isinstance(energy, EnergyMeter) else EnergyMeter(model, energy)
    meter.reset()
    with meter:
        acc = accuracy(model, split, batch_size, time_steps=steps)
    return {"accuracy": acc, **meter.report(max(len(split.y), 1), time_steps=steps).metrics()}


def accuracy_vs_time(model: SpikingMLP, split, times, modes=("noisy",), batch_size: int = 1000, *,
                     energy: EnergyConfig | EnergyMeter | None = DEFAULT_ENERGY, bar=None) -> list[dict]:
    """Accuracy (and energy per inference) of the deployed ``model`` at each inference time (s)
    in each mode; ``bar``: a progress bar advanced after each evaluation."""
    rows = []
    for t in times:
        model.set_inference_time(float(t))
        for mode in modes:
            model.set_mode(mode)
            rows.append({"sweep": "time", "mode": mode, "t": float(t), "time_steps": model.network.time_steps,
                         **evaluate(model, split, batch_size, energy=energy)})
            _tick(bar)
    model.set_mode("noisy")
    return rows


def accuracy_vs_steps(model: SpikingMLP, split, time_steps, t: float, modes=("noisy",),
                      batch_size: int = 1000, *, energy: EnergyConfig | EnergyMeter | None = DEFAULT_ENERGY,
                      bar=None) -> list[dict]:
    """Accuracy (and energy per inference) of the deployed ``model`` read at ``t`` s for each
    number of time steps."""
    model.set_inference_time(float(t))
    rows = []
    for mode in modes:
        model.set_mode(mode)
        for steps in time_steps:
            rows.append({"sweep": "steps", "mode": mode, "t": float(t), "time_steps": int(steps),
                         **evaluate(model, split, batch_size, int(steps), energy=energy)})
            _tick(bar)
    model.set_mode("noisy")
    return rows


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


def evaluation_count(config: RunConfig) -> int:
    """Number of accuracy evaluations of :func:`deployment_study` (the progress bar's total)."""
    ev = config.evaluate
    modes = len([m for m in ev.modes if m != "ideal"])
    families = 1 + len([f for f in ev.families if f != config.hardware.family])
    ideal = len(set(ev.time_steps) | {config.network.time_steps})
    return ideal + families * ev.repeats * modes * (len(ev.times) + len(ev.time_steps))


def deployment_study(model: SpikingMLP, config: RunConfig, split, *, progress: bool = False,
                     energy: EnergyConfig | None = DEFAULT_ENERGY) -> list[dict]:
    """Every evaluation of ``config.evaluate`` for the trained ``model`` (module docstring), on a
    copy of ``model`` (the model given is left unchanged); ``progress`` shows a bar over the
    :func:`evaluation_count` evaluations; ``energy``: the energy figures (None: accuracy only)."""
    from tqdm.auto import tqdm

    ev, hw = config.evaluate, config.hardware
    model = copy.deepcopy(model)
    batch = config.data.eval_batch_size
    energy = None if energy is None else EnergyMeter(model, energy)  # one meter: admittances reused across modes
    rows = []
    with tqdm(total=evaluation_count(config), desc=f"{config.name}: deployment", unit="eval",
              disable=not progress, leave=False) as bar:
        model.undeploy()
        model.set_hardware(hw.replace(mode="ideal", backward="ste"))
        for steps in sorted(set(ev.time_steps) | {config.network.time_steps}):
            rows.append({"family": hw.family, "repeat": 0, "sweep": "ideal", "mode": "ideal", "t": 0.0,
                         "time_steps": steps, **evaluate(model, split, batch, steps, energy=energy)})
            bar.update(1)
        hw_modes = [m for m in ev.modes if m != "ideal"]
        for family in (hw.family, *[f for f in ev.families if f != hw.family]):
            for repeat in range(ev.repeats):
                model.set_hardware(deployment_hardware(hw, family))
                model.deploy(0.0, repeat=repeat)
                tag = {"family": family, "repeat": repeat}
                rows += [tag | r for r in accuracy_vs_time(model, split, ev.times, hw_modes, batch, energy=energy,
                                                           bar=bar)]
                rows += [tag | r for r in accuracy_vs_steps(model, split, ev.time_steps, ev.steps_time, hw_modes,
                                                            batch, energy=energy, bar=bar)]
                model.undeploy()
    return rows


def summarise(rows: list[dict], *, mode: str, family: str, t: float | None = None,
              time_steps: int | None = None, sweep: str | None = None) -> tuple[float, float, int]:
    """Mean, standard deviation and count of the accuracies matching the filters."""
    import statistics

    acc = [r["accuracy"] for r in rows if r["mode"] == mode and r["family"] == family
           and (t is None or r["t"] == t) and (time_steps is None or r["time_steps"] == time_steps)
           and (sweep is None or r.get("sweep") == sweep)]
    if not acc:
        return float("nan"), float("nan"), 0
    return statistics.fmean(acc), (statistics.stdev(acc) if len(acc) > 1 else 0.0), len(acc)


def plot_run(history: list[dict], rows: list[dict], out_dir, title: str = "") -> list[Path]:
    """Training curves, accuracy vs inference time and vs time steps as PNGs in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import save_figure

    out_dir = Path(out_dir)
    written = []

    def save(fig, name):
        written.append(save_figure(fig, out_dir / name))

    if history:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
        ep = [h["epoch"] for h in history]
        ax_loss.plot(ep, [h["loss"] for h in history], "o-", ms=3)
        ax_loss.set(xlabel="epoch", ylabel="training loss", title=title)
        ax_acc.plot(ep, [h["train_accuracy"] for h in history], "o-", ms=3, label="train (batches)")
        ax_acc.plot(ep, [h["val_accuracy"] for h in history], "s-", ms=3, label="validation")
        ax_acc.set(xlabel="epoch", ylabel="accuracy")
        ax_acc.legend()
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
        save(fig, "training_curves.png")
    series = sorted({(r["family"], r["mode"]) for r in rows if r["mode"] != "ideal"})
    if series:
        fig, ax = plt.subplots(figsize=(5.8, 3.8))
        for family, mode in series:
            sel = [r for r in rows if r["family"] == family and r["mode"] == mode and r.get("sweep") == "time"]
            times = sorted({r["t"] for r in sel})
            mean = [summarise(rows, mode=mode, family=family, t=t, sweep="time")[0] for t in times]
            ax.semilogx(times, mean, "o-", label=f"{family}, {mode}")
        ideal = [r["accuracy"] for r in rows if r["mode"] == "ideal"]
        if ideal:
            ax.axhline(max(ideal), color="k", ls=":", lw=0.8, label="ideal (no hardware)")
        ax.set(xlabel="inference time after programming t (s)", ylabel="test accuracy",
               title=f"{title}: accuracy vs drift time")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        save(fig, "accuracy_vs_time.png")
        fig, ax = plt.subplots(figsize=(5.8, 3.8))
        for family, mode in [("", "ideal"), *series]:
            sel = [r for r in rows if r["mode"] == mode and (not family or r["family"] == family)
                   and r.get("sweep") in ("ideal", "steps")]
            by_steps = {}
            for r in sel:
                by_steps.setdefault(r["time_steps"], []).append(r)
            steps = sorted(by_steps)
            acc = [sum(r["accuracy"] for r in by_steps[s]) / len(by_steps[s]) for s in steps]
            ax.plot(steps, acc, "o-", label="ideal (no hardware)" if mode == "ideal" else f"{family}, {mode}")
        ax.set(xlabel="time steps T", ylabel="test accuracy", title=f"{title}: accuracy vs time steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "accuracy_vs_time_steps.png")
    return written
