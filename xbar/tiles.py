r"""The tiled-array core: a signed weight matrix on fixed-size differential crossbars.

One pipeline, used by :class:`xbar.tiling.TiledCrossbar` (circuit-level MVMs, float64) and by the
training layers ``training.CrossbarLinear`` / ``CrossbarConv2d`` (float32, differentiable)::

    W (rows, outs)  ->  pairs  G+ = g_min + s·max(w, 0),  G- = g_min + s·max(-w, 0)      (DifferentialMapping)
                        interleaved: physical column 2k holds G+ of output k, 2k+1 its G-
                        padded with w = 0 (both at g_min) to whole tiles of tile_rows x tile_cols cells

    x --DAC--> x_q (input units, V = x_q·v_unit) --tile (r, c)--> partial_rc = x_q[r] @ W_eff[r, c]
      --TIA, ADC (per tile, in output units)--> y = Σ_r partial_rc          (digital partial sums)

Everything runs in *digital units*: inputs in input units (the DAC's ``digital`` realisation),
outputs in weight × input units; a tile's physical output voltage is ``partial · volts_per_output``
with ``volts_per_output = r_tia · v_unit · s`` (V per output unit, :attr:`TiledArray.volts_per_output`),
so an ADC of full scale ``v_range`` (V) acts on ``full_scale = v_range / volts_per_output``
output units (:meth:`xbar.ADC.convert`). ``W_eff`` is what a tile realises:

* the weights themselves (ideal) or ``(G+ - G-)/s`` of realised conductances (devices, noise);
* the exact circuit of linear tiles: ``W_eff[r, c] = (A_rc[:, 0::2] - A_rc[:, 1::2]) / s`` from
  the tile's transfer matrix ``A_rc`` (S, :meth:`xbar.Crossbar.transfer_matrix`), IR drop and
  sneak paths included (:meth:`TiledArray.circuit_weights`; only the used block is computed when
  gradients are not needed, :func:`used_transfer`);
* nonlinear tiles (1S1R, EKV 1T1R) act per input: :meth:`TiledArray.solve_partials` solves
  every tile with Newton for the batch.

A per-tile factor ``alpha`` (drift compensation, :mod:`xbar.drift_compensation`) multiplies a
tile's outputs. Padding: unused rows are driven at 0 V and unused cells sit at ``g_min``, so the
edge tiles load their wires like full ones.

Every tensor follows the device of its inputs (no host round trips in the MVM path).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from devices.validation import check_int, check_real

from .crossbar import Crossbar, CrossbarConfig
from .peripherals import ADC, DAC, TIA, DifferentialMapping

Tensor = torch.Tensor

__all__ = ["TileLayout", "TiledArray", "used_transfer"]


@dataclass(frozen=True)
class TileLayout:
    """Geometry of ``rows x outs`` signed weights on ``tile_rows x tile_cols`` differential tiles
    (``tile_cols`` even: each output uses two adjacent columns)."""

    rows: int
    outs: int
    tile_rows: int
    tile_cols: int

    def __post_init__(self):
        check_int("rows", self.rows, low=1)
        check_int("outs", self.outs, low=1)
        check_int("tile_rows", self.tile_rows, low=1)
        check_int("tile_cols", self.tile_cols, low=2)
        if self.tile_cols % 2:
            raise ValueError(f"tile_cols must be even (each output uses a pair of columns), got {self.tile_cols}")

    @property
    def outputs_per_tile(self) -> int:
        return self.tile_cols // 2

    @property
    def n_row_tiles(self) -> int:
        return -(-self.rows // self.tile_rows)

    @property
    def n_col_tiles(self) -> int:
        return -(-self.outs // self.outputs_per_tile)

    @property
    def n_tiles(self) -> int:
        return self.n_row_tiles * self.n_col_tiles

    @property
    def padded_rows(self) -> int:
        return self.n_row_tiles * self.tile_rows

    @property
    def padded_outs(self) -> int:
        return self.n_col_tiles * self.outputs_per_tile

    def tile_indices(self) -> list[tuple[int, int]]:
        """``(r, c)`` of every tile, row-major."""
        return [(r, c) for r in range(self.n_row_tiles) for c in range(self.n_col_tiles)]

    def tile_slices(self, r: int, c: int) -> tuple[slice, slice]:
        """Rows and physical columns of tile ``(r, c)`` in the padded array."""
        return (slice(r * self.tile_rows, (r + 1) * self.tile_rows),
                slice(c * self.tile_cols, (c + 1) * self.tile_cols))

    def used(self, r: int, c: int) -> tuple[int, int]:
        """Rows and physical columns of tile ``(r, c)`` that hold weights (a top-left block)."""
        return (min(self.tile_rows, self.rows - r * self.tile_rows),
                min(self.tile_cols, 2 * self.outs - c * self.tile_cols))

    def pad(self, w: Tensor) -> Tensor:
        """``(rows, outs)`` weights padded with zeros to ``(padded_rows, padded_outs)``."""
        return F.pad(w, (0, self.padded_outs - w.shape[1], 0, self.padded_rows - w.shape[0]))

    @staticmethod
    def interleave(g_pos: Tensor, g_neg: Tensor) -> Tensor:
        """``(n, k)`` pairs -> ``(n, 2k)`` with G+ of output j on column 2j and G- on 2j+1."""
        return torch.stack((g_pos, g_neg), dim=-1).reshape(g_pos.shape[0], 2 * g_pos.shape[1])

    def stack(self, g: Tensor) -> Tensor:
        """Padded ``(padded_rows, 2·padded_outs)`` array -> ``(n_row_tiles, n_col_tiles, tile_rows,
        tile_cols)`` view of its tiles."""
        return g.reshape(self.n_row_tiles, self.tile_rows, self.n_col_tiles, self.tile_cols).transpose(1, 2)

    def unstack(self, tiles: Tensor) -> Tensor:
        """Inverse of :meth:`stack`."""
        return tiles.transpose(1, 2).reshape(self.padded_rows, 2 * self.padded_outs)

    def weight_mask(self, device=None) -> Tensor:
        """Bool ``(n_row_tiles, n_col_tiles, tile_rows, tile_cols)``: True on the weight cells
        (not the padding)."""
        mask = torch.zeros(self.padded_rows, 2 * self.padded_outs, dtype=torch.bool, device=device)
        mask[:self.rows, :2 * self.outs] = True
        return self.stack(mask)

    def per_weight(self, values: Tensor) -> Tensor:
        """Per-tile ``values (n_row_tiles, n_col_tiles)`` -> ``(rows, outs)``: each weight gets the
        value of the tile that holds it."""
        full = values.repeat_interleave(self.tile_rows, 0).repeat_interleave(self.outputs_per_tile, 1)
        return full[:self.rows, :self.outs]


def used_transfer(g_tile: Tensor, config: CrossbarConfig, rows_used: int, cols_used: int) -> Tensor:
    """The block ``A[:rows_used, :cols_used]`` (S) of a linear tile's transfer matrix — all a
    partly used tile needs (padded rows are driven at 0 V, padded columns are not read).

    Very few used rows: one solve per used row with a unit input (``A[i, :]``). Very few used
    columns: reciprocity of the SPD nodal system — ``A[i, j]`` equals the current drawn back through
    row source ``i`` (held at 0 V) when column ``j``'s sense end is driven at 1 V, i.e.
    ``A[:, j] = -i_in`` of that solution. Otherwise (more than 1/8 of the tile) the whole matrix
    by the block sweep, which is cheaper than that many solves.
    """
    rows, cols = g_tile.shape
    xb = Crossbar(g_tile, config=config)
    if 8 * min(rows_used, cols_used) > min(rows, cols):
        return xb.transfer_matrix()[:rows_used, :cols_used]
    eye_kw = {"dtype": torch.float64, "device": g_tile.device}
    if rows_used <= cols_used:
        return xb.solve(torch.eye(rows, **eye_kw)[:rows_used])[:, :cols_used]
    sol = xb.full_solution(torch.zeros(cols_used, rows, **eye_kw), v_col_bias=torch.eye(cols, **eye_kw)[:cols_used])
    return -sol.i_in.T[:rows_used]


class TiledArray:
    """The shared pipeline of a tiled differential array (module docstring).

    Args:
        layout: :class:`TileLayout`; mapping: :class:`DifferentialMapping` (window, weight scale).
        config: :class:`CrossbarConfig` of every tile (default ``CrossbarConfig()``).
        dac: input DAC, or None (inputs used as given, ``v_scale`` V per unit input);
        adc: output ADC of every tile, or None; tia: sense amplifier (default ``TIA()``).
        v_scale: V per unit input without a DAC.
    """

    def __init__(self, layout: TileLayout, mapping: DifferentialMapping, config: CrossbarConfig | None = None, *,
                 dac: DAC | None = None, adc: ADC | None = None, tia: TIA | None = None, v_scale: float = 0.2):
        if not isinstance(layout, TileLayout):
            raise ValueError(f"layout must be a TileLayout, got {type(layout).__name__}")
        if not isinstance(mapping, DifferentialMapping):
            raise ValueError(f"mapping must be a DifferentialMapping, got {type(mapping).__name__}")
        config = CrossbarConfig() if config is None else config
        if not isinstance(config, CrossbarConfig):
            raise ValueError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        config.validate()
        for name, obj, cls in (("dac", dac, DAC), ("adc", adc, ADC), ("tia", tia, TIA)):
            if obj is not None and not isinstance(obj, cls):
                raise ValueError(f"{name} must be a {cls.__name__} or None, got {type(obj).__name__}")
        self.layout, self.mapping, self.config = layout, mapping, config
        self.dac, self.adc, self.tia = dac, adc, (TIA() if tia is None else tia)
        self.v_scale = check_real("v_scale", v_scale, low=0.0, low_open=True)
        self.is_linear = Crossbar(torch.ones(1, 1, dtype=torch.float64), config=config).is_linear

    # ------------------------------------------------------------------ scales
    @property
    def v_unit(self) -> float:
        """Volts per unit input."""
        return self.dac.v_unit if self.dac is not None else self.v_scale

    @property
    def volts_per_output(self) -> float:
        """TIA output voltage (V) per output unit of one tile: ``r_tia · v_unit · s``."""
        return self.tia.r_tia * self.v_unit * self.mapping.scale

    @property
    def quantises_outputs(self) -> bool:
        return self.adc is not None and not self.adc.ideal

    def adc_full_scale(self) -> float | None:
        """The ADC's full scale in output units (None without an ADC)."""
        return None if self.adc is None else self.adc.v_range / self.volts_per_output

    # ------------------------------------------------------------------ weights <-> conductances
    def target_conductances(self, w: Tensor, *, padded: bool = True, clip: bool = False) -> Tensor:
        """Interleaved pair conductances (S, float64) of ``w (rows, outs)``: the padded array
        ``(padded_rows, 2·padded_outs)`` or only the weight cells ``(rows, 2·outs)``."""
        w = w.to(torch.float64)
        w = self.layout.pad(w) if padded else w
        g_pos, g_neg = self.mapping.to_conductances(w, clip=clip)
        return self.layout.interleave(g_pos, g_neg)

    def weights_from_conductances(self, g: Tensor) -> Tensor:
        """Weights ``(rows, outs)`` held by interleaved conductances ``g`` (padded or weight cells only)."""
        w = (g[:, 0::2] - g[:, 1::2]) / self.mapping.scale
        return w[:self.layout.rows, :self.layout.outs]

    def embed(self, g_used: Tensor) -> Tensor:
        """Weight-cell conductances ``(rows, 2·outs)`` placed in a padded array whose padding sits at g_min."""
        lay = self.layout
        g = torch.full((lay.padded_rows, 2 * lay.padded_outs), self.mapping.g_min, dtype=g_used.dtype,
                       device=g_used.device)
        g[:lay.rows, :2 * lay.outs] = g_used
        return g

    # ------------------------------------------------------------------ circuit
    def crossbars(self, g: Tensor) -> list[list[Crossbar]]:
        """One :class:`Crossbar` per tile of the padded conductances ``g`` (S; keeps their graph)."""
        lay = self.layout
        return [[Crossbar(g[lay.tile_slices(r, c)], config=self.config) for c in range(lay.n_col_tiles)]
                for r in range(lay.n_row_tiles)]

    def circuit_weights(self, g: Tensor | None = None, *, crossbars=None, exact: bool = False,
                        alpha: Tensor | None = None) -> Tensor:
        """``W_eff (rows, outs)`` (float64) of the exact circuit of linear tiles with padded
        conductances ``g`` (S) or prebuilt ``crossbars``; ``exact=True`` keeps the graph through
        whole transfer matrices (the solver's adjoint), else only the used block of each tile
        is computed (:func:`used_transfer`). ``alpha (n_row_tiles, n_col_tiles)`` scales each tile."""
        if not self.is_linear:
            raise ValueError(f"circuit weights need linear tiles; topology {self.config.topology!r} with these options "
                             "is nonlinear: use solve_partials")
        lay = self.layout
        cols = []
        for c in range(lay.n_col_tiles):
            blocks = []
            for r in range(lay.n_row_tiles):
                n_r, n_c = lay.used(r, c)
                if crossbars is not None:
                    a = crossbars[r][c].transfer_matrix()
                elif exact:
                    a = Crossbar(g[lay.tile_slices(r, c)], config=self.config).transfer_matrix()
                else:
                    a = used_transfer(g[lay.tile_slices(r, c)], self.config, n_r, n_c)
                block = (a[:n_r, 0:n_c:2] - a[:n_r, 1:n_c:2]) / self.mapping.scale
                blocks.append(block if alpha is None else block * alpha[r, c])
            cols.append(torch.cat(blocks, dim=0))
        return torch.cat(cols, dim=1)

    # ------------------------------------------------------------------ MVM in digital units
    def input_codes(self, x: Tensor) -> Tensor:
        """The inputs the DAC realises (input units); ``x`` itself without a DAC."""
        return x if self.dac is None else self.dac.digital(x)

    def partials(self, x: Tensor, w: Tensor, bias: Tensor | None = None, *, bias_input: float = 1.0,
                 split: bool = True) -> list[Tensor]:
        """Per-tile partial outputs of ``x (batch, k) @ w (k, outs)``, plus a bias row of weights
        ``bias (outs,)`` driven at ``bias_input`` (the row after the ``k`` input rows; ``k + 1 =
        rows``), as a list of groups of shape ``(tiles_in_group, outs, batch)`` (outputs first:
        the layout in which every matmul below reads ``w`` and ``x`` through strided views, with no
        padding or transposing copies, and returns gradients in the layout of a ``(outs, k)``
        weight, as ``nn.Linear`` does), in row-tile order: the row tiles holding only input rows
        in one batched matmul, then the last, partly used tile. ``split=False``: the digital sum
        only, one group ``(1, outs, batch)`` (one matmul; no ADC between the tiles)."""
        if not split or self.layout.n_row_tiles == 1:
            y = x @ w if bias is None else torch.addmm(bias, x, w, beta=bias_input)
            return [y.t()[None]]
        tr, (n, k), outs = self.layout.tile_rows, x.shape, w.shape[1]
        full, rest = divmod(k, tr)
        w_t, x_t = w.t(), x.t()  # (outs, k), (k, batch)
        if rest:
            (w_full, w_rest), (x_full, x_rest) = w_t.split([full * tr, rest], 1), x_t.split([full * tr, rest], 0)
        else:
            w_full, x_full = w_t, x_t
        groups = []
        if full:
            groups.append(torch.bmm(w_full.reshape(outs, full, tr).transpose(0, 1), x_full.reshape(full, tr, n)))
        if rest and bias is not None:
            groups.append(torch.addmm(bias[:, None], w_rest, x_rest, beta=bias_input)[None])
        elif rest:
            groups.append((w_rest @ x_rest)[None])
        elif bias is not None:  # a tile holding only the bias row
            groups.append((bias * bias_input)[:, None].expand(outs, n)[None])
        return groups

    def solve_partials(self, x: Tensor, crossbars, alpha: Tensor | None = None) -> list[Tensor]:
        """Partial outputs ``[(n_row_tiles, outs, batch)]`` (float64, output units) of the inputs
        ``x (batch, rows)`` (input units) by solving every tile for the batch (nonlinear tiles, or
        ``solve`` mode); differentiable through the solver."""
        lay = self.layout
        v = F.pad(x.to(torch.float64), (0, lay.padded_rows - x.shape[1])) * self.v_unit
        per_unit = self.v_unit * self.mapping.scale
        out = []
        for r in range(lay.n_row_tiles):
            v_r = v[:, r * lay.tile_rows:(r + 1) * lay.tile_rows]
            row = []
            for c in range(lay.n_col_tiles):
                i = crossbars[r][c].solve(v_r)
                y = (i[:, 0::2] - i[:, 1::2]) / per_unit
                row.append(y if alpha is None else y * alpha[r, c])
            out.append(torch.cat(row, dim=1)[:, :lay.outs])
        return [torch.stack(out).transpose(1, 2)]

    @staticmethod
    def peak(groups: list[Tensor]) -> Tensor:
        """Largest |partial output| of all groups (0-d tensor, no host synchronisation)."""
        peaks = []
        for g in groups:
            lo, hi = torch.aminmax(g.detach())
            peaks += [hi, -lo]
        return torch.stack(peaks).amax()

    def digitise(self, groups: list[Tensor], full_scale) -> list[Tensor]:
        """Every tile's partial output through the ADC of full scale ``full_scale`` (output units;
        a number or a 0-d tensor); unchanged without a (non-ideal) ADC."""
        if not self.quantises_outputs:
            return groups
        return [self.adc.convert(g, full_scale) for g in groups]

    @staticmethod
    def total(groups: list[Tensor]) -> Tensor:
        """The digital sum over the row tiles, ``(batch, outs)``."""
        out = None
        for g in groups:
            part = g[0] if g.shape[0] == 1 else g.sum(0)
            out = part if out is None else out + part
        return out.t()

    def saturation_fraction(self, groups: list[Tensor], full_scale) -> Tensor:
        """Fraction (0-d tensor) of the conversions of the partial outputs beyond the ADC's rails."""
        if not self.quantises_outputs:
            return groups[0].new_zeros(())
        lo = -full_scale if self.adc.signed else 0.0
        hits = sum(((g > full_scale) | (g < lo)).sum() for g in groups)
        return hits / sum(g.numel() for g in groups)

    def replace(self, **changes) -> "TiledArray":
        """A copy with some constructor arguments changed."""
        kw = {"dac": self.dac, "adc": self.adc, "tia": self.tia, "v_scale": self.v_scale, **changes}
        layout = kw.pop("layout", self.layout)
        mapping = kw.pop("mapping", self.mapping)
        config = kw.pop("config", self.config)
        return TiledArray(layout, mapping, config, **kw)

    def describe(self) -> dict:
        """Plain description of the array's options."""
        as_dict = lambda obj: None if obj is None else dataclasses.asdict(obj)  # noqa: E731
        return {"layout": as_dict(self.layout), "mapping": as_dict(self.mapping), "config": as_dict(self.config),
                "dac": as_dict(self.dac), "adc": as_dict(self.adc), "tia": as_dict(self.tia), "v_scale": self.v_scale}
