"""A large signed weight matrix tiled over fixed-size crossbars with digital partial sums.

Mapping (``W`` is ``(in_features, out_features)``; inputs drive rows, outputs are columns)::

    W  ->  differential pairs  G+ = g_min + s·max(w, 0),  G- = g_min + s·max(-w, 0),  s = mapping.scale (S)
           interleaved in one array: physical column 2k holds G+ of output k, column 2k+1 its G-
    padded with w = 0 (G+ = G- = g_min) to a whole number of tiles of ``tile_rows x tile_cols`` cells

    tile (r, c) = xbar.Crossbar of tile_rows x tile_cols cells, rows r·tile_rows..., outputs c·tile_cols/2...

    x --DAC--> v (V) --tile(r, c)--> i (A) --> i[2k] - i[2k+1] --TIA--> --ADC--> y_rc (V, quantised)
    y[:, c-block] = Σ_r alpha_rc · y_rc / (r_tia · v_unit · s)     digital partial sums over the row tiles

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

The pipeline itself (layout, mapping, DAC/ADC in digital units, circuit weights, per-tile solves)
is :class:`xbar.tiles.TiledArray`, shared with ``training.CrossbarLinear``; device programming is
:class:`xbar.programming.TileDevices` (tile seeds hashed from ``(seed, layer 0, tile, repeat 0)``);
``drift_compensation="global"`` calibrates each tile's weight cells right after programming and
scales the tile's outputs at every later read (:mod:`xbar.drift_compensation`).
"""
from __future__ import annotations

from typing import Callable

import torch

from devices.validation import check_bool, check_choice, check_real, check_time

from .crossbar import Crossbar, CrossbarConfig
from .drift_compensation import GlobalDriftCompensation, make_drift_compensation
from .peripherals import ADC, DAC, TIA, DifferentialMapping, mvm_energy
from .programming import DeviceSpec, TileDevices
from .tiles import TiledArray, TileLayout

Tensor = torch.Tensor

__all__ = ["TiledCrossbar"]

_WINDOW_RTOL = 1e-9


def _tile_shape(tile_shape) -> tuple[int, int]:
    try:
        tr, tc = tile_shape
    except (TypeError, ValueError):
        raise ValueError(f"tile_shape must be a (tile_rows, tile_cols) pair of ints, got {tile_shape!r}") from None
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (tr, tc))
    if not ok or tr < 1 or tc < 2 or tc % 2:
        raise ValueError(f"tile_shape must be (tile_rows >= 1, even tile_cols >= 2) integers (each output uses "
                         f"two interleaved columns), got {tuple(tile_shape)!r}")
    return tr, tc


def check_window(mapping: DifferentialMapping, spec: DeviceSpec, what: str = "mapping") -> None:
    """Refuse a mapping window outside what the devices of ``spec`` can be programmed to."""
    lo, hi = spec.window()
    if mapping.g_min < lo * (1 - _WINDOW_RTOL) or mapping.g_max > hi * (1 + _WINDOW_RTOL):
        raise ValueError(f"{what} window [{mapping.g_min:g}, {mapping.g_max:g}] S lies outside the programmable "
                         f"window [{lo:g}, {hi:g}] S of the {spec.family} devices (preset {spec.preset or 'default'}); "
                         "narrow the window, or change the device itself with params g_min/g_max")


class TiledCrossbar:
    """Signed ``weights (in_features, out_features)`` over ``tile_shape`` crossbars (see module doc).

    Args:
        weights: 2-D tensor (kept by reference: in-place updates of a Parameter are seen).
        tile_shape: ``(tile_rows, tile_cols)`` physical cells per array; ``tile_cols`` even.
        mapping: :class:`DifferentialMapping` (window and weight scale).
        config: :class:`CrossbarConfig` of every tile (default ``CrossbarConfig()``).
        dac, adc, tia: peripherals; ``dac=None``: ideal linear inputs ``v = x·v_scale``;
            ``adc=None``: no output quantisation; ``tia=None``: ``TIA()``.
        cells: None (conductances = targets), a device spec (:class:`xbar.programming.DeviceSpec`
            or its dict ``{"family": "rram", "preset": ..., "seed": 0, "verify": False,
            "tolerance": None, "max_pulses": 100, "t_read": 0.0, "params": {...}}``: each tile a
            ``devices`` array seeded by hashing ``(seed, layer 0, tile, repeat 0)``,
            ``program(target, clip=True)`` then ``read(t_read)``), or a callable
            ``f(target (tile_rows, tile_cols) S, (r, c)) -> conductances`` (not serialisable).
        mode: "auto" (transfer for linear tiles, else solve), "transfer" or "solve".
        v_scale: V per unit input when ``dac`` is None.
        clip: clip weights to ``mapping.w_max`` instead of raising.
        drift_compensation: None, "global" (or a :class:`GlobalDriftCompensation`): per-tile
            global compensation of device-spec cells, calibrated right after programming.
    """

    def __init__(self, weights, tile_shape, mapping: DifferentialMapping, config: CrossbarConfig | None = None,
                 dac: DAC | None = None, adc: ADC | None = None, tia: TIA | None = None, *,
                 cells: dict | DeviceSpec | Callable | None = None, mode: str = "auto", v_scale: float = 0.2,
                 clip: bool = False, drift_compensation: str | GlobalDriftCompensation | None = None):
        w = weights if torch.is_tensor(weights) else torch.as_tensor(weights, dtype=torch.float64)
        if w.dim() != 2 or w.shape[0] == 0 or w.shape[1] == 0 or not w.dtype.is_floating_point:
            raise ValueError(f"weights must be a non-empty 2-D float (in_features, out_features) tensor, "
                             f"got {w.dtype} {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weights must be finite (no NaN/inf)")
        tr, tc = _tile_shape(tile_shape)
        self.array = TiledArray(TileLayout(int(w.shape[0]), int(w.shape[1]), tr, tc), mapping, config,
                                dac=dac, adc=adc, tia=tia, v_scale=v_scale)
        check_choice("mode", mode, ("auto", "transfer", "solve"))
        if mode == "transfer" and not self.array.is_linear:
            raise ValueError(f"mode='transfer' needs linear tiles; topology {self.array.config.topology!r} with these "
                             "options is nonlinear: use mode='solve' or 'auto'")
        if isinstance(cells, dict):
            cells = DeviceSpec.from_dict(cells)
        elif cells is not None and not callable(cells) and not isinstance(cells, DeviceSpec):
            raise ValueError(f"cells must be None, a device spec dict or a callable, got {type(cells).__name__}")
        if isinstance(cells, DeviceSpec):
            check_window(mapping, cells)
        self.drift_compensation = make_drift_compensation(drift_compensation)
        if self.drift_compensation is not None and not isinstance(cells, DeviceSpec):
            raise ValueError("drift_compensation needs programmed devices: give cells as a device spec")
        self.weights = w
        self.cells, self.mode, self.clip = cells, mode, check_bool("clip", clip)
        self.uses_transfer = mode == "transfer" or (mode == "auto" and self.array.is_linear)
        self._key: Tensor | None = None
        self._g_real: Tensor | None = None
        self._alpha: Tensor | None = None
        self._tiles: list[list[Crossbar]] | None = None
        self._devices: TileDevices | None = None
        self.last_adc_saturation = 0.0

    # ------------------------------------------------------------------ shapes and scales
    @property
    def layout(self) -> TileLayout:
        return self.array.layout

    @property
    def mapping(self) -> DifferentialMapping:
        return self.array.mapping

    @property
    def config(self) -> CrossbarConfig:
        return self.array.config

    @property
    def dac(self) -> DAC | None:
        return self.array.dac

    @property
    def adc(self) -> ADC | None:
        return self.array.adc

    @property
    def tia(self) -> TIA:
        return self.array.tia

    @property
    def v_scale(self) -> float:
        return self.array.v_scale

    @property
    def tile_rows(self) -> int:
        return self.layout.tile_rows

    @property
    def tile_cols(self) -> int:
        return self.layout.tile_cols

    @property
    def n_row_tiles(self) -> int:
        return self.layout.n_row_tiles

    @property
    def n_col_tiles(self) -> int:
        return self.layout.n_col_tiles

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def outputs_per_tile(self) -> int:
        return self.layout.outputs_per_tile

    @property
    def v_unit(self) -> float:
        """Volts per unit input."""
        return self.array.v_unit

    # ------------------------------------------------------------------ conductances
    def target_conductances(self) -> Tensor:
        """Interleaved, padded target conductances (S), ``(n_row_tiles·tile_rows, n_col_tiles·tile_cols)``,
        float64 and differentiable w.r.t. the weights."""
        if tuple(self.weights.shape) != (self.layout.rows, self.layout.outs):
            raise ValueError(f"weights changed shape to {tuple(self.weights.shape)}; expected "
                             f"{(self.layout.rows, self.layout.outs)}")
        return self.array.target_conductances(self.weights, clip=self.clip)

    def _programmed(self, target: Tensor) -> Tensor:
        """Realised conductances (S) of the whole padded array for the (detached) targets."""
        if callable(self.cells) and not isinstance(self.cells, DeviceSpec):
            parts = []
            for r in range(self.n_row_tiles):
                row = []
                for c in range(self.n_col_tiles):
                    t = target[self.layout.tile_slices(r, c)].contiguous()
                    g = torch.as_tensor(self.cells(t, (r, c)), dtype=torch.float64, device=t.device)
                    if g.shape != t.shape:
                        raise ValueError(f"cells callable returned shape {tuple(g.shape)} for tile {(r, c)}, "
                                         f"expected {tuple(t.shape)}")
                    row.append(g.detach())
                parts.append(torch.cat(row, dim=1))
            self._alpha = None
            return torch.cat(parts, dim=0)
        if self._devices is None:
            self._devices = TileDevices(self.cells, self.layout, device=target.device)
        self._devices.program(target)
        if self.drift_compensation is not None:  # calibration read of the weight cells right after programming
            self.drift_compensation.calibrate(self.layout.stack(self._devices.read(0.0)),
                                              self.layout.weight_mask(target.device))
        return self._read(None)

    def _read(self, t: float | None) -> Tensor:
        g = self._devices.read(t)
        self._alpha = None if self.drift_compensation is None else \
            self.drift_compensation.factor(self.layout.stack(g))
        return g.detach()

    def program(self) -> None:
        """Re-program every tile's devices with the present weights (a fresh draw)."""
        if self.cells is None:
            return
        target = self.target_conductances().detach()
        self._key, self._g_real, self._tiles = target.clone(), self._programmed(target), None

    def read_devices(self, t: float) -> None:
        """Re-read every device-spec tile at ``t`` s after programming (drift, relaxation, read noise)."""
        if not isinstance(self.cells, DeviceSpec):
            raise ValueError("read_devices needs cells given as a device spec dict")
        t = check_time("t", t)
        self.conductances()  # make sure the devices are programmed
        self._g_real, self._tiles = self._read(t), None

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
        tiles = self.array.crossbars(g if grad else g.detach())
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
        v = self.array.input_codes(x) * self.v_unit
        return torch.nn.functional.pad(v, (0, self.layout.padded_rows - v.shape[1]))

    def mvm(self, x) -> Tensor:
        """Analog ``x @ W``: ``(batch, in_features)`` -> ``(batch, out_features)`` in weight units
        (``(in,)`` -> ``(out,)``), output dtype = input dtype."""
        x, one_d, out_dtype = self._inputs(x)
        codes = self.array.input_codes(x)
        tiles = self.tiles()
        if self.uses_transfer:
            w_eff = self.array.circuit_weights(crossbars=tiles, alpha=self._alpha)
            groups = self.array.partials(codes, w_eff, split=self.array.quantises_outputs)
        else:
            groups = self.array.solve_partials(codes, tiles, self._alpha)
        full_scale = self.array.adc_full_scale()
        if self.array.quantises_outputs:
            self.last_adc_saturation = float(self.array.saturation_fraction([g.detach() for g in groups], full_scale))
        out = self.array.total(self.array.digitise(groups, full_scale)).to(out_dtype)
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
        t_read = check_real("t_read", t_read, low=0.0, low_open=True)
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
        if self.cells is not None and not isinstance(self.cells, DeviceSpec):
            raise ValueError("a TiledCrossbar with a callable cells source is not serialisable; use a device spec")
        d = self.array.describe()
        return {"tile_shape": [self.tile_rows, self.tile_cols], "mapping": d["mapping"], "config": d["config"],
                "dac": d["dac"], "adc": d["adc"], "tia": d["tia"],
                "cells": None if self.cells is None else self.cells.to_dict(), "mode": self.mode,
                "v_scale": self.v_scale, "clip": self.clip,
                "drift_compensation": None if self.drift_compensation is None else self.drift_compensation.name}

    @classmethod
    def from_config(cls, weights, config: dict) -> "TiledCrossbar":
        """Rebuild from :meth:`to_config` output and the weights."""
        cfg = dict(config)
        make = lambda kind, value: None if value is None else kind(**value)  # noqa: E731
        return cls(weights, tuple(cfg["tile_shape"]), make(DifferentialMapping, cfg["mapping"]),
                   make(CrossbarConfig, cfg["config"]), make(DAC, cfg.get("dac")), make(ADC, cfg.get("adc")),
                   make(TIA, cfg.get("tia")), cells=cfg.get("cells"), mode=cfg.get("mode", "auto"),
                   v_scale=cfg.get("v_scale", 0.2), clip=cfg.get("clip", False),
                   drift_compensation=cfg.get("drift_compensation"))

    def __repr__(self) -> str:
        return (f"TiledCrossbar({self.in_features}x{self.out_features} over {self.n_row_tiles}x{self.n_col_tiles} "
                f"tiles of {self.tile_rows}x{self.tile_cols}, {self.config.topology})")
