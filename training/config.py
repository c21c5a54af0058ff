"""The run configuration of ``xbar train``: plain dataclasses that map 1:1 onto a TOML file.

Example ``run.toml`` (every key optional; the defaults are the embedded Yin-Yang run)::

    name = "yy-pcm-hwa"
    seed = 0

    [data]
    dataset = "yin_yang"        # or "digits"
    batch_size = 50

    [network]
    hidden = [120]
    time_steps = 20

    [hardware]                  # training-time hardware (training.HardwareConfig)
    mode = "noisy"
    family = "pcm"
    crossbar = { r_row = 1.0, r_col = 1.0 }

    [train]
    epochs = 30
    lr = 0.01

    [evaluate]                  # deployment: program once, read at these times
    modes = ["noisy", "circuit"]
    times = [1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
    time_steps = [5, 10, 20, 40]

Unknown keys raise an error naming the allowed ones; ``RunConfig.from_dict(cfg.to_dict())``
round-trips.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .hardware import HardwareConfig
from .model import NetworkConfig

DATASETS = ("yin_yang", "digits")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
#: "surrogate": BPTT with surrogate gradients (or exact, for memristive neurons); "conversion": a
#: ReLU network trained in float and converted to IF neurons (:mod:`training.conversion`)
METHODS = ("surrogate", "conversion")
#: inference times of a deployed chip (s): 1 s, 1 h, 1 day, 1 month (30 d), 1 year (365 d)
DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 2592000.0, 31536000.0)


def _fields(cls, values: dict, section: str) -> dict:
    allowed = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(values, dict):
        raise ValueError(f"[{section}] must be a table, got {values!r}")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} in [{section}]; allowed: {sorted(allowed)}")
    return values


def _int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _pos(name: str, value, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """dataset: "yin_yang" (generated, splits 5000/1000/1000 from seeds 42/41/40) or "digits"
    (scikit-learn, stratified split with ``split_seed``, ``test_fraction``); batch sizes."""

    dataset: str = "yin_yang"
    batch_size: int = 50
    eval_batch_size: int = 1000
    split_seed: int = 0
    test_fraction: float = 0.2

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {list(DATASETS)}, got {self.dataset!r}")
        _int("batch_size", self.batch_size, 1)
        _int("eval_batch_size", self.eval_batch_size, 1)
        _int("split_seed", self.split_seed, 0)


@dataclass(frozen=True)
class TrainConfig:
    """epochs; optimizer "adam"/"sgd" with lr, weight_decay, momentum (sgd); schedule
    "cosine" (to 0 over the epochs) or "constant"; threads: torch CPU threads (0 = leave);
    method: "surrogate" (train the SNN itself) or "conversion" (train the ReLU twin, convert with
    data-based normalisation at ``conversion_percentile``; the network then uses IF neurons)."""

    epochs: int = 30
    lr: float = 1e-2
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    threads: int = 0
    method: str = "surrogate"
    conversion_percentile: float = 99.9

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"train.method must be one of {list(METHODS)}, got {self.method!r}")
        if not (isinstance(self.conversion_percentile, (int, float)) and 0 < self.conversion_percentile <= 100):
            raise ValueError(f"train.conversion_percentile must be in (0, 100], got {self.conversion_percentile!r}")
        _int("epochs", self.epochs, 1)
        _pos("lr", self.lr)
        _pos("weight_decay", self.weight_decay, allow_zero=True)
        _pos("momentum", self.momentum, allow_zero=True)
        _int("threads", self.threads, 0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")


@dataclass(frozen=True)
class EvalConfig:
    """Deployment evaluation: the trained weights are programmed once per repeat (device seed
    ``hardware.seed + repeat``) and read at every time in ``times`` (s, >= 0) in each of
    ``modes`` ("ideal" = no hardware, "noisy", "circuit"); accuracy vs the number of time steps
    at ``steps_time`` (s) for ``time_steps``; ``families`` adds deployments of the same weights on
    other device families (their default presets)."""

    modes: tuple = ("noisy",)
    times: tuple = DEFAULT_TIMES
    time_steps: tuple = (5, 10, 20, 40)
    steps_time: float = 86400.0
    repeats: int = 1
    families: tuple = ()

    def __post_init__(self):
        for name in ("modes", "times", "time_steps", "families"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"evaluate.{name} must be a list (e.g. [{value!r}]), got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for m in self.modes:
            if m not in ("ideal", "noisy", "circuit"):
                raise ValueError(f"evaluate.modes entries must be 'ideal', 'noisy' or 'circuit', got {m!r}")
        for t in self.times:
            _pos("evaluate.times entries (inference time, s)", t, allow_zero=True)
        for s in self.time_steps:
            _int("evaluate.time_steps entries", s, 1)
        _pos("evaluate.steps_time (s)", self.steps_time, allow_zero=True)
        _int("evaluate.repeats", self.repeats, 1)
        for f in self.families:
            if f not in ("rram", "pcm", "stt_mram", "floating_gate"):
                raise ValueError(f"evaluate.families entries must be device families "
                                 f"(rram, pcm, stt_mram, floating_gate), got {f!r}")


@dataclass(frozen=True)
class RunConfig:
    """A whole run: ``name``, ``seed`` (initialisation, shuffling), ``data``, ``network``,
    ``hardware`` (training-time), ``train``, ``evaluate``."""

    name: str = "run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\\n\0"):
            raise ValueError(f"name must be a non-empty string without path separators, got {self.name!r}")
        _int("seed", self.seed, 0)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        values = dict(_fields(cls, values, "run"))
        sections = {"data": DataConfig, "train": TrainConfig, "evaluate": EvalConfig}
        for key, kind in sections.items():
            if key in values:
                values[key] = kind(**_fields(kind, values[key], key))
        if "network" in values:
            values["network"] = NetworkConfig.from_dict(values["network"])
        if "hardware" in values:
            values["hardware"] = HardwareConfig.from_dict(values["hardware"])
        return cls(**values)

    @classmethod
    def from_toml(cls, path) -> "RunConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        with path.open("rb") as fh:
            try:
                values = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: invalid TOML: {exc}") from exc
        return cls.from_dict(values)

    def to_dict(self) -> dict:
        def plain(obj):
            if isinstance(obj, tuple):
                return [plain(v) for v in obj]
            if isinstance(obj, dict):
                return {k: plain(v) for k, v in obj.items()}
            return obj
        return {"name": self.name, "seed": self.seed,
                "data": plain(dataclasses.asdict(self.data)), "network": self.network.to_dict(),
                "hardware": self.hardware.to_dict(), "train": plain(dataclasses.asdict(self.train)),
                "evaluate": plain(dataclasses.asdict(self.evaluate))}

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)
