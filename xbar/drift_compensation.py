r"""Drift compensation of programmed arrays: one strategy object shared by every tiled path.

Global drift compensation (Joshi et al., Nat. Commun. 11, 2473 (2020); IBM aihwkit
``GlobalDriftCompensation``): right after programming, the chip stores a calibration read of
each array — the summed conductance of its weight cells, which an all-ones input reads as the
summed column current. At inference time ``t`` it reads the same sum again and scales that
array's digital outputs by ::

    alpha = Σ_cells G_ref / Σ_cells G(t)          (one factor per array / tile)

The sums run over the *weight cells* given by ``mask`` only: the padding of a partly used tile
sits at ``g_min`` where PCM drifts fastest (ν ≈ 0.1), and including it over-corrects (by ~40 %
after 1 year for a 120 → 3 layer on a 128 × 128 tile).

Tensors are stacks of arrays ``(..., rows, cols)``: every leading index is one tile with its own
factor (``(n_row_tiles, n_col_tiles, tile_rows, tile_cols)`` for :mod:`xbar.tiles`). The factor
multiplies the array's outputs; for the linear MVM that is the same as scaling the conductances
(:meth:`apply`), while in an IR-drop circuit the factor scales the solved outputs (the wires see
the drifted conductances, as on the chip).
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["GlobalDriftCompensation", "DRIFT_COMPENSATIONS", "make_drift_compensation"]


class GlobalDriftCompensation:
    """Per-tile global drift compensation (module docstring). ``calibrate`` once after
    programming, then ``factor``/``apply`` at every inference time."""

    name = "global"

    def __init__(self):
        self.reference: Tensor | None = None
        self.mask: Tensor | None = None

    @property
    def calibrated(self) -> bool:
        return self.reference is not None

    def _masked_sum(self, g: Tensor) -> Tensor:
        cells = g if self.mask is None else g * self.mask.to(g.dtype)
        return cells.sum((-2, -1))

    def calibrate(self, g_reference: Tensor, mask: Tensor | None = None) -> "GlobalDriftCompensation":
        """Store the calibration read ``g_reference`` (S, ``(..., rows, cols)``) of the cells where
        ``mask`` (bool, broadcastable; None = every cell) is true."""
        if g_reference.dim() < 2:
            raise ValueError(f"g_reference must be a (..., rows, cols) stack of arrays, got shape "
                             f"{tuple(g_reference.shape)}")
        self.mask = None if mask is None else mask.to(device=g_reference.device, dtype=torch.bool)
        self.reference = self._masked_sum(g_reference.detach())
        return self

    def factor(self, g_t: Tensor) -> Tensor:
        """``alpha`` per array (shape ``g_t.shape[:-2]``) for the read ``g_t`` (S); 1 for an array
        whose cells read 0 S."""
        if self.reference is None:
            raise ValueError("drift compensation is not calibrated: call calibrate(g_reference, mask) after programming")
        total = self._masked_sum(g_t.detach())
        ref = self.reference.to(device=total.device, dtype=total.dtype)
        return torch.where(total > 0, ref / torch.where(total > 0, total, torch.ones_like(total)),
                           torch.ones_like(total))

    def apply(self, g_t: Tensor) -> Tensor:
        """``g_t`` with every array scaled by its factor (the linear-MVM equivalent of scaling its outputs)."""
        return g_t * self.factor(g_t)[..., None, None]

    def to(self, device) -> "GlobalDriftCompensation":
        """Move the stored calibration to ``device`` (in place; returns self)."""
        if self.reference is not None:
            self.reference = self.reference.to(device)
        if self.mask is not None:
            self.mask = self.mask.to(device)
        return self

    def __repr__(self) -> str:
        state = "calibrated" if self.calibrated else "not calibrated"
        return f"GlobalDriftCompensation({state})"


#: strategies by their config name (``None`` = no compensation)
DRIFT_COMPENSATIONS = {"global": GlobalDriftCompensation}


def make_drift_compensation(value) -> GlobalDriftCompensation | None:
    """A fresh strategy from a config value: ``None``/``False`` (off), ``True``/``"global"``, or a
    strategy instance (used as is)."""
    if value is None or value is False:
        return None
    if value is True:
        return GlobalDriftCompensation()
    if isinstance(value, str) and value in DRIFT_COMPENSATIONS:
        return DRIFT_COMPENSATIONS[value]()
    if isinstance(value, GlobalDriftCompensation):
        return value
    raise ValueError(f"drift_compensation must be None, a bool, one of {sorted(DRIFT_COMPENSATIONS)} or a "
                     f"GlobalDriftCompensation, got {value!r}")
