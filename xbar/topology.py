"""Cell models of the three array topologies: current through one cell vs its voltage.

A *cell* is everything between row node (i, j) and column node (i, j)::

    0T1R:  row --[memory]-- col
    1T1R:  row --[memory]--(m)--[access transistor, gate = word line i]-- col
    1S1R:  row --[memory]--(m)--[selector]-- col

with ``v_cell = v_row - v_col`` (V) and ``i_cell`` (A) flowing from row to column.

Series elimination: both series elements are monotone increasing two-terminal I-V curves
through the origin, so the internal node ``m`` is eliminated per cell by solving the scalar
equation ``I_mem(v_a) = I_ser(v_cell - v_a)`` for ``v_a`` in ``[min(0, v_cell), max(0, v_cell)]``
with safeguarded Newton/bisection (vectorised over all cells). This keeps the global Newton
system at 2*rows*cols unknowns with the same SPD two-layer structure as the linear array
(the cell's differential conductance ``1/(1/g_mem + 1/g_ser)`` plays the role of ``G``),
instead of adding rows*cols internal nodes that would break the line structure the fast
solvers rely on. The result is differentiable: one Newton correction evaluated with autograd
gives the exact implicit derivative.

Element I-V curves (all odd or at least monotone with ``I(0) = 0``):

* selector ``"sinh"``: ``I = I_s sinh(V / V_0)``;
* selector ``"exp"``:  ``I = sign(V) I_s (exp(|V| / V_0) - 1)``;
  with ``NL = I(V_w) / I(V_w / 2)``: sinh gives ``V_0 = V_w / (2 acosh(NL / 2))``, exp gives
  ``V_0 = V_w / (2 ln(NL - 1))`` (both need ``NL > 2``; a linear element has NL = 2);
* transistor ``"linear"``: ``I = V / r_access_on`` (gate on) or ``V / r_access_off`` (off,
  ``inf`` = open);
* transistor ``"ekv"``: EKV long-channel model with the gate overdrive referred to the
  column-side terminal (source), ``I = I_spec [F(v_p/U_T) - F((v_p - V)/U_T)]``,
  ``F(u) = ln^2(1 + e^(u/2))``, ``v_p = (v_gate - V_th)/n``, ``I_spec = 2 n beta U_T^2``.
  Smooth and monotone through weak, moderate and strong inversion, so Newton is safe.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as tnf

from ._errors import ConvergenceError

Tensor = torch.Tensor


# ------------------------------------------------------------------------- element I-V
def selector_v0(kind: str, v_0: float | None, nl: float | None, v_w: float | None) -> float:
    """Selector voltage scale ``V_0`` (V) from either ``v_0`` or ``(NL, V_w)``."""
    if v_0 is not None:
        return v_0
    if kind == "sinh":
        return v_w / (2.0 * math.acosh(nl / 2.0))
    return v_w / (2.0 * math.log(nl - 1.0))


def selector_iv(kind: str, i_s: float, v_0: float, v: Tensor) -> tuple[Tensor, Tensor]:
    """Selector current (A) and slope dI/dV (S)."""
    if kind == "sinh":
        u = v / v_0
        return i_s * torch.sinh(u), (i_s / v_0) * torch.cosh(u)
    e = torch.exp(v.abs() / v_0)
    return torch.sign(v) * i_s * (e - 1.0), (i_s / v_0) * e


def selector_iv_inverse(kind: str, i_s: float, v_0: float, i: Tensor) -> Tensor:
    """Selector voltage (V) that carries the current ``i`` (A): the inverse of :func:`selector_iv`."""
    if kind == "sinh":
        return v_0 * torch.asinh(i / i_s)
    return torch.sign(i) * v_0 * torch.log1p(i.abs() / i_s)


def ekv_iv(v: Tensor, v_gate: Tensor, v_th: float, n: float, beta: float, u_t: float) -> tuple[Tensor, Tensor]:
    """EKV drain current (A) and slope (S) vs drain-source voltage ``v`` (V)."""
    i_spec = 2.0 * n * beta * u_t ** 2
    vp = (v_gate - v_th) / n
    a = tnf.softplus(vp / (2 * u_t))
    b = tnf.softplus((vp - v) / (2 * u_t))
    cur = i_spec * (a * a - b * b)
    slope = (i_spec / u_t) * b * torch.sigmoid((vp - v) / (2 * u_t))
    return cur, slope


# ------------------------------------------------------------------------- memory element
class MemoryElement:
    """The memory device: linear conductances ``g`` (S) or a ``devices`` object's ``current``."""

    def __init__(self, device=None):
        self.device = device

    def iv(self, v: Tensor, g: Tensor | None) -> tuple[Tensor, Tensor]:
        """Current (A), with an autograd graph when ``v`` or ``g`` needs one, and the
        detached slope dI/dV (S; for device objects one backward pass of ``current(v).sum()``,
        exact because each cell's current depends only on its own voltage)."""
        if self.device is None:
            return g * v, g.detach().expand_as(v)
        vv = v.detach().requires_grad_(True)
        with torch.enable_grad():
            cur = self.device.current(vv)
            (slope,) = torch.autograd.grad(cur.sum(), vv)
        if v.requires_grad:
            return self.device.current(v), slope
        return cur.detach(), slope


def any_requires_grad(*ts) -> bool:
    return any(t is not None and t.requires_grad for t in ts)


# ------------------------------------------------------------------------- cell model
class CellModel:
    """``i_cell(v_cell)`` for one topology. ``series`` is None (0T1R or 1T1R folded into an
    effective linear conductance) or a callable ``v -> (I, dI/dV)`` broadcasting like ``v``;
    ``series_inverse`` (optional) maps a current to the series element's voltage (selectors).

    Inner series split (``_split``): the voltage ``v_a`` across the memory element solves a scalar
    monotone equation per cell, on the bracket ``[min(0, v), max(0, v)]``. With the series
    element's inverse I-V the equation is ``phi(v_a) = v_a + v_ser(I_mem(v_a)) - v = 0``, which
    grows like a logarithm even for exponential selectors, so Newton converges in a few steps from
    any start; without it, the current balance ``I_mem(v_a) - I_ser(v - v_a) = 0``. Either way
    Newton is safeguarded as in ``rtsafe`` (Press et al., Numerical Recipes 9.4): a bisection
    replaces any step that leaves the bracket or does not at least halve the step before last, so
    the bracket shrinks at least as fast as bisection (about 110 iterations at most in float64).
    """

    def __init__(self, memory: MemoryElement, series=None, inner_rtol: float = 1e-14, inner_max_iter: int = 200,
                 series_inverse=None):
        self.memory = memory
        self.series = series
        self.series_inverse = series_inverse
        self.inner_rtol = inner_rtol
        self.inner_max_iter = inner_max_iter

    @property
    def is_linear(self) -> bool:
        return self.series is None and self.memory.device is None

    def current(self, v_cell: Tensor, g: Tensor | None) -> Tensor:
        """Differentiable cell current (A)."""
        if self.series is None:
            return self.memory.iv(v_cell, g)[0]
        v_a = self._split(v_cell.detach(), None if g is None else g.detach())
        if v_cell.requires_grad or any_requires_grad(g):
            i_a, s_a = self.memory.iv(v_a, g)
            i_b, s_b = self.series(v_cell - v_a)
            v_a = v_a - (i_a - i_b) / (s_a + s_b)  # implicit-derivative correction (value unchanged)
        return self.memory.iv(v_a, g)[0]

    def current_and_slope(self, v_cell: Tensor, g: Tensor | None) -> tuple[Tensor, Tensor]:
        """Detached current (A) and differential conductance dI/dV (S)."""
        with torch.no_grad():
            if self.series is None:
                i, s = self.memory.iv(v_cell, g)
                return i.detach(), s
            v_a = self._split(v_cell, g)
            i_a, s_a = self.memory.iv(v_a, g)
            _, s_b = self.series(v_cell - v_a)
            return i_a.detach(), s_a * s_b / (s_a + s_b)

    def _phi(self, x: Tensor, v: Tensor, g: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """``(phi, dphi/dx, converged)`` of the inner equation at ``x`` (class docstring)."""
        i_a, s_a = self.memory.iv(x, g)
        i_a = i_a.detach()
        if self.series_inverse is not None:
            v_b = self.series_inverse(i_a)
            _, s_b = self.series(v_b)
            phi = x + v_b - v
            dphi = 1.0 + s_a / s_b
            done = phi.abs() <= self.inner_rtol * (x.abs() + v_b.abs())
            return phi, dphi, done
        i_b, s_b = self.series(v - x)
        phi = i_a - i_b
        return phi, s_a + s_b, phi.abs() <= self.inner_rtol * (i_a.abs() + i_b.abs())

    def _split(self, v: Tensor, g: Tensor | None) -> Tensor:
        """Voltage ``v_a`` (V) across the memory element: safeguarded Newton on the bracket."""
        with torch.no_grad():
            zero = torch.zeros_like(v)
            lo, hi = torch.minimum(v, zero), torch.maximum(v, zero)
            s_a0 = self.memory.iv(zero, g)[1]
            s_b0 = self.series(zero)[1]
            x = v * s_b0 / (s_a0 + s_b0)  # the split of the linearised elements
            step_old = hi - lo  # rtsafe: |step| must halve at least every other iteration
            step = step_old.clone()
            for _ in range(self.inner_max_iter):
                phi, dphi, done = self._phi(x, v, g)
                done = done | (hi - lo <= 4e-16 * v.abs()) | (v == 0)
                if bool(done.all()):
                    return x
                lo = torch.where(phi < 0, x, lo)
                hi = torch.where(phi > 0, x, hi)
                newton = x - phi / dphi
                slow = (2.0 * phi).abs() > (step_old * dphi).abs()
                bad = ~((newton > lo) & (newton < hi)) | ~torch.isfinite(newton) | slow
                x_new = torch.where(bad, 0.5 * (lo + hi), newton)
                step_old, step = step, (x_new - x).abs()
                x = torch.where(done, x, x_new)
            raise ConvergenceError("series-element split", float((phi.abs() / (v.abs() + 1e-300)).max()),
                                   self.inner_max_iter, self.inner_rtol)
