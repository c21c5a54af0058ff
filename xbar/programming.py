r"""Programming the tiles of an array into real devices, and reading them at time ``t``.

A :class:`DeviceSpec` names the device family and how it is programmed (plain, validated
values). :class:`TileDevices` holds one ``devices`` array per tile of a :class:`xbar.tiles.TileLayout`,
programs each tile to its target conductances (``program(target, clip=True)``, write-verify
optional) and reads every tile ``t`` s later (drift, relaxation, read noise, faults), returning the
whole padded array.

Seeds. Tile ``(r, c)`` of layer ``layer`` in deployment repeat ``repeat`` draws from the seed
:func:`tile_seed` = ``devices.seeding.derive_seed(seed, "layer", layer, "tile", r, c, "repeat",
repeat)``: a hash of the whole path, so no two tiles, layers or repeats share a stream (the
additive seeds used before made repeat 1 / tile 0 equal to repeat 0 / tile 1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

import devices
from devices.seeding import derive_seed
from devices.validation import check_bool, check_choice, check_int, check_optional_real, check_seed, check_time

from .tiles import TileLayout

Tensor = torch.Tensor

__all__ = ["DeviceSpec", "TileDevices", "tile_seed", "SYNAPSE_FAMILIES"]

#: non-volatile families that can hold a weight
SYNAPSE_FAMILIES = ("rram", "pcm", "stt_mram", "floating_gate")


def tile_seed(seed: int, layer: int, r: int, c: int, repeat: int = 0) -> int:
    """The device seed of tile ``(r, c)`` of ``layer`` in deployment ``repeat`` (module docstring)."""
    return derive_seed(seed, "layer", layer, "tile", r, c, "repeat", repeat)


@dataclass(frozen=True)
class DeviceSpec:
    """How the cells of a tiled array are made and programmed (plain values, SI units).

    Attributes:
        family: one of :data:`SYNAPSE_FAMILIES`; preset: its preset (None = default);
        params: overrides of the preset's parameters.
        seed: user seed of the device draws (hashed per layer, tile and repeat: :func:`tile_seed`).
        verify: write-verify programming; tolerance: its tolerance (S, None = the family's
            default); max_pulses: its pulse budget per device.
        t_read: default read time (s) after programming.
    """

    family: str
    preset: str | None = None
    seed: int = 0
    verify: bool = False
    tolerance: float | None = None
    max_pulses: int = 100
    t_read: float = 0.0
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("cells['family']", self.family, SYNAPSE_FAMILIES)
        presets = devices.presets()[self.family]
        if self.preset is not None:
            check_choice(f"cells['preset'] (family {self.family!r})", self.preset, presets)
        check_seed("cells['seed']", self.seed)
        check_bool("cells['verify']", self.verify)
        check_optional_real("cells['tolerance']", self.tolerance, low=0.0, low_open=True)
        check_int("cells['max_pulses']", self.max_pulses, low=1)
        check_time("cells['t_read']", self.t_read)
        if not isinstance(self.params, dict):
            raise ValueError(f"cells['params'] must be a dict of device parameter overrides, got {self.params!r}")
        self.make((1,))  # unknown or invalid parameter overrides raise here, naming the parameter

    @classmethod
    def from_dict(cls, values: dict) -> "DeviceSpec":
        """Build from a dict; unknown keys raise naming the allowed ones."""
        if not isinstance(values, dict):
            raise ValueError(f"cells must be a device spec dict, got {values!r}")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown cells key(s) {unknown}; allowed: {sorted(allowed)}")
        if "family" not in values:
            raise ValueError("cells (device spec) needs a 'family', e.g. {'family': 'rram'}")
        params = values.get("params", {})
        return cls(**{**values, "params": dict(params) if isinstance(params, dict) else params})

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "params": dict(self.params)}

    def make(self, shape, *, seed: int | None = None, device="cpu"):
        """A device array of this family (``seed`` defaults to the spec's)."""
        return devices.make(self.family, shape, seed=self.seed if seed is None else seed, preset=self.preset,
                            device=device, **self.params)

    def window(self) -> tuple[float, float]:
        """The family's programmable window ``(g_min, g_max)`` (S)."""
        dev = self.make((1,))
        return float(dev.g_min), float(dev.g_max)


def _move(dev, device: torch.device):
    """A device model on ``device`` (``Device.to``), or a clear error if the model cannot move."""
    if getattr(dev, "device", None) == device:
        return dev
    if not hasattr(dev, "to"):
        raise ValueError(f"the {dev.family} device model cannot move to {device} (no Device.to); undeploy() "
                         "before moving the layer, or deploy after moving it")
    moved = dev.to(device)
    return dev if moved is None else moved


class TileDevices:
    """One device array per tile of ``layout`` (module docstring), on ``device``."""

    def __init__(self, spec: DeviceSpec, layout: TileLayout, *, layer: int = 0, repeat: int = 0, device="cpu"):
        if not isinstance(spec, DeviceSpec):
            raise ValueError(f"spec must be a DeviceSpec, got {type(spec).__name__}")
        self.spec, self.layout = spec, layout
        self.layer = check_int("layer", layer, low=0)
        self.repeat = check_int("repeat", repeat, low=0)
        self.device = torch.device(device)
        shape = (layout.tile_rows, layout.tile_cols)
        self.arrays = [spec.make(shape, seed=tile_seed(spec.seed, self.layer, r, c, self.repeat), device=self.device)
                       for r, c in layout.tile_indices()]

    def program(self, target: Tensor) -> list:
        """Program every tile to its block of the padded ``target`` (S); returns the
        :class:`devices.ProgramResult` of each tile (row-major tile order)."""
        tiles = self.layout.stack(target.detach())
        results = []
        for (r, c), dev in zip(self.layout.tile_indices(), self.arrays):
            results.append(dev.program(tiles[r, c].to(device=dev.device, dtype=dev.dtype), verify=self.spec.verify,
                                       tolerance=self.spec.tolerance, max_pulses=self.spec.max_pulses, clip=True))
        return results

    def read(self, t: float | None = None) -> Tensor:
        """The padded array (S, float64) read ``t`` s after programming (default ``spec.t_read``)."""
        t = self.spec.t_read if t is None else check_time("t", t)
        reads = [dev.read(t).to(torch.float64) for dev in self.arrays]
        return self.layout.unstack(torch.stack(reads).view(self.layout.n_row_tiles, self.layout.n_col_tiles,
                                                           self.layout.tile_rows, self.layout.tile_cols))

    def to(self, device) -> "TileDevices":
        """Move every tile's devices (in place; returns self)."""
        device = torch.device(device)
        self.arrays = [_move(dev, device) for dev in self.arrays]
        self.device = device
        return self

    def __len__(self) -> int:
        return len(self.arrays)
