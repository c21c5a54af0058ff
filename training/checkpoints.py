"""Training checkpoints: atomic saving, and loading that trusts nothing in the file.

A checkpoint ``checkpoints/epoch_NNNN.pt`` is a plain dict saved with ``torch.save`` and loaded
with ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only: a
malicious file cannot run code). Before a run resumes from one, :func:`load_checkpoint` checks

* that it is a readable, complete torch file (an empty, truncated or garbage file is named, with
  what is wrong, in one line);
* its structure: a dict holding ``config``, ``epoch``, ``model``, ``history`` (and, for a
  surrogate-gradient run, ``optimizer``, ``scheduler``, ``loader_rng``, ``torch_rng``) of the
  right types; the random-number states are byte tensors of the right size;
* its epoch: an integer in ``[1, train.epochs]`` equal to the number in its file name, with a
  history of exactly that many epochs numbered ``1..epoch`` (a conversion run's single
  checkpoint holds epoch ``train.epochs`` and one history row);
* its configuration: equal to the run's (else :class:`CheckpointConfigError`, naming the first
  options that differ: resuming someone else's run is refused, not repaired).

Resume policy (:func:`resume`): the newest checkpoint that passes every check *and* loads into the
model, optimiser, scheduler and generators is used; every newer file that fails is reported with
a :class:`CheckpointWarning` (the file is left untouched and is overwritten when training
reaches that epoch again), and the run continues from the previous good checkpoint — with the
same result as an uninterrupted run, since every random state comes from that checkpoint. When
no checkpoint is usable the run starts from scratch after a warning. A configuration mismatch
is an error, never a fallback.
"""
from __future__ import annotations

import copy
import io
import re
import warnings
from pathlib import Path

import torch

from devices._io import atomic_write_bytes

__all__ = ["CHECKPOINT_RE", "CheckpointError", "CheckpointConfigError", "CheckpointWarning", "checkpoint_path",
           "same_results_config", "list_checkpoints", "latest_checkpoint", "save_checkpoint", "load_checkpoint", "resume"]

#: checkpoint file names: ``epoch_`` + at least 4 ASCII digits + ``.pt`` (``\\Z``: no trailing newline)
CHECKPOINT_RE = re.compile(r"^epoch_([0-9]{4,})\.pt\Z")
_SURROGATE_KEYS = ("config", "epoch", "model", "optimizer", "scheduler", "loader_rng", "torch_rng", "history")
_CONVERSION_KEYS = ("config", "epoch", "model", "history")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, incomplete or inconsistent (the message names the file)."""


class CheckpointConfigError(ValueError):
    """A checkpoint belongs to a different run configuration."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (the message names the file and the reason)."""


def checkpoint_path(out_dir, epoch: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"epoch_{epoch:04d}.pt"


def list_checkpoints(out_dir) -> list[Path]:
    """Checkpoint files of ``out_dir`` (names matching :data:`CHECKPOINT_RE`), oldest first."""
    folder = Path(out_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)))


def latest_checkpoint(out_dir) -> Path | None:
    """The checkpoint with the highest epoch number in its name (not checked), or None."""
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def save_checkpoint(path, state: dict) -> None:
    """``torch.save`` ``state`` to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def same_results_config(stored, expected: dict) -> bool:
    """Whether a checkpoint's config dict ``stored`` and ``expected`` agree on every option a
    result depends on (:func:`results_config`)."""
    return isinstance(stored, dict) and results_config(stored) == results_config(expected)


def results_config(config: dict) -> dict:
    """The options a checkpoint must agree on: all but where the run executes (``device``,
    ``train.threads``), so a run may resume on another device or thread count; a checkpoint
    written before ``evaluate.energy`` existed reads as having the default energy figures."""
    out = {k: v for k, v in config.items() if k != "device"}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k != "threads"}
    if isinstance(out.get("evaluate"), dict):
        out["evaluate"] = {"energy": {}} | out["evaluate"]
    return out


def config_difference(stored, expected: dict, prefix: str = "") -> list[str]:
    """Dotted names of the options that differ between two config dicts (at most a few)."""
    if not isinstance(stored, dict):
        return [prefix.rstrip(".") or "config"]
    diff = []
    for key in sorted(set(stored) | set(expected), key=str):
        a, b = stored.get(key, "<missing>"), expected.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diff += config_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            diff.append(f"{prefix}{key} ({a!r} there, {b!r} here)")
    return diff


def load_checkpoint(path, config, *, kind: str = "surrogate") -> dict:
    """The validated state dict of checkpoint ``path`` for the run ``config`` (module docstring).

    Raises:
        CheckpointError: unreadable, incomplete or inconsistent file (one line naming it).
        CheckpointConfigError: the checkpoint belongs to another configuration.
    """
    path = Path(path)
    name = str(path)
    match = CHECKPOINT_RE.match(path.name)
    if match is None:
        raise CheckpointError(f"checkpoint {name}: the file name must be epoch_NNNN.pt")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name} cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise CheckpointError(f"checkpoint {name} is empty (0 bytes): an interrupted copy?")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(f"checkpoint {name} is not a readable torch checkpoint (truncated or corrupt: "
                              f"{_first_line(exc)})") from None
    keys = _SURROGATE_KEYS if kind == "surrogate" else _CONVERSION_KEYS
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {name} holds a {type(state).__name__}, not a checkpoint dict")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {name} is incomplete: missing {missing}")
    expected = results_config(config.to_dict())
    if not isinstance(state["config"], dict) or results_config(state["config"]) != expected:
        diff = config_difference(results_config(state["config"]), expected)
        raise CheckpointConfigError(
            f"{path.parent.parent} holds checkpoints of a different configuration ({'; '.join(diff[:3])}"
            f"{'; ...' if len(diff) > 3 else ''}); use another output directory (--out) or --no-resume")
    epoch, epochs = state["epoch"], config.train.epochs
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs:
        raise CheckpointError(f"checkpoint {name}: epoch must be an integer in [1, {epochs}] (train.epochs), "
                              f"got {epoch!r}")
    if epoch != int(match.group(1)):
        raise CheckpointError(f"checkpoint {name}: holds epoch {epoch}, but its file name says {int(match.group(1))}")
    _check_history(name, state["history"], epoch, kind)
    if not isinstance(state["model"], dict) or not all(isinstance(k, str) for k in state["model"]):
        raise CheckpointError(f"checkpoint {name}: 'model' must be a state dict (parameter names to tensors)")
    if kind == "surrogate":
        for key in ("optimizer", "scheduler"):
            if not isinstance(state[key], dict):
                raise CheckpointError(f"checkpoint {name}: {key!r} must be a state dict, "
                                      f"got {type(state[key]).__name__}")
        n_rng = torch.get_rng_state().numel()
        for key in ("loader_rng", "torch_rng"):
            t = state[key]
            if not (torch.is_tensor(t) and t.dtype == torch.uint8 and t.dim() == 1 and t.numel() == n_rng):
                raise CheckpointError(f"checkpoint {name}: {key!r} must be a uint8 generator state of {n_rng} bytes")
    return state


def _check_history(name: str, history, epoch: int, kind: str) -> None:
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise CheckpointError(f"checkpoint {name}: 'history' must be a list of per-epoch dicts")
    if kind == "conversion":
        if len(history) != 1 or history[0].get("epoch") != epoch:
            raise CheckpointError(f"checkpoint {name}: a conversion checkpoint holds one history row of epoch {epoch}")
        return
    if len(history) != epoch:
        raise CheckpointError(f"checkpoint {name}: holds epoch {epoch} but a history of {len(history)} epochs")
    numbers = [row.get("epoch") for row in history]
    if numbers != list(range(1, epoch + 1)):
        raise CheckpointError(f"checkpoint {name}: history epochs must be 1..{epoch}, got {numbers[:5]}...")


def _snapshot(model, opt, sched, loader) -> tuple:
    return (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict()),
            loader.generator.get_state(), torch.get_rng_state())


def _apply(state: tuple, model, opt, sched, loader) -> None:
    model.load_state_dict(state[0])
    opt.load_state_dict(state[1])
    sched.load_state_dict(state[2])
    loader.generator.set_state(state[3])
    torch.set_rng_state(state[4])


def resume(out_dir, config, model, opt, sched, loader) -> tuple[list[dict], int]:
    """Load the newest usable checkpoint of ``out_dir`` into the training objects; return
    ``(history, epoch)`` (``([], 0)``: start from scratch). Policy in the module docstring."""
    found = list_checkpoints(out_dir)
    if not found:
        return [], 0
    fresh = _snapshot(model, opt, sched, loader)
    skipped = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path, config)
            _apply((state["model"], state["optimizer"], state["scheduler"], state["loader_rng"],
                    state["torch_rng"]), model, opt, sched, loader)
        except CheckpointConfigError:
            raise
        except CheckpointError as exc:
            skipped.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever a bad state makes load_state_dict raise
            _apply(fresh, model, opt, sched, loader)
            skipped.append(f"checkpoint {path} does not fit the model or optimiser ({_first_line(exc)})")
        else:
            for reason in skipped:
                warnings.warn(CheckpointWarning(f"{reason}; resuming from {path.name} instead"), stacklevel=2)
            return list(state["history"]), int(state["epoch"])
    for reason in skipped:
        warnings.warn(CheckpointWarning(reason), stacklevel=2)
    warnings.warn(CheckpointWarning(f"no usable checkpoint in {Path(out_dir) / 'checkpoints'}: training starts "
                                    "from scratch (the bad files are overwritten as training reaches their epochs)"),
                  stacklevel=2)
    return [], 0
