"""The crossbar an ``xbar spice export|validate`` command works on, from its options.

Conductances (S), in this order of precedence:

1. ``--conductances FILE`` — the user's array: ``.npy`` (loaded without pickle) or ``.csv``
   (comma-separated, one row of the crossbar per line, ``#`` comments), shape (rows, cols),
   every value finite and in [0, 1] S (0 = an open cell; a file in µS must be scaled by 1e-6);
2. otherwise random ``G_ij ~ U(g_min, g_max)`` from ``torch.Generator().manual_seed(seed)``.

With ``--preset FAMILY[:NAME]`` those conductances are *targets*: a device array of that family
(:func:`devices.make`, device seed ``derive_seed(seed, "spice", "device")``) is programmed to
them once and read ``--t-read`` seconds later (drift/retention and read noise of the preset);
the read conductances become the cells (linear resistors). Without ``--g-min``/``--g-max`` the
random targets span the preset's window ``[g_min, g_max]``.

Inputs (V): ``--inputs FILE`` (one value per row, finite, |v| <= 10 V) or ``v_i ~ U(0, v_max)``
drawn from the same generator after the conductances (so a seed always gives the same circuit).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import torch

F64 = torch.float64
#: the device families a crossbar can be built of (volatile switches are neurons, not memories)
MEMORY_FAMILIES = ("rram", "pcm", "stt_mram", "floating_gate")
#: largest accepted cell conductance (S) and input voltage magnitude (V) of user files
G_LIMIT, V_LIMIT = 1.0, 10.0
#: largest text (.csv) conductance file read without --force (bytes)
CSV_MAX_BYTES = 100e6
#: default random conductance window (S) without a preset
G_MIN_DEFAULT, G_MAX_DEFAULT = 1e-6, 100e-6


def crossbar_defaults() -> dict:
    """Default values of :class:`xbar.CrossbarConfig` (read from the dataclass, one source of truth)."""
    from xbar import CrossbarConfig

    return {f.name: f.default for f in dataclasses.fields(CrossbarConfig)}


def _array_file(path: str, what: str, unit: str) -> np.ndarray:
    """A float64 array from ``.npy`` (no pickle) or ``.csv``; ValueError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: file not found: {path}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(p, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            with warnings.catch_warnings():  # "input contained no data": reported below as an error
                warnings.simplefilter("ignore")
                data = np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float64, comments="#")
        else:
            raise ValueError(f"{what}: {path} must be a .npy or .csv file of {unit}")
    except ValueError as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what}: {path} is not a numeric {suffix[1:]} array ({_first_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{what}: cannot read {path} ({_first_line(exc)})") from None
    if data.dtype.kind not in "fiu" or data.dtype == np.float16:
        raise ValueError(f"{what}: {path} must hold real numbers ({unit}), got dtype {data.dtype}")
    data = np.asarray(data, dtype=np.float64)
    if data.size == 0:
        raise ValueError(f"{what}: {path} holds no values")
    if not np.isfinite(data).all():
        raise ValueError(f"{what}: {path} holds NaN or inf values; every value must be finite ({unit})")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def array_shape(args: argparse.Namespace) -> tuple[int, int]:
    """``(rows, cols)`` of the command without loading a large file (``.npy`` header only)."""
    if args.conductances is None:
        return (args.rows or 8, args.cols or 8)
    p = Path(args.conductances)
    if p.suffix.lower() != ".npy" and p.is_file() and p.stat().st_size > CSV_MAX_BYTES and not args.force:
        raise ValueError(f"--conductances: {args.conductances} is a {p.stat().st_size / 1e6:.0f} MB text file (parsing "
                         f"it is slow and memory-hungry): save the array with numpy.save as .npy, or pass --force")
    shape = None
    if p.suffix.lower() == ".npy" and p.is_file():
        try:
            shape = np.load(p, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError, EOFError):
            shape = None  # reported with its reason by load_conductances
    if shape is None:
        g = load_conductances(args.conductances)
        shape = g.shape
    if len(shape) != 2:
        raise ValueError(f"--conductances: {args.conductances} must be a 2-D array (rows, cols) of S, "
                         f"got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def load_conductances(path: str) -> np.ndarray:
    """The (rows, cols) conductance array (S) of ``--conductances``."""
    g = _array_file(path, "--conductances", "S")
    if g.ndim != 2:
        raise ValueError(f"--conductances: {path} must be a 2-D array (rows, cols) of S, got shape {g.shape}")
    if (g < 0).any() or (g > G_LIMIT).any():
        raise ValueError(f"--conductances: {path} values must be conductances in [0, {G_LIMIT:g}] S, got "
                         f"[{g.min():.3g}, {g.max():.3g}] (a file in µS must be scaled by 1e-6)")
    return g


def load_inputs(path: str, rows: int) -> np.ndarray:
    """The (rows,) input voltages (V) of ``--inputs``."""
    v = _array_file(path, "--inputs", "V").reshape(-1)
    if v.size != rows:
        raise ValueError(f"--inputs: {path} must hold {rows} voltages (one per row), got {v.size}")
    if (np.abs(v) > V_LIMIT).any():
        raise ValueError(f"--inputs: {path} voltages must be in [-{V_LIMIT:g}, {V_LIMIT:g}] V, "
                         f"got [{v.min():.3g}, {v.max():.3g}]")
    return v


def parse_preset(text: str) -> tuple[str, str | None]:
    """``"pcm:joshi2020_pcm"`` → ``("pcm", "joshi2020_pcm")``; ``"pcm"`` → ``("pcm", None)``."""
    from devices import FAMILIES

    family, _, name = text.partition(":")
    if family not in MEMORY_FAMILIES:
        raise ValueError(f"--preset family must be one of {list(MEMORY_FAMILIES)}, got {family!r}")
    presets = sorted(FAMILIES[family].presets)
    if name and name not in presets:
        raise ValueError(f"--preset {family}: unknown preset {name!r}; allowed: {presets}")
    return family, (name or None)


def build_array(args: argparse.Namespace):
    """``(crossbar, v_in, description)`` of the parsed options (module docstring)."""
    from devices.seeding import derive_seed
    from xbar import Crossbar

    if args.t_read is not None and args.preset is None:
        raise ValueError("--t-read needs --preset (the device family whose drift and read noise it sets)")
    rows, cols = array_shape(args)
    if args.conductances is not None and ((args.rows not in (None, rows)) or (args.cols not in (None, cols))):
        raise ValueError(f"--rows/--cols ({args.rows}x{args.cols}) disagree with --conductances "
                         f"{args.conductances} ({rows}x{cols}); leave them out")
    device = None
    if args.preset is not None:
        from devices import make

        family, preset = parse_preset(args.preset)
        device = make(family, (rows, cols), seed=derive_seed(args.seed, "spice", "device"), preset=preset)
    g_min = args.g_min if args.g_min is not None else (device.g_min if device is not None else G_MIN_DEFAULT)
    g_max = args.g_max if args.g_max is not None else (device.g_max if device is not None else G_MAX_DEFAULT)
    if g_max < g_min:
        raise ValueError(f"--g-max must be >= --g-min ({g_min:g} S), got {g_max:g} S")
    gen = torch.Generator().manual_seed(args.seed)
    if args.conductances is not None:
        g = torch.from_numpy(load_conductances(args.conductances))
        source = f"conductances from {os.path.basename(args.conductances)}"
    else:
        g = g_min + (g_max - g_min) * torch.rand(rows, cols, generator=gen, dtype=F64)
        source = f"G ~ U({g_min:g}, {g_max:g}) S, seed {args.seed}"
    if args.inputs is not None:
        v = torch.from_numpy(load_inputs(args.inputs, rows))
    else:
        v = args.v_max * torch.rand(rows, generator=gen, dtype=F64)
    if device is not None:
        t_read = 0.0 if args.t_read is None else args.t_read
        device.program(g)
        g = device.read(t=t_read).detach().to(F64)
        source += f", programmed into {args.preset} and read at t = {t_read:g} s"
    xb = Crossbar(g, r_row=args.r_row, r_col=args.r_col, r_source=args.r_source, r_sense=args.r_sense,
                  topology=args.topology, transistor=args.transistor, selector=args.selector)
    return xb, v, source
