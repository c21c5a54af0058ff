r"""Sweep specs: a TOML file that expands into points (training config + deployment settings).

A spec::

    [study]
    name = "quick"          # label of the study
    seed = 0                # seeds the random axes (nothing else)
    replicates = 2          # shorthand for the axis  seed = [0, 1]

    [base]                  # a RunConfig table, exactly as `xbar train --config` reads it
    network = { hidden = [16], time_steps = 10 }
    hardware = { mode = "noisy", family = "pcm" }
    train = { epochs = 3 }

    [deploy]                # fixed deployment settings (defaults below)
    mode = "circuit"

    [grid]                  # full factorial: every combination
    "hardware.family" = ["pcm", "rram"]
    "deploy.t" = [1.0, 3600.0, 86400.0]

    [zip]                   # varied together (equal lengths); [zip.NAME] for several groups
    "hardware.crossbar.r_row" = [0.5, 2.0]
    "hardware.crossbar.r_col" = [0.5, 2.0]

    [random]                # `samples` draws (numpy default_rng(study.seed)), one zipped group
    samples = 4
    "hardware.device_params.d2d_sigma" = { uniform = [0.0, 0.2] }   # or log_uniform, int_uniform, choice

Axis names are dotted paths into the RunConfig (``data.*``, ``network.*``, ``hardware.*``,
``train.*``; one more level under ``hardware.device_params``, ``hardware.crossbar`` and
``network.neuron_params``), the deployment-only axes ``deploy.t`` (inference time, s),
``deploy.time_steps``, ``deploy.adc_bits`` (int or "none"), ``deploy.mode`` (ideal, noisy,
circuit) and ``deploy.family`` (deploy the same weights on another family), and ``seed``
(replicate label). Deployment defaults: ``t = 1.0`` s, the trained ``time_steps`` and
``adc_bits``, ``mode = "noisy"``, the trained family.

Seeds and hashes. The *training config* of a point is ``base`` with the non-deploy axes applied,
``seed`` set to the replicate label, ``hardware.seed = 0``, ``train.threads = 1`` and the unused
``evaluate`` section at its defaults; ``train_key`` is the SHA-256 of its canonical JSON (sorted
keys, integral floats written as integers, so ``1`` and ``1.0`` agree). The run seed
(``RunConfig.seed``) and the device seed (``hardware.seed``) are derived from ``train_key``, so a
point's results depend only on its resolved configuration, never on order or worker count; the
deployment points of one trained model share its programmed chip (the same devices, as one
chip read at several times). ``key`` (the point) hashes ``train_key`` with the resolved
deployment settings.

:func:`load_spec` validates everything before anything runs and raises :class:`SpecError`
listing *all* problems (unknown keys, bad values, invalid resulting configs) with the key and
its allowed values.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SPEC_KEYS = ("study", "base", "deploy", "grid", "zip", "random")
STUDY_KEYS = ("name", "seed", "replicates", "description")
DEPLOY_KEYS = ("t", "time_steps", "adc_bits", "mode", "family")
DEPLOY_MODES = ("ideal", "noisy", "circuit")
FAMILIES = ("rram", "pcm", "stt_mram", "floating_gate")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
CONFIG_SECTIONS = ("data", "network", "hardware", "train")
NESTED = {("hardware", "device_params"), ("hardware", "crossbar"), ("network", "neuron_params")}
FORBIDDEN = {"name": "the run name is derived from the point's hash",
             "hardware.seed": "the device seed is derived from the point's hash; use the `seed` axis for replicates",
             "train.threads": "workers always train with 1 thread"}
DEFAULT_T = 1.0


class SpecError(ValueError):
    """A spec with problems; ``problems`` lists every one of them."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"sweep spec {source} has {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class Point:
    """One point of a study: resolved training config (``train``, a RunConfig dict with derived
    seeds), resolved deployment settings (``deploy``), the axis values that made it (``axes``)
    and its hashes ``key`` (the point) and ``train_key`` (the shared trained model)."""

    key: str
    train_key: str
    axes: dict
    train: dict
    deploy: dict


@dataclass(frozen=True)
class Spec:
    """A validated spec: ``name``, ``seed``, ``base`` (RunConfig dict), ``deploy`` (fixed
    deployment settings), ``axes`` (names in order), the expanded ``points`` and the ``source``
    TOML text."""

    name: str
    seed: int
    base: dict
    deploy: dict
    axes: tuple
    points: tuple
    source: str = ""
    description: str = ""
    trainings: int = field(default=0)

    def by_train_key(self) -> dict[str, list[Point]]:
        """Points grouped by their trained model (insertion order)."""
        groups: dict[str, list[Point]] = {}
        for p in self.points:
            groups.setdefault(p.train_key, []).append(p)
        return groups


# ---------------------------------------------------------------------------- hashing
def canonical(obj) -> str:
    """Canonical JSON: sorted keys, tuples as lists, integral floats as integers."""
    def norm(v):
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 2 ** 53:
            return int(v)
        return v
    return json.dumps(norm(obj), sort_keys=True, separators=(",", ":"))


def digest(obj, n: int = 16) -> str:
    """First ``n`` hex digits of the SHA-256 of ``canonical(obj)``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


def derived_seed(train_key: str, purpose: str, bits: int = 31) -> int:
    """A seed in ``[0, 2**bits)`` derived from a training-config hash and a purpose label."""
    return int(hashlib.sha256(f"{purpose}:{train_key}".encode()).hexdigest()[:16], 16) % (2 ** bits)


# ---------------------------------------------------------------------------- axes
def _allowed_fields() -> dict[str, list[str]]:
    from training.config import DataConfig, TrainConfig
    from training.hardware import HardwareConfig
    from training.model import NetworkConfig

    classes = {"data": DataConfig, "network": NetworkConfig, "hardware": HardwareConfig, "train": TrainConfig}
    return {name: sorted(f.name for f in dataclasses.fields(cls) if f.name != "extra")
            for name, cls in classes.items()}


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
        if len(parts) != 2 or parts[1] not in DEPLOY_KEYS:
            return f"unknown deployment axis {name!r}; allowed: {['deploy.' + k for k in DEPLOY_KEYS]}"
        return None
    if head == "evaluate":
        return f"axis {name!r}: the [evaluate] section is not used by sweeps; use deploy.* axes {list(DEPLOY_KEYS)}"
    if head not in CONFIG_SECTIONS:
        return (f"unknown axis {name!r}: must start with one of {list(CONFIG_SECTIONS)} or 'deploy', "
                f"or be 'seed'")
    fields = _allowed_fields()[head]
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


def set_path(config: dict, path: str, value) -> None:
    """Set a dotted ``path`` in a nested dict, creating (copies of) tables on the way."""
    parts = path.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value


def _check_deploy_value(name: str, value) -> str | None:
    """None if ``value`` is allowed for deployment setting ``name``, else the problem."""
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
    return f"unknown deployment setting {name!r}; allowed: {list(DEPLOY_KEYS)}"


def _check_values(name: str, values, where: str, problems: list[str]) -> list:
    """Values of a list axis; problems appended (non-list, empty, bad deploy/seed values)."""
    if not isinstance(values, list) or not values:
        problems.append(f"{where} axis {name!r} must be a non-empty list of values, got {values!r}")
        return []
    if name == "seed":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                problems.append(f"{where} axis 'seed' values must be integers >= 0 (replicate labels), got {v!r}")
    elif name.startswith("deploy."):
        for v in values:
            msg = _check_deploy_value(name.split(".", 1)[1], v)
            if msg:
                problems.append(f"{where} axis {name!r}: {msg}")
    return values


# ---------------------------------------------------------------------------- random axes
def _check_distribution(name: str, dist, problems: list[str]) -> bool:
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


def _draw(rng, dist: dict):
    kind, arg = next(iter(dist.items()))
    if kind == "uniform":
        return float(rng.uniform(arg[0], arg[1]))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1]))))
    if kind == "int_uniform":
        return int(rng.integers(arg[0], arg[1] + 1))
    return arg[int(rng.integers(len(arg)))]


def _random_group(table, seed: int, problems: list[str]) -> list[dict]:
    import numpy as np

    if not isinstance(table, dict):
        problems.append(f"[random] must be a table, got {table!r}")
        return []
    samples = table.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        problems.append(f"[random] samples must be an integer >= 1 (number of draws), got {samples!r}")
        return []
    dists = {k: v for k, v in table.items() if k != "samples"}
    if not dists:
        problems.append("[random] has `samples` but no axes")
        return []
    ok = all([_check_distribution(k, v, problems) for k, v in dists.items()])
    if not ok:
        return []
    rng = np.random.default_rng(seed)
    draws = [{k: _draw(rng, d) for k, d in dists.items()} for _ in range(samples)]
    for name in dists:
        _check_values(name, [d[name] for d in draws], "[random]", problems)
    return draws


# ---------------------------------------------------------------------------- factors
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
        lists = {k: _check_values(k, v, where, problems) for k, v in axes.items()}
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) > 1:
            problems.append(f"{where} axes must have equal lengths to be zipped, got {lengths}")
            continue
        n = next(iter(lengths.values()))
        groups.append([{k: lists[k][i] for k in lists} for i in range(n)])
    return groups


def _factors(raw: dict, study: dict, problems: list[str]) -> tuple[list[list[dict]], list[str]]:
    """The list of factors (each a list of partial assignments) and the axis names in order."""
    factors: list[list[dict]] = []
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        problems.append(f"[grid] must be a table of axis = [values], got {grid!r}")
        grid = {}
    for name, values in grid.items():
        factors.append([{name: v} for v in _check_values(name, values, "[grid]", problems)])
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


def _check_study(study, problems: list[str]) -> dict:
    if not isinstance(study, dict):
        problems.append(f"[study] must be a table, got {study!r}")
        return {}
    unknown = sorted(set(study) - set(STUDY_KEYS))
    if unknown:
        problems.append(f"unknown [study] key(s) {unknown}; allowed: {list(STUDY_KEYS)}")
    name = study.get("name", "sweep")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\\n\0"):
        problems.append(f"[study] name must be a non-empty string without path separators, got {name!r}")
    for key, low in (("seed", 0), ("replicates", 1)):
        v = study.get(key, low)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            problems.append(f"[study] {key} must be an integer >= {low}, got {v!r}")
            study = {k: x for k, x in study.items() if k != key}
    if not isinstance(study.get("description", ""), str):
        problems.append(f"[study] description must be a string, got {study['description']!r}")
    return study


def _check_deploy_table(table, problems: list[str]) -> dict:
    if not isinstance(table, dict):
        problems.append(f"[deploy] must be a table of {list(DEPLOY_KEYS)}, got {table!r}")
        return {}
    out = {}
    for k, v in table.items():
        msg = _check_deploy_value(k, v)
        if msg:
            problems.append(f"[deploy] {msg}")
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------- resolution
def _training_dict(base: dict, assignment: dict) -> dict:
    """``base`` with the non-deploy axes of ``assignment`` applied, replicate label as ``seed``,
    ``hardware.seed = 0``, ``train.threads = 1`` and no ``evaluate`` section."""
    train = json.loads(json.dumps(base))
    for name, value in assignment.items():
        if name != "seed" and not name.startswith("deploy."):
            set_path(train, name, value)
    train["seed"] = assignment.get("seed", base.get("seed", 0))
    set_path(train, "hardware.seed", 0)
    set_path(train, "train.threads", 1)
    train.pop("evaluate", None)
    train["name"] = "model"
    return train


def resolve_training(base: dict, assignment: dict) -> tuple[str, dict]:
    """``(train_key, resolved RunConfig dict with derived seeds)``; raises ValueError if invalid."""
    from training.config import RunConfig

    plain = RunConfig.from_dict(_training_dict(base, assignment)).to_dict()
    plain.pop("evaluate")
    train_key = digest(plain)
    plain["name"] = f"m{train_key[:12]}"
    plain["seed"] = derived_seed(train_key, "run")
    plain["hardware"]["seed"] = derived_seed(train_key, "device", bits=20)
    RunConfig.from_dict(plain)  # the derived seeds are valid too
    return train_key, plain


def resolve_deploy(train: dict, deploy_base: dict, assignment: dict) -> dict:
    """Complete deployment settings of a point (module docstring for the defaults)."""
    d = {"t": DEFAULT_T, "time_steps": train["network"]["time_steps"], "adc_bits": train["hardware"]["adc_bits"],
         "mode": "noisy", "family": train["hardware"]["family"]}
    d.update(deploy_base)
    d.update({k.split(".", 1)[1]: v for k, v in assignment.items() if k.startswith("deploy.")})
    if isinstance(d["adc_bits"], str):
        d["adc_bits"] = None
    d["t"] = float(d["t"])
    return d


def _expand(base: dict, deploy_base: dict, factors: list[list[dict]], problems: list[str]) -> list[Point]:
    """Every combination of the factors, resolved; invalid configs are grouped by message."""
    cache: dict[str, tuple[str, dict] | str] = {}
    failures: dict[str, list[dict]] = {}
    points, seen = [], set()
    for combo in itertools.product(*factors) if factors else [()]:
        assignment = {k: v for part in combo for k, v in part.items()}
        train_axes = canonical({k: v for k, v in assignment.items() if not k.startswith("deploy.")})
        if train_axes not in cache:
            try:
                cache[train_axes] = resolve_training(base, assignment)
            except (ValueError, TypeError) as exc:
                cache[train_axes] = str(exc)
        res = cache[train_axes]
        if isinstance(res, str):
            failures.setdefault(res, []).append(assignment)
            continue
        train_key, train = res
        try:
            deploy = resolve_deploy(train, deploy_base, assignment)
        except (ValueError, TypeError):
            continue  # bad deployment values are already reported by axis

        key = digest({"train_key": train_key, "deploy": deploy})
        if key not in seen:
            seen.add(key)
            points.append(Point(key, train_key, assignment, train, deploy))
    for message, assignments in failures.items():
        example = {k: v for k, v in assignments[0].items() if not k.startswith("deploy.")}
        problems.append(f"{len(assignments)} point(s) give an invalid config, e.g. {example}: {message}")
    return points


def parse_spec(raw: dict, source: str = "<dict>", text: str = "") -> Spec:
    """Validate and expand a parsed spec table; raises :class:`SpecError` with every problem."""
    from training.config import RunConfig

    problems: list[str] = []
    if not isinstance(raw, dict):
        raise SpecError(source, [f"a spec must be a table, got {raw!r}"])
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}; allowed tables: {list(SPEC_KEYS)}")
    study = _check_study(raw.get("study", {}), problems)
    base = raw.get("base", {})
    if not isinstance(base, dict):
        problems.append(f"[base] must be a RunConfig table, got {base!r}")
        base = {}
    for name in [k for k in FORBIDDEN if "." not in k and k in base]:
        problems.append(f"[base] {name!r} is not used: {FORBIDDEN[name]}")
    try:
        RunConfig.from_dict({k: v for k, v in base.items() if k != "name"})
        base_ok = True
    except (ValueError, TypeError) as exc:
        problems.append(f"[base]: {exc}")
        base_ok = False
    deploy_base = _check_deploy_table(raw.get("deploy", {}), problems)
    factors, names = _factors(raw, study, problems)
    points = []
    if base_ok and all(factors):
        points = _expand({k: v for k, v in base.items() if k != "name"}, deploy_base, factors, problems)
        if not points and not problems:
            problems.append("the spec expands to no points")
    if problems:
        raise SpecError(source, problems)
    return Spec(name=study.get("name", "sweep"), seed=study.get("seed", 0), base=base, deploy=deploy_base,
                axes=tuple(names), points=tuple(points), source=text, description=study.get("description", ""),
                trainings=len({p.train_key for p in points}))


def load_spec(spec) -> Spec:
    """A :class:`Spec` from a TOML file path, TOML text (``str`` containing a newline), a dict
    or a Spec (returned as is)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec, "<dict>", "")
    if isinstance(spec, str) and "\n" in spec:
        text, source = spec, "<text>"
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"sweep spec not found: {path}")
        text, source = path.read_text(), str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, [f"invalid TOML: {exc}"]) from exc
    return parse_spec(raw, source, text)
