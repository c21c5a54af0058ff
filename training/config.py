"""The run configuration of ``xbar train``: plain dataclasses that map 1:1 onto a TOML file.

Example ``run.toml`` (every key optional; the defaults are the embedded Yin-Yang run)::

    name = "yy-pcm-hwa"
    seed = 0
    device = "auto"             # "cpu", "cuda", "cuda:N"; auto = CUDA if available, else CPU

    [data]
    dataset = "yin_yang"        # or "digits", "mnist", "fashion_mnist"
    batch_size = 50

    [network]                   # kind = "mlp" (default, training.SpikingMLP) or "conv"
                                # (training.SpikingConvNet: channels, kernel_size, pool, hidden, ...)

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
    energy = { adc_fom = 10e-15, t_read = 100e-9 }   # optional: xbar.energy.EnergyConfig fields

Unknown keys raise an error naming the allowed ones; ``RunConfig.from_dict(cfg.to_dict())``
round-trips.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from devices.validation import check_int, check_real

from .conv_model import ConvNetworkConfig
from .hardware import HardwareConfig
from .model import NetworkConfig

DATASETS = ("yin_yang", "digits", "mnist", "fashion_mnist")
#: ``[network] kind``: "mlp" (:class:`training.model.NetworkConfig`) or "conv"
#: (:class:`training.conv_model.ConvNetworkConfig`)
NETWORK_KINDS = ("mlp", "conv")
#: data sets a convolutional network takes (as images (n, 1, H, W)); digits are 8x8
IMAGE_DATASETS = ("mnist", "fashion_mnist", "digits")
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
    """dataset: "yin_yang" (generated, splits 5000/1000/1000 from seeds 42/41/40), "digits"
    (scikit-learn, stratified split with ``split_seed``, ``test_fraction``), "mnist" or
    "fashion_mnist" (:mod:`training.images`, installed by set-up: the official 10000 test images,
    and ``validation_size`` images drawn from the 60000 training images with ``split_seed`` as the
    validation split, the rest for training); batch sizes. ``validation_size`` applies to the image
    sets only (Yin-Yang's validation split is fixed, digits has none); ``test_fraction`` to digits
    only. train_subset / eval_subset: use only the first that many training / validation and test
    samples (0 = all; for quick runs and tests)."""

    dataset: str = "yin_yang"
    batch_size: int = 50
    eval_batch_size: int = 1000
    split_seed: int = 0
    test_fraction: float = 0.2
    validation_size: int = 5000
    train_subset: int = 0
    eval_subset: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {list(DATASETS)}, got {self.dataset!r}")
        _int("batch_size", self.batch_size, 1)
        _int("eval_batch_size", self.eval_batch_size, 1)
        _int("split_seed", self.split_seed, 0)
        check_int("data.validation_size", self.validation_size, low=0, high=59999)
        check_int("data.train_subset", self.train_subset, low=0)
        check_int("data.eval_subset", self.eval_subset, low=0)
        check_real("data.test_fraction", self.test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """epochs; optimizer "adam"/"sgd" with lr, weight_decay, momentum (sgd); schedule
    "cosine" (to 0 over the epochs) or "constant"; threads: torch CPU threads, "auto" (default:
    min(4, physical cores, idle cores), 1 on a busy machine — :mod:`training.threads`), N, or 0
    (leave torch's setting);
    method: "surrogate" (train the SNN itself) or "conversion" (train the ReLU twin, convert with
    data-based normalisation at ``conversion_percentile``; the network then uses IF neurons)."""

    epochs: int = 30
    lr: float = 1e-2
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    threads: int | str = "auto"
    method: str = "surrogate"
    conversion_percentile: float = 99.9

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"train.method must be one of {list(METHODS)}, got {self.method!r}")
        check_real("train.conversion_percentile", self.conversion_percentile, low=0.0, high=100.0, low_open=True)
        _int("epochs", self.epochs, 1)
        _pos("lr", self.lr)
        _pos("weight_decay", self.weight_decay, allow_zero=True)
        _pos("momentum", self.momentum, allow_zero=True)
        if self.threads != "auto":
            _int("threads (\"auto\" or an integer)", self.threads, 0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")


@dataclass(frozen=True)
class EvalConfig:
    """Deployment evaluation: the trained weights are programmed once per repeat (devices seeded by
    hashing ``(hardware.seed, layer, tile, repeat)``) and read at every time in ``times`` (s, >= 0) in each of
    ``modes`` ("ideal" = no hardware, "noisy", "circuit"); accuracy vs the number of time steps
    at ``steps_time`` (s) for ``time_steps``; ``families`` adds deployments of the same weights on
    other device families (their default presets). ``energy``: overrides of the peripheral energy
    figures and read timing of the energy/latency metrics (fields of
    :class:`xbar.energy.EnergyConfig`, SI units; empty = its cited defaults)."""

    modes: tuple = ("noisy",)
    times: tuple = DEFAULT_TIMES
    time_steps: tuple = (5, 10, 20, 40)
    steps_time: float = 86400.0
    repeats: int = 1
    families: tuple = ()
    energy: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.energy, dict):
            raise ValueError(f"evaluate.energy must be a table of energy options (e.g. {{ adc_fom = 10e-15 }}), "
                             f"got {self.energy!r}")
        try:
            self.energy_config()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"evaluate.energy: {exc}") from None
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

    def energy_config(self):
        """The :class:`xbar.energy.EnergyConfig` of ``energy`` (its defaults overridden)."""
        from xbar.energy import EnergyConfig

        return EnergyConfig.from_dict(dict(self.energy))


def network_from_dict(values) -> NetworkConfig | ConvNetworkConfig:
    """The ``[network]`` table by its ``kind``: "mlp" (default; the key is optional) or "conv"."""
    if not isinstance(values, dict):
        raise ValueError(f"[network] must be a table, got {values!r}")
    kind = values.get("kind", "mlp")
    if kind not in NETWORK_KINDS:
        raise ValueError(f"network.kind must be one of {list(NETWORK_KINDS)}, got {kind!r}")
    if kind == "conv":
        return ConvNetworkConfig.from_dict(values)
    return NetworkConfig.from_dict({k: v for k, v in values.items() if k != "kind"})


#: longest run name (bytes of UTF-8): a directory name must fit the file system's NAME_MAX
NAME_MAX_BYTES = 200


def check_run_name(name) -> str:
    """``name`` if it is a plain single path component (``results/<name>`` stays inside
    ``results/``): a non-empty string, not ``.`` or ``..``, without ``/`` or ``\\``, control or
    invisible format characters (newlines, NUL, bidirectional overrides), leading/trailing
    spaces, and at most :data:`NAME_MAX_BYTES` bytes of UTF-8; else ValueError."""
    import unicodedata

    rule = ("a plain directory name: letters, digits and punctuation other than '/' and '\\', not '.' or '..', "
            f"no control characters, at most {NAME_MAX_BYTES} bytes")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be {rule}, got {name!r}")
    bad = [c for c in name if c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")]
    too_long = len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES
    if name in (".", "..") or bad or name != name.strip() or too_long:
        raise ValueError(f"name must be {rule}, got {name!r}")
    return name


#: where a run computes: "auto" (CUDA if available, else the CPU; the device used is recorded in
#: the run's results), "cpu", "cuda" or "cuda:N"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def check_device(value) -> str:
    """``value`` if it names a run device (:data:`DEVICE_CHOICES`), else ValueError."""
    ok = isinstance(value, str) and (value in ("auto", "cpu", "cuda") or
                                     (value.startswith("cuda:") and value[5:].isdigit() and value[5:] == str(int(value[5:]))))
    if not ok:
        raise ValueError(f"device must be one of \"auto\", \"cpu\", \"cuda\" or \"cuda:N\" (N = GPU index), got {value!r}")
    return value


def resolve_device(value: str = "auto"):
    """The ``torch.device`` of a run's ``device`` option: "auto" is CUDA when a GPU is visible, else
    the CPU; "cuda"/"cuda:N" without that GPU raise (nothing falls back to the CPU silently)."""
    import torch

    check_device(value)
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device = {value!r} but no CUDA GPU is available (torch.cuda.is_available() is "
                             "False); use device = \"cpu\" or \"auto\"")
        index = int(value[5:]) if ":" in value else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device = {value!r} but only {torch.cuda.device_count()} GPU(s) are visible")
    return torch.device(value)


@dataclass(frozen=True)
class RunConfig:
    """A whole run: ``name``, ``seed`` (initialisation, shuffling), ``data``, ``network``,
    ``hardware`` (training-time), ``train``, ``evaluate``, ``device`` (where it computes:
    :data:`DEVICE_CHOICES`, :func:`resolve_device`)."""

    name: str = "run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig | ConvNetworkConfig = field(default_factory=NetworkConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    device: str = "auto"

    def __post_init__(self):
        check_run_name(self.name)
        check_device(self.device)
        _int("seed", self.seed, 0)
        if isinstance(self.network, ConvNetworkConfig):
            if self.data.dataset not in IMAGE_DATASETS:
                raise ValueError(f"network.kind = 'conv' needs an image data set (data.dataset in "
                                 f"{list(IMAGE_DATASETS)}), got {self.data.dataset!r}")
            if self.train.method == "conversion" and self.network.pool != "avg":
                raise ValueError("network.pool must be 'avg' for network.kind = 'conv' with train.method = "
                                 "'conversion' (the max of spike trains fires more often than its most active "
                                 f"input, so max pooling does not convert), got {self.network.pool!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        values = dict(_fields(cls, values, "run"))
        sections = {"data": DataConfig, "train": TrainConfig, "evaluate": EvalConfig}
        for key, kind in sections.items():
            if key in values:
                values[key] = kind(**_fields(kind, values[key], key))
        if "network" in values:
            values["network"] = network_from_dict(values["network"])
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
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}: invalid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
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
                "evaluate": plain(dataclasses.asdict(self.evaluate)), "device": self.device}

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)
