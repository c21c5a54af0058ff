"""Checks of a crossbar's conductances and input voltages (ValueError naming the parameter)."""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def conductance_tensor(g) -> Tensor:
    """The user's conductance tensor (kept by reference) after shape and dtype checks."""
    if isinstance(g, (str, bytes, bool)):
        raise ValueError(f"conductances must be a 2-D (rows, cols) array of conductances in S, got {g!r}")
    if not torch.is_tensor(g):
        try:
            g = torch.as_tensor(g, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"conductances must be a 2-D (rows, cols) array of numbers in S: {exc}") from None
    if g.dim() != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        raise ValueError(f"conductances must be a non-empty 2-D (rows, cols) array in S, got shape {tuple(g.shape)}")
    if g.dtype == torch.bool or g.is_complex():
        raise ValueError(f"conductances must be real numbers in S, got dtype {g.dtype}")
    return g


#: largest conductance (S) the solvers accept: products of two conductances must not overflow
G_MAX = 1e100


def check_conductance_values(g: Tensor) -> None:
    """Conductances must be finite, >= 0 and <= :data:`G_MAX` S (one pass, one host read)."""
    g = g.detach()
    lo, hi = (float(x) for x in torch.stack(torch.aminmax(g)).tolist())
    if lo >= 0.0 and hi <= G_MAX:  # NaN fails both comparisons
        return
    if not bool(torch.isfinite(g).all()):
        raise ValueError("conductances must be finite (no NaN/inf), in S")
    if lo < 0.0:
        raise ValueError("conductances must be >= 0 S (got negative values)")
    raise ValueError(f"conductances must be <= {G_MAX:g} S (products of conductances must not overflow), "
                     f"got {hi:g} S")


def check_inputs(v_in, v_col_bias, rows: int, cols: int, device) -> tuple[Tensor, Tensor, bool]:
    """``(v (batch, rows), v_col_bias (batch, cols), one_d)`` as float64, finite (V); ``v_col_bias``
    None gives zeros (an expanded view, no allocation)."""
    if isinstance(v_in, (str, bytes, bool)) or (torch.is_tensor(v_in) and v_in.dtype == torch.bool):
        raise ValueError(f"v_in must be a ({rows},) or (batch, {rows}) array of voltages in V, "
                         f"got {v_in!r}")
    try:
        v = v_in if torch.is_tensor(v_in) else torch.as_tensor(v_in, dtype=torch.float64,
                                                                device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"v_in must be an array of voltages in V: {exc}") from None
    if v.dim() not in (1, 2) or v.shape[-1] != rows or v.shape[0] == 0:
        raise ValueError(f"v_in must have shape ({rows},) or (batch>=1, {rows}) in V, got {tuple(v.shape)}")
    if v.is_complex():
        raise ValueError("v_in must be real voltages in V")
    one_d = v.dim() == 1
    v = (v.unsqueeze(0) if one_d else v).to(torch.float64)
    if v_col_bias is None:  # zeros without allocating (batch, cols)
        b = torch.zeros(1, cols, dtype=torch.float64, device=v.device).expand(v.shape[0], cols)
        bounds = torch.stack(torch.aminmax(v.detach()))
    else:
        if isinstance(v_col_bias, (str, bytes, bool)) or (torch.is_tensor(v_col_bias)
                                                           and v_col_bias.dtype == torch.bool):
            raise ValueError(f"v_col_bias must be an array of voltages in V, got {v_col_bias!r}")
        try:
            b = torch.as_tensor(v_col_bias, dtype=torch.float64, device=v.device) \
                if not torch.is_tensor(v_col_bias) else v_col_bias.to(torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"v_col_bias must be an array of voltages in V: {exc}") from None
        try:
            b = torch.broadcast_to(b, (v.shape[0], cols))
        except RuntimeError as exc:
            raise ValueError(f"v_col_bias must broadcast to (batch, {cols}), got {tuple(b.shape)}") from exc
        bounds = torch.cat([torch.stack(torch.aminmax(v.detach())), torch.stack(torch.aminmax(b.detach()))])
    if not all(math.isfinite(x) for x in bounds.tolist()):  # one pass per array, one host read
        name = "v_in" if not bool(torch.isfinite(v).all()) else "v_col_bias"
        raise ValueError(f"{name} must be finite (no NaN/inf), in V")
    return v, b, one_d
