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

Axis names and their allowed values are described in :mod:`training.sweeps.axes` (RunConfig
paths such as ``hardware.family``, the deployment-only ``deploy.*`` axes and ``seed``, the
replicate label). Deployment defaults: ``t = 1.0`` s, the trained ``time_steps`` and
``adc_bits``, ``mode = "noisy"``, the trained family, ``repeat = 0``, the default energy figures
(``[deploy] energy = { adc_fom = 5e-15 }`` and ``deploy.energy.NAME`` axes override them).

Seeds and hashes. The *training config* of a point is ``base`` with the non-deploy axes applied,
``seed`` set to the replicate label, ``hardware.seed = 0``, ``train.threads = 1`` and the unused
``evaluate`` section at its defaults; ``train_key`` is the SHA-256 of its canonical JSON (sorted
keys, integral floats written as integers, so ``1`` and ``1.0`` agree) together with the version
of the seed derivation (:data:`SEEDING`; a study made with another derivation is not mixed with
this one's results). The run seed (``RunConfig.seed``) and the device seed (``hardware.seed``)
are derived from ``train_key`` by hashing (:func:`devices.seeding.derive_seed` of the path
``("sweeps", train_key, "run" | "device")``), so a point's results depend only on its resolved
configuration, never on order or worker count; the deployment points of one trained model share
its programmed chip (the same devices, as one chip read at several times), except that each
``deploy.repeat`` programs the weights anew (``model.deploy(t, repeat=r)``: devices drawn from
the hashed path ``(seed, layer, tile, repeat r)``, independent draws).
``key`` (the point) hashes ``train_key`` with the resolved deployment settings.

A spec expands to at most :data:`~training.sweeps.axes.MAX_POINTS` points; a bigger one is
refused (with its estimated cost) before anything is expanded or drawn.

:func:`load_spec` validates everything before anything runs and raises :class:`SpecError`
listing *all* problems (unknown keys, bad values, invalid resulting configs) with the key and
its allowed values.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .axes import (CONFIG_SECTIONS, DEPLOY_KEYS, DEPLOY_MODES, DISTRIBUTIONS, FAMILIES, FORBIDDEN, MAX_POINTS,
                   NESTED, axis_factors, check_axis_name, check_deploy_table, check_deploy_value)

SPEC_KEYS = ("study", "base", "deploy", "grid", "zip", "random")
STUDY_KEYS = ("name", "seed", "replicates", "description")
DEFAULT_T = 1.0
#: version of the seed derivation, hashed into every ``train_key`` (2: devices.seeding.derive_seed)
SEEDING = 2
#: longest problem line of a SpecError (hostile specs hold huge values)
MAX_PROBLEM_CHARS = 600
#: largest spec file read (a spec is a small TOML text)
MAX_SPEC_BYTES = 4 * 1024 * 1024

__all__ = ["Spec", "Point", "SpecError", "load_spec", "parse_spec", "resolve_training", "resolve_deploy",
           "canonical", "digest", "derived_seed", "set_path", "SPEC_KEYS", "STUDY_KEYS", "DEFAULT_T", "SEEDING",
           # re-exported from .axes (imported from here by report.py and older code)
           "DEPLOY_KEYS", "DEPLOY_MODES", "FAMILIES", "DISTRIBUTIONS", "CONFIG_SECTIONS", "NESTED", "FORBIDDEN",
           "check_axis_name"]


class SpecError(ValueError):
    """A spec with problems; ``problems`` lists every one of them."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = [p if len(p) <= MAX_PROBLEM_CHARS else p[:MAX_PROBLEM_CHARS - 1] + "…" for p in problems]
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


def derived_seed(key: str, purpose: str, bits: int = 31) -> int:
    """A seed in ``[0, 2**bits)`` for ``purpose`` of a point or training-config hash ``key``:
    :func:`devices.seeding.derive_seed` of the path ``("sweeps", key, purpose)`` (hashing)."""
    from devices.seeding import derive_seed

    return derive_seed(0, "sweeps", key, purpose) % (2 ** bits)


# ---------------------------------------------------------------------------- config paths
def set_path(config: dict, path: str, value) -> None:
    """Set a dotted ``path`` in a nested dict, creating (copies of) tables on the way."""
    parts = path.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value


# ---------------------------------------------------------------------------- spec tables
def _check_study(study, problems: list[str]) -> dict:
    """The ``[study]`` table without its invalid entries; problems appended."""
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
    train_key = digest({"config": plain, "seeding": SEEDING})
    plain["name"] = f"m{train_key[:12]}"
    plain["seed"] = derived_seed(train_key, "run")
    plain["hardware"]["seed"] = derived_seed(train_key, "device", bits=20)
    RunConfig.from_dict(plain)  # the derived seeds are valid too
    return train_key, plain


def resolve_deploy(train: dict, deploy_base: dict, assignment: dict) -> dict:
    """Complete deployment settings of a point (module docstring for the defaults)."""
    d = {"t": DEFAULT_T, "time_steps": train["network"]["time_steps"], "adc_bits": train["hardware"]["adc_bits"],
         "mode": "noisy", "family": train["hardware"]["family"], "repeat": 0}
    d.update(deploy_base)
    energy = dict(deploy_base.get("energy", {}))
    for k, v in assignment.items():
        if k.startswith("deploy.energy."):
            energy[k.split(".", 2)[2]] = v
        elif k.startswith("deploy."):
            d[k.split(".", 1)[1]] = v
    d.pop("energy", None)
    if energy:  # only when given: the keys of points without energy options stay as they were
        d["energy"] = energy
    if isinstance(d["adc_bits"], str):
        d["adc_bits"] = None
    d["t"] = float(d["t"])
    return d


def check_deployment(train: dict, deploy: dict) -> None:
    """Raise ValueError if the deployment of ``train`` (a resolved RunConfig dict) with the
    settings ``deploy`` is invalid: the deployed hardware config is built exactly as the
    evaluation builds it (:func:`training.sweeps.workers.deployment_hardware`), and a device of
    it is read at the point's time (a family may refuse times beyond its measured data)."""
    from training.hardware import HardwareConfig

    from .workers import deployment_hardware

    hw = deployment_hardware(HardwareConfig.from_dict(train["hardware"]), deploy)
    if deploy["mode"] != "ideal":
        hw.probe_device().read(float(deploy["t"]))


def _expand(base: dict, deploy_base: dict, factors: list[list[dict]], problems: list[str]) -> list[Point]:
    """Every combination of the factors, resolved (training and deployment config of every
    point built as a run builds it); invalid configs are grouped by message."""
    cache: dict[str, tuple[str, dict] | str] = {}
    deploy_cache: dict[tuple, str | None] = {}
    failures: dict[str, list[dict]] = {}
    deploy_failures: dict[str, list[dict]] = {}
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
        if any(check_deploy_value(k, deploy[k]) for k in ("t", "time_steps", "mode", "family", "repeat")):
            continue  # idem
        stamp = (train_key, deploy["adc_bits"], deploy["family"], deploy["repeat"], deploy["t"], deploy["mode"])
        if stamp not in deploy_cache:
            try:
                check_deployment(train, deploy)
                deploy_cache[stamp] = None
            except (ValueError, TypeError) as exc:
                deploy_cache[stamp] = str(exc)
        if deploy_cache[stamp] is not None:
            deploy_failures.setdefault(deploy_cache[stamp], []).append(assignment)
            continue

        key = digest({"train_key": train_key, "deploy": deploy})
        if key not in seen:
            seen.add(key)
            points.append(Point(key, train_key, assignment, train, deploy))
    for message, assignments in failures.items():
        example = {k: v for k, v in assignments[0].items() if not k.startswith("deploy.")}
        problems.append(f"{len(assignments)} point(s) give an invalid config, e.g. {example}: {message}")
    for message, assignments in deploy_failures.items():
        problems.append(f"{len(assignments)} point(s) give an invalid deployment, e.g. {assignments[0]}: {message}")
    return points


def _size_problem(base: dict, deploy_base: dict, factors: list[list[dict]]) -> str | None:
    """The problem if the factors expand to more than MAX_POINTS points (with the estimated
    cost of evaluating that many points of the base configuration), else None."""
    n = math.prod(len(f) for f in factors)
    if n <= MAX_POINTS:
        return None
    cost = ""
    try:
        from .plan import evaluation_seconds

        _, train = resolve_training(base, {})
        per_point = evaluation_seconds(Point("", "", {}, train, resolve_deploy(train, deploy_base, {})))
        cost = f"; evaluating them alone would take about {n * per_point / 3600:.3g} CPU-hours"
    except (ValueError, TypeError, KeyError):
        pass
    return (f"the spec expands to {n:,} points, more than the {MAX_POINTS:,} a study may hold{cost}; "
            "split it into several studies or use fewer axis values / [random] samples")


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
    deploy_base = check_deploy_table(raw.get("deploy", {}), problems)
    factors, names = axis_factors(raw, study, problems)
    points = []
    run_base = {k: v for k, v in base.items() if k != "name"}
    too_big = _size_problem(run_base if base_ok else {}, deploy_base, factors)
    if too_big:
        problems.append(too_big)
    elif base_ok and all(factors):
        points = _expand(run_base, deploy_base, factors, problems)
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
        text, source = _read_spec_file(spec), str(spec)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, [f"invalid TOML: {exc}"]) from exc
    return parse_spec(raw, source, text)


def _read_spec_file(spec) -> str:
    """The UTF-8 text of spec file ``spec``; one-line errors naming the file otherwise."""
    if not isinstance(spec, (str, Path)):
        raise ValueError(f"spec must be a TOML file path, TOML text, a dict or a Spec, got {type(spec).__name__}")
    path = Path(spec)
    if path.is_dir():
        hint = f"; its spec is {path / 'spec.toml'}" if (path / "spec.toml").is_file() else ""
        raise SpecError(str(path), [f"is a directory, not a spec file (a TOML file){hint}"])
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec not found: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(str(path), [f"is {size:,} bytes; a spec is a small TOML text (at most "
                                        f"{MAX_SPEC_BYTES:,} bytes)"])
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), [f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                    "a spec is a TOML text file"]) from None
