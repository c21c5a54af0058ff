"""A large signed weight matrix tiled over fixed-size crossbars with digital partial sums.

Mapping (``W`` is ``(in_features, out_features)``; inputs drive rows, outputs are columns)::

    W  ->  differential pairs  G+ = g_min + s·max(w, 0),  G- = g_min + s·max(-w, 0),  s = mapping.scale (S)
           interleaved in one array: physical column 2k holds G+ of output k, column 2k+1 its G-
    padded with w = 0 (G+ = G- = g_min) to a whole number of tiles of ``tile_rows x tile_cols`` cells

    tile (r, c) = xbar.Crossbar of tile_rows x tile_cols cells, rows r·tile_rows..., outputs c·tile_cols/2...

    x --DAC--> v (V) --tile(r, c)--> i (A) --> i[2k] - i[2k+1] --TIA--> --ADC--> y_rc (V, quantised)
    y[:, c-block] = Σ_r y_rc / (r_tia · v_unit · s)         digital partial sums over the row tiles

with ``v_unit = dac.v_max/dac.x_max`` (V per unit input; ``v_scale`` without a DAC). Both halves of
a pair sit next to each other on the same row wires, so they see almost the same IR drop and
the common ``g_min`` current cancels in the analog difference before the (single, signed) ADC
of each output; the price is half as many outputs per array as physical columns
(``tile_cols`` must be even). Tiles are full-size physical arrays: unused rows are driven at
0 V and unused cells sit at ``g_min``, so the edge tiles load their wires like real ones.

Solving: linear tiles (0T1R, or 1T1R with a linear access transistor) use each tile's cached
exact :meth:`xbar.Crossbar.transfer_matrix` (``mode="transfer"``: a batch costs one matmul per
tile); nonlinear ones (1S1R, EKV 1T1R) the exact Newton ``solve`` (``mode="solve"``, also
selectable for linear tiles). Circuits are solved in float64; the output is cast back to the
input's dtype (float32 training, float64 circuit).

Gradients: weights -> conductances -> circuit is differentiable (the solver's exact adjoint,
or its straight-through ``grad_mode="ideal"``); DAC and ADC pass gradients straight through
inside their range. When the cells are programmed devices (``cells``), the realised
conductances ``G_real`` are used in the forward pass with the gradient of the targets
(``G = G_target + (G_real - G_target).detach()``), the usual hardware-aware training estimator.

Caching: the tiles (and the transfer matrices they cache) are kept until the weights' values
change; devices are re-programmed only then. With gradients enabled the tiles are rebuilt on
every call so that the graph reaches the current weights.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from .crossbar import Crossbar, CrossbarConfig
from .peripherals import ADC, DAC, TIA, DifferentialMapping, mvm_energy

Tensor = torch.Tensor

__all__ = ["TiledCrossbar"]

_DEVICE_SPEC_KEYS = {"family", "preset", "seed", "verify", "tolerance", "max_pulses", "t_read", "params"}


def _check_device_spec(spec: dict) -> dict:
    unknown = sorted(set(spec) - _DEVICE_SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown cells key(s) {unknown}; allowed: {sorted(_DEVICE_SPEC_KEYS)}")
    if "family" not in spec:
        raise ValueError("cells (device spec) needs a 'family', e.g. {'family': 'rram'}")
    out = {"preset": None, "seed": 0, "verify": False, "tolerance": None, "max_pulses": 100, "t_read": 0.0,
           "params": {}, **spec}
    if not isinstance(out["params"], dict):
        raise ValueError(f"cells['params'] must be a dict of device parameter overrides, got {out['params']!r}")
    if float(out["t_read"]) < 0 or not math.isfinite(float(out["t_read"])):
        raise ValueError(f"cells['t_read'] must be a finite time >= 0 s, got {out['t_read']!r}")
    return out


class TiledCrossbar:
    """Signed ``weights (in_features, out_features)`` over ``tile_shape`` crossbars (see module doc).

    Args:
        weights: 2-D tensor (kept by reference: in-place updates of a Parameter are seen).
        tile_shape: ``(tile_rows, tile_cols)`` physical cells per array; ``tile_cols`` even.
        mapping: :class:`DifferentialMapping` (window and weight scale).
        config: :class:`CrossbarConfig` of every tile (default ``CrossbarConfig()``).
        dac, adc, tia: peripherals; ``dac=None``: ideal linear inputs ``v = x·v_scale``;
            ``adc=None``: no output quantisation; ``tia=None``: ``TIA()``.
        cells: None (conductances = targets), a device spec ``{"family": "rram", "preset": ...,
            "seed": 0, "verify": False, "tolerance": None, "max_pulses": 100, "t_read": 0.0,
            "params": {...}}`` (each tile a ``devices`` array, seed ``seed + tile index``,
            ``program(target, clip=True)`` then ``read(t_read)``), or a callable
            ``f(target (tile_rows, tile_cols) S, (r, c)) -> conductances`` (not serialisable).
        mode: "auto" (transfer for linear tiles, else solve), "transfer" or "solve".
        v_scale: V per unit input when ``dac`` is None.
        clip: clip weights to ``mapping.w_max`` instead of raising.
    """

    def __init__(self, weights, tile_shape, mapping: DifferentialMapping, config: CrossbarConfig | None = None,
                 dac: DAC | None = None, adc: ADC | None = None, tia: TIA | None = None, *,
                 cells: dict | Callable | None = None, mode: str = "auto", v_scale: float = 0.2,
                 clip: bool = False):
        w = weights if torch.is_tensor(weights) else torch.as_tensor(weights, dtype=torch.float64)
        if w.dim() != 2 or w.shape[0] == 0 or w.shape[1] == 0 or not w.dtype.is_floating_point:
            raise ValueError(f"weights must be a non-empty 2-D float (in_features, out_features) tensor, "
                             f"got {w.dtype} {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weights must be finite (no NaN/inf)")
        try:
            tr, tc = (int(s) for s in tile_shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"tile_shape must be a (tile_rows, tile_cols) pair of ints, got {tile_shape!r}") from exc
        if tr < 1 or tc < 2 or tc % 2 or (tr, tc) != tuple(tile_shape):
            raise ValueError(f"tile_shape must be (tile_rows >= 1, even tile_cols >= 2) integers (each output uses "
                             f"two interleaved columns), got {tuple(tile_shape)!r}")
        if not isinstance(mapping, DifferentialMapping):
            raise ValueError(f"mapping must be a DifferentialMapping, got {type(mapping).__name__}")
        config = CrossbarConfig() if config is None else config
        if not isinstance(config, CrossbarConfig):
            raise ValueError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        config.validate()
        for name, obj, cls in (("dac", dac, DAC), ("adc", adc, ADC), ("tia", tia, TIA)):
            if obj is not None and not isinstance(obj, cls):
                raise ValueError(f"{name} must be a {cls.__name__} or None, got {type(obj).__name__}")
        if mode not in ("auto", "transfer", "solve"):
            raise ValueError(f"mode must be 'auto', 'transfer' or 'solve', got {mode!r}")
        if not (isinstance(v_scale, (int, float)) and math.isfinite(v_scale) and v_scale > 0):
            raise ValueError(f"v_scale must be a finite voltage > 0 V per unit input, got {v_scale!r}")
        if isinstance(cells, dict):
            cells = _check_device_spec(cells)
        elif cells is not None and not callable(cells):
            raise ValueError(f"cells must be None, a device spec dict or a callable, got {type(cells).__name__}")
        self.weights = w
        self.tile_rows, self.tile_cols = tr, tc
        self.mapping, self.config = mapping, config
        self.dac, self.adc, self.tia = dac, adc, (TIA() if tia is None else tia)
        self.cells, self.mode, self.v_scale, self.clip = cells, mode, float(v_scale), bool(clip)
        self.n_row_tiles = -(-self.in_features // tr)
        self.n_col_tiles = -(-self.out_features // (tc // 2))
        probe = Crossbar(torch.ones(1, 1, dtype=torch.float64), config=config)
        if mode == "transfer" and not probe.is_linear:
            raise ValueError(f"mode='transfer' needs linear tiles; topology {config.topology!r} with these options "
                             "is nonlinear: use mode='solve' or 'auto'")
        self.uses_transfer = mode == "transfer" or (mode == "auto" and probe.is_linear)
        self._key: Tensor | None = None
        self._g_real: Tensor | None = None
        self._tiles: list[list[Crossbar]] | None = None
        self._devices: list = []
        self.last_adc_saturation = 0.0

    # ------------------------------------------------------------------ shapes and scales
    @property
    def in_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def outputs_per_tile(self) -> int:
        return self.tile_cols // 2

    @property
    def v_unit(self) -> float:
        """Volts per unit input."""
        return self.dac.v_max / self.dac.x_max if self.dac is not None else self.v_scale

    def _tile_slices(self, r: int, c: int) -> tuple[slice, slice]:
        return (slice(r * self.tile_rows, (r + 1) * self.tile_rows),
                slice(c * self.tile_cols, (c + 1) * self.tile_cols))

    # ------------------------------------------------------------------ conductances
    def target_conductances(self) -> Tensor:
        """Interleaved, padded target conductances (S), ``(n_row_tiles·tile_rows, n_col_tiles·tile_cols)``,
        float64 and differentiable w.r.t. the weights."""
        w = self.weights.to(torch.float64)
        rows, outs = self.n_row_tiles * self.tile_rows, self.n_col_tiles * self.outputs_per_tile
        w = torch.nn.functional.pad(w, (0, outs - w.shape[1], 0, rows - w.shape[0]))
        g_pos, g_neg = self.mapping.to_conductances(w, clip=self.clip)
        return torch.stack((g_pos, g_neg), dim=-1).reshape(rows, 2 * outs)

    def _programmed(self, target: Tensor) -> Tensor:
        """Realised conductances (S) of the whole padded array for the (detached) targets."""
        parts = []
        for r in range(self.n_row_tiles):
            row = []
            for c in range(self.n_col_tiles):
                t = target[self._tile_slices(r, c)].contiguous()
                row.append(self._program_tile(t, r, c))
            parts.append(torch.cat(row, dim=1))
        return torch.cat(parts, dim=0)

    def _program_tile(self, target: Tensor, r: int, c: int) -> Tensor:
        k = r * self.n_col_tiles + c
        if callable(self.cells):
            g = torch.as_tensor(self.cells(target, (r, c)), dtype=torch.float64)
            if g.shape != target.shape:
                raise ValueError(f"cells callable returned shape {tuple(g.shape)} for tile {(r, c)}, "
                                 f"expected {tuple(target.shape)}")
            return g.detach()
        spec = self.cells
        if len(self._devices) <= k:
            import devices
            self._devices.append(devices.make(spec["family"], target.shape, seed=int(spec["seed"]) + k,
                                              preset=spec["preset"], **spec["params"]))
        dev = self._devices[k]
        dev.program(target.to(dev.dtype), verify=bool(spec["verify"]), tolerance=spec["tolerance"],
                    max_pulses=int(spec["max_pulses"]), clip=True)
        return dev.read(float(spec["t_read"])).to(torch.float64).detach()

    def program(self) -> None:
        """Re-program every tile's devices with the present weights (a fresh draw)."""
        if self.cells is None:
            return
        target = self.target_conductances().detach()
        self._key, self._g_real, self._tiles = target.clone(), self._programmed(target), None

    def read_devices(self, t: float) -> None:
        """Re-read every device-spec tile at ``t`` s after programming (drift, relaxation, read noise)."""
        if not isinstance(self.cells, dict):
            raise ValueError("read_devices needs cells given as a device spec dict")
        self.conductances()  # make sure the devices are programmed
        parts = [torch.cat([self._devices[r * self.n_col_tiles + c].read(t).to(torch.float64)
                            for c in range(self.n_col_tiles)], dim=1) for r in range(self.n_row_tiles)]
        self._g_real, self._tiles = torch.cat(parts, dim=0).detach(), None

    def conductances(self) -> Tensor:
        """Conductances (S) used by the circuit: the targets, or the realised ones with the
        targets' gradient (see module docstring)."""
        target = self.target_conductances()
        key = target.detach()
        if self._key is None or self._key.shape != key.shape or not torch.equal(self._key, key):
            self._tiles = None
            self._key = key.clone()
            if self.cells is not None:
                self._g_real = self._programmed(key)
        if self.cells is None:
            return target
        return target + (self._g_real - target).detach()

    def tiles(self) -> list[list[Crossbar]]:
        """The ``n_row_tiles x n_col_tiles`` crossbars (rebuilt with a graph when gradients are on)."""
        g = self.conductances()
        grad = torch.is_grad_enabled() and g.requires_grad
        if not grad and self._tiles is not None:
            return self._tiles
        tiles = [[Crossbar(g[self._tile_slices(r, c)] if grad else g[self._tile_slices(r, c)].detach(),
                           config=self.config) for c in range(self.n_col_tiles)] for r in range(self.n_row_tiles)]
        if not grad:
            self._tiles = tiles
        return tiles

    # ------------------------------------------------------------------ MVM
    def _inputs(self, x) -> tuple[Tensor, bool, torch.dtype]:
        x = x if torch.is_tensor(x) else torch.as_tensor(x, dtype=torch.float64)
        if x.dim() not in (1, 2) or x.shape[-1] != self.in_features or x.shape[0] == 0:
            raise ValueError(f"x must have shape ({self.in_features},) or (batch>=1, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite (no NaN/inf)")
        out_dtype = x.dtype if x.dtype.is_floating_point else torch.float64
        one_d = x.dim() == 1
        return (x.unsqueeze(0) if one_d else x).to(torch.float64), one_d, out_dtype

    def _voltages(self, x: Tensor) -> Tensor:
        """DAC voltages (V), padded to the tiled rows: ``(batch, n_row_tiles·tile_rows)``."""
        v = self.dac(x) if self.dac is not None else x * self.v_scale
        return torch.nn.functional.pad(v, (0, self.n_row_tiles * self.tile_rows - v.shape[1]))

    def mvm(self, x) -> Tensor:
        """Analog ``x @ W``: ``(batch, in_features)`` -> ``(batch, out_features)`` in weight units
        (``(in,)`` -> ``(out,)``), output dtype = input dtype."""
        x, one_d, out_dtype = self._inputs(x)
        v = self._voltages(x)
        tiles = self.tiles()
        scale = self.tia.r_tia * self.v_unit * self.mapping.scale
        blocks, saturation = [], 0.0
        for c in range(self.n_col_tiles):
            acc = None
            for r in range(self.n_row_tiles):
                tile = tiles[r][c]
                v_r = v[:, r * self.tile_rows:(r + 1) * self.tile_rows]
                i = v_r @ tile.transfer_matrix() if self.uses_transfer else tile.solve(v_r)
                y = self.tia(i[:, 0::2] - i[:, 1::2])
                if self.adc is not None:
                    saturation = max(saturation, self.adc.saturation_fraction(y.detach()))
                    y = self.adc(y)
                acc = y / scale if acc is None else acc + y / scale
            blocks.append(acc)
        self.last_adc_saturation = saturation
        out = torch.cat(blocks, dim=1)[:, :self.out_features].to(out_dtype)
        return out[0] if one_d else out

    __call__ = mvm

    def ideal_mvm(self, x) -> Tensor:
        """``x @ W`` without any hardware effect, in the input's dtype."""
        x, one_d, out_dtype = self._inputs(x)
        out = (x @ self.weights.to(torch.float64)).to(out_dtype)
        return out[0] if one_d else out

    def energy(self, x, t_read: float) -> Tensor:
        """Energy (J) of each MVM of the batch ``x``: ``Σ_tiles Σ_rows v·i_in·t_read`` from every
        tile's full circuit solution, plus ``tile_rows`` DAC and ``tile_cols/2`` ADC conversions per
        tile (:func:`xbar.peripherals.mvm_energy`). Returns ``(batch,)`` float64."""
        x, one_d, _ = self._inputs(x)
        with torch.no_grad():
            v = self._voltages(x)
            tiles = self.tiles()
            total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
            for r in range(self.n_row_tiles):
                v_r = v[:, r * self.tile_rows:(r + 1) * self.tile_rows]
                for c in range(self.n_col_tiles):
                    sol = tiles[r][c].full_solution(v_r)
                    total = total + mvm_energy(v_r, sol.i_in, t_read, self.dac, self.adc, self.outputs_per_tile)
        return total[0] if one_d else total

    # ------------------------------------------------------------------ config
    def to_config(self) -> dict:
        """Plain, serialisable description (everything except the weights)."""
        if callable(self.cells):
            raise ValueError("a TiledCrossbar with a callable cells source is not serialisable; use a device spec")
        as_dict = lambda obj: None if obj is None else dataclasses.asdict(obj)  # noqa: E731
        return {"tile_shape": [self.tile_rows, self.tile_cols], "mapping": as_dict(self.mapping),
                "config": as_dict(self.config), "dac": as_dict(self.dac), "adc": as_dict(self.adc),
                "tia": as_dict(self.tia), "cells": None if self.cells is None else dict(self.cells),
                "mode": self.mode, "v_scale": self.v_scale, "clip": self.clip}

    @classmethod
    def from_config(cls, weights, config: dict) -> "TiledCrossbar":
        """Rebuild from :meth:`to_config` output and the weights."""
        cfg = dict(config)
        make = lambda kind, value: None if value is None else kind(**value)  # noqa: E731
        return cls(weights, tuple(cfg["tile_shape"]), make(DifferentialMapping, cfg["mapping"]),
                   make(CrossbarConfig, cfg["config"]), make(DAC, cfg.get("dac")), make(ADC, cfg.get("adc")),
                   make(TIA, cfg.get("tia")), cells=cfg.get("cells"), mode=cfg.get("mode", "auto"),
                   v_scale=cfg.get("v_scale", 0.2), clip=cfg.get("clip", False))

    def __repr__(self) -> str:
        return (f"TiledCrossbar({self.in_features}x{self.out_features} over {self.n_row_tiles}x{self.n_col_tiles} "
                f"tiles of {self.tile_rows}x{self.tile_cols}, {self.config.topology})")
