"""Axes of a sweep spec: which names may be swept and which values each one allows.

Axis names are dotted paths into the RunConfig (``data.*``, ``network.*``, ``hardware.*``,
``train.*``; one more level under ``hardware.device_params``, ``hardware.crossbar`` and
``network.neuron_params``), the deployment-only axes ``deploy.t`` (inference time, s),
``deploy.time_steps``, ``deploy.adc_bits`` (int or "none"), ``deploy.mode`` (ideal, noisy,
circuit), ``deploy.family`` (deploy the same weights on another family) and ``deploy.repeat``
(an integer >= 0: program the same weights again with an independent device draw),
``deploy.energy.NAME`` (a field of :class:`xbar.energy.EnergyConfig`: the peripheral energy
figures and read timing of the energy/latency metrics; the network and its accuracy do not
depend on them) and ``seed`` (replicate label). Top-level scalar RunConfig options other than ``name`` and ``seed`` (e.g.
``device``, where the RunConfig has it) are axes too. ``name``, ``hardware.seed`` and
``train.threads`` cannot be swept (:data:`FORBIDDEN` says why).

Size. ``[random] samples`` and ``[study] replicates`` are at most :data:`MAX_POINTS`, checked
before anything is drawn, and the spec's points (the product of every factor) too.

A list axis (``[grid]``, ``[zip]``) holds a non-empty list of values; a ``[random]`` axis holds
one distribution (:data:`DISTRIBUTIONS`): ``{ uniform = [low, high] }``, ``{ log_uniform = [low,
high] }`` (low > 0), ``{ int_uniform = [low, high] }`` (integer bounds, both included) or
``{ choice = [v1, v2, ...] }``.

:func:`axis_factors` turns the ``[grid]``, ``[zip]`` and ``[random]`` tables (and ``[study]
replicates``) into factors, lists of partial assignments ``{axis: value}``;
:mod:`training.sweeps.spec` expands their product into points. The checks here return (or
append to a list) human-readable problems naming the axis and its allowed values; ``spec``
collects them into one :class:`~training.sweeps.spec.SpecError`. The values of RunConfig axes
are validated there, by building the resulting configs.
"""
from __future__ import annotations

import dataclasses
import math

DEPLOY_KEYS = ("t", "time_steps", "adc_bits", "mode", "family", "repeat")
#: most points a spec may expand to (and most [random] samples / replicates)
MAX_POINTS = 10_000
#: largest deploy.repeat
MAX_REPEAT = 1_000_000
DEPLOY_MODES = ("ideal", "noisy", "circuit")
FAMILIES = ("rram", "pcm", "stt_mram", "floating_gate")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
CONFIG_SECTIONS = ("data", "network", "hardware", "train")
NESTED = {("hardware", "device_params"), ("hardware", "crossbar"), ("network", "neuron_params")}
FORBIDDEN = {"name": "the run name is derived from the point's hash",
             "hardware.seed": "the device seed is derived from the point's hash; use the `seed` axis for replicates",
             "train.threads": "workers always train with 1 thread"}


# ---------------------------------------------------------------------------- names
def allowed_fields() -> dict[str, list[str]]:
    """``{section: sorted field names}`` of the RunConfig sections an axis may start with."""
    from training.config import DataConfig, TrainConfig
    from training.conv_model import ConvNetworkConfig
    from training.hardware import HardwareConfig
    from training.model import NetworkConfig

    classes = {"data": (DataConfig,), "network": (NetworkConfig, ConvNetworkConfig), "hardware": (HardwareConfig,),
               "train": (TrainConfig,)}  # [network] is an MLP or (kind = "conv") a convolutional network
    return {name: sorted({f.name for cls in kinds for f in dataclasses.fields(cls) if f.name != "extra"})
            for name, kinds in classes.items()}


def top_level_fields() -> list[str]:
    """Scalar top-level RunConfig options that may be swept (not the sections, ``name``, ``seed``)."""
    from training.config import RunConfig

    skip = set(CONFIG_SECTIONS) | {"evaluate", "name", "seed"}
    return sorted(f.name for f in dataclasses.fields(RunConfig) if f.name not in skip)


def check_axis_name(name: str) -> str | None:
    """None if ``name`` is a valid axis, else the problem (naming the allowed values)."""
    if not isinstance(name, str) or not name:
        return f"axis name {name!r} must be a non-empty string"
    if name == "seed":
        return None
    if name in FORBIDDEN:
        return f"axis {name!r} cannot be swept: {FORBIDDEN[name]}"
    parts = name.split(".")
    head = parts[0]
    if head == "deploy":
        if len(parts) == 3 and parts[1] == "energy":
            if parts[2] not in energy_fields():
                return f"unknown axis {name!r}; allowed deploy.energy.* fields: {energy_fields()}"
            return None
        if len(parts) != 2 or parts[1] not in DEPLOY_KEYS:
            return (f"unknown deployment axis {name!r}; allowed: {['deploy.' + k for k in DEPLOY_KEYS]} "
                    f"and deploy.energy.* {energy_fields()}")
        return None
    if head == "evaluate":
        return f"axis {name!r}: the [evaluate] section is not used by sweeps; use deploy.* axes {list(DEPLOY_KEYS)}"
    if head not in CONFIG_SECTIONS:
        top = top_level_fields()
        if len(parts) == 1 and head in top:
            return None
        return (f"unknown axis {name!r}: must start with one of {list(CONFIG_SECTIONS)} or 'deploy', "
                f"or be 'seed'" + (f" or one of {top}" if top else ""))
    fields = allowed_fields()[head]
    if len(parts) < 2 or parts[1] not in fields:
        return f"unknown axis {name!r}; allowed {head}.* fields: {fields}"
    if (head, parts[1]) in NESTED:
        if len(parts) != 3:
            return f"axis {name!r} must name one entry of {head}.{parts[1]} (e.g. '{head}.{parts[1]}.NAME')"
        if parts[1] == "crossbar":
            from xbar import CrossbarConfig
            allowed = sorted(f.name for f in dataclasses.fields(CrossbarConfig))
            if parts[2] not in allowed:
                return f"unknown axis {name!r}; allowed hardware.crossbar.* fields: {allowed}"
    elif len(parts) != 2:
        return f"axis {name!r}: {head}.{parts[1]} has no sub-keys"
    return None


# ---------------------------------------------------------------------------- values
def energy_fields() -> list[str]:
    """The fields of :class:`xbar.energy.EnergyConfig` (``deploy.energy.*`` axes)."""
    from xbar.energy import EnergyConfig

    return sorted(f.name for f in dataclasses.fields(EnergyConfig))


def energy_problem(values) -> str | None:
    """None if ``values`` (a table of EnergyConfig fields) is valid, else the problem."""
    from xbar.energy import EnergyConfig

    try:
        EnergyConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        return f"deploy.energy: {exc}"
    return None


def check_deploy_value(name: str, value) -> str | None:
    """None if ``value`` is allowed for deployment setting ``name``, else the problem."""
    if name == "energy":
        return energy_problem(value)
    if name.startswith("energy."):
        return energy_problem({name.split(".", 1)[1]: value})
    if name == "t":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        return None if ok else f"deploy.t must be a finite inference time in s >= 0, got {value!r}"
    if name == "time_steps":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else f"deploy.time_steps must be an integer >= 1, got {value!r}"
    if name == "adc_bits":
        ok = (isinstance(value, str) and value.lower() == "none") or \
            (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 32)
        return None if ok else f"deploy.adc_bits must be an integer in [1, 32] or \"none\" (ideal ADC), got {value!r}"
    if name == "mode":
        return None if value in DEPLOY_MODES else f"deploy.mode must be one of {list(DEPLOY_MODES)}, got {value!r}"
    if name == "family":
        return None if value in FAMILIES else f"deploy.family must be one of {list(FAMILIES)}, got {value!r}"
    if name == "repeat":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPEAT
        return None if ok else f"deploy.repeat must be an integer in [0, {MAX_REPEAT}], got {value!r}"
    return f"unknown deployment setting {name!r}; allowed: {list(DEPLOY_KEYS)} and energy"


def check_deploy_table(table, problems: list[str]) -> dict:
    """The valid entries of the fixed ``[deploy]`` table; problems appended for the others."""
    if not isinstance(table, dict):
        problems.append(f"[deploy] must be a table of {list(DEPLOY_KEYS)}, got {table!r}")
        return {}
    out = {}
    for k, v in table.items():
        msg = check_deploy_value(k, v)
        if msg:
            problems.append(f"[deploy] {msg}")
        else:
            out[k] = v
    return out


def check_values(name: str, values, where: str, problems: list[str]) -> list:
    """Values of a list axis; problems appended (non-list, empty, bad deploy/seed values)."""
    if not isinstance(values, list) or not values:
        problems.append(f"{where} axis {name!r} must be a non-empty list of values, got {_short(values)}")
        return []
    if check_axis_name(name) is not None:
        return values  # the name's problem is reported once, by axis_factors
    if name == "seed":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                problems.append(f"{where} axis 'seed' values must be integers >= 0 (replicate labels), got {v!r}")
    elif name.startswith("deploy."):
        for v in values:
            msg = check_deploy_value(name.split(".", 1)[1], v)
            if msg:
                problems.append(f"{where} axis {name!r}: {msg}")
    return values


# ---------------------------------------------------------------------------- distributions
def check_distribution(name: str, dist, problems: list[str]) -> bool:
    """True if ``dist`` is a valid distribution of ``[random]`` axis ``name``; else False and
    the problem appended."""
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        problems.append(f"[random] axis {name!r} must be a table with one of {list(DISTRIBUTIONS)} "
                        f"(e.g. {{ uniform = [0.0, 0.1] }}), got {dist!r}")
        return False
    kind, arg = next(iter(dist.items()))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            problems.append(f"[random] axis {name!r}: choice needs a non-empty list, got {arg!r}")
            return False
        return True
    nums = isinstance(arg, list) and len(arg) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in arg)
    if not nums or not arg[0] <= arg[1]:
        problems.append(f"[random] axis {name!r}: {kind} needs [low, high] with low <= high, got {arg!r}")
        return False
    if kind == "log_uniform" and arg[0] <= 0:
        problems.append(f"[random] axis {name!r}: log_uniform needs low > 0, got {arg!r}")
        return False
    if kind == "int_uniform" and not all(isinstance(a, int) for a in arg):
        problems.append(f"[random] axis {name!r}: int_uniform needs integer bounds, got {arg!r}")
        return False
    return True


def draw(rng, dist: dict):
    """One value of a checked distribution ``dist`` from ``rng`` (a numpy Generator)."""
    kind, arg = next(iter(dist.items()))
    if kind == "uniform":
        return float(rng.uniform(arg[0], arg[1]))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1]))))
    if kind == "int_uniform":
        return int(rng.integers(arg[0], arg[1] + 1))
    return arg[int(rng.integers(len(arg)))]


# ---------------------------------------------------------------------------- axis tables -> factors
def _random_group(table, seed: int, problems: list[str]) -> list[dict]:
    """The ``samples`` draws of the ``[random]`` group (one ``{axis: value}`` each); problems appended."""
    import numpy as np

    if not isinstance(table, dict):
        problems.append(f"[random] must be a table, got {table!r}")
        return []
    samples = table.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_POINTS:
        problems.append(f"[random] samples must be an integer in [1, {MAX_POINTS}] (number of draws; a study holds "
                        f"at most {MAX_POINTS:,} points), got {_short(samples)}")
        return []
    dists = {k: v for k, v in table.items() if k != "samples"}
    if not dists:
        problems.append("[random] has `samples` but no axes")
        return []
    ok = all([check_distribution(k, v, problems) for k, v in dists.items()])
    if not ok:
        return []
    rng = np.random.default_rng(seed)
    draws = [{k: draw(rng, d) for k, d in dists.items()} for _ in range(samples)]
    for name in dists:
        check_values(name, [d[name] for d in draws], "[random]", problems)
    return draws


def _zip_groups(table, problems: list[str]) -> list[list[dict]]:
    """``[zip]`` list entries form one group; ``[zip.NAME]`` sub-tables form one group each."""
    if not isinstance(table, dict):
        problems.append(f"[zip] must be a table, got {table!r}")
        return []
    direct = {k: v for k, v in table.items() if not isinstance(v, dict)}
    named = {f"[zip.{k}]": v for k, v in table.items() if isinstance(v, dict)}
    groups = []
    for where, axes in ([("[zip]", direct)] if direct else []) + list(named.items()):
        if not axes:
            problems.append(f"{where} has no axes")
            continue
        lists = {k: check_values(k, v, where, problems) for k, v in axes.items()}
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            problems.append(f"{where} axes must have equal lengths to be zipped, got {lengths}")
            continue
        n = next(iter(lengths.values()))
        groups.append([{k: lists[k][i] for k in lists} for i in range(n)])
    return groups


def axis_factors(raw: dict, study: dict, problems: list[str]) -> tuple[list[list[dict]], list[str]]:
    """The factors of the ``[grid]``, ``[zip]`` and ``[random]`` tables and of ``[study]
    replicates`` (each a list of partial assignments ``{axis: value}``; a point takes one from
    every factor) and the valid axis names in order; problems appended."""
    factors: list[list[dict]] = []
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        problems.append(f"[grid] must be a table of axis = [values], got {grid!r}")
        grid = {}
    for name, values in grid.items():
        factors.append([{name: v} for v in check_values(name, values, "[grid]", problems)])
    if "zip" in raw:
        factors += _zip_groups(raw["zip"], problems)
    if "random" in raw:
        group = _random_group(raw["random"], study.get("seed", 0), problems)
        if group:
            factors.append(group)
    names = [n for f in factors if f for n in f[0]]
    replicates = study.get("replicates")
    if replicates is not None:
        if "seed" in names:
            problems.append("give replicates either as [study] replicates or as a `seed` axis, not both")
        elif replicates > MAX_POINTS:
            problems.append(f"[study] replicates must be at most {MAX_POINTS:,} (a study holds at most "
                            f"{MAX_POINTS:,} points), got {replicates:,}")
        else:
            factors.append([{"seed": r} for r in range(replicates)])
            names.append("seed")
    seen, bad = set(), set()
    for n in names:
        if n in seen:
            problems.append(f"axis {n!r} appears more than once (grid, zip and random axes must be distinct)")
        seen.add(n)
        msg = check_axis_name(n)
        if msg:
            problems.append(msg)
            bad.add(n)
    factors = [[{k: v for k, v in part.items() if k not in bad} for part in f] for f in factors]
    return factors, [n for n in names if n not in bad]


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (hostile specs hold huge values)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
