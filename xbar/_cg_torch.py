"""Preconditioned conjugate gradients with all state on the device (torch, any device).

Used for the Schur system of :mod:`xbar._linear` (operator ``S``, preconditioner ``T_q^-1``,
both line solves by parallel cyclic reduction) and for the cell-voltage system of
:mod:`xbar._wire`. Launch efficiency:

* an iteration is a fixed sequence of batched kernels on preallocated buffers (``out=`` /
  in-place), whatever the batch size: the operator's and preconditioner's kernels plus 14 for
  the CG recurrences (for the Schur system ``4 ceil(log2 n) + 23``, i.e. 55 at 256 x 256);
* no host synchronisation inside the loop: converged right-hand sides are frozen on the device
  (their step length is multiplied by a 0/1 mask), and the host reads the largest residual only
  between chunks of iterations whose length is predicted from the observed convergence rate and
  capped at the iterations done so far (three to six reads per solve, at most a few iterations
  run past convergence);
* on CUDA one iteration is captured once into a CUDA graph and replayed (``use_graph``), so an
  iteration costs one launch; a failed capture falls back to eager launches (``mode`` says which).

Each right-hand side is scaled by its largest magnitude first (so that neither its squared norm
nor any later division can underflow or overflow, whatever the units); a right-hand side stops
at ``||r|| <= rtol ||c||``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._errors import ConvergenceError

Tensor = torch.Tensor

_TINY = 1e-300
#: kernels of one iteration besides the operator and the preconditioner
RECURRENCE_OPS = 14


class DeviceCG:
    """CG for a batch of ``B`` right-hand sides of shape ``(B, K, L)`` (module docstring).

    ``matvec(p, out)`` writes ``A p`` into ``out``; ``precond(r, out)`` writes ``M^-1 r``; both
    act on each batch element separately, allocate nothing they keep, and never read the host.
    """

    def __init__(self, matvec: Callable[[Tensor, Tensor], object], precond: Callable[[Tensor, Tensor], object],
                 shape: tuple[int, int, int], like: Tensor, *, rtol: float, max_iter: int, what: str,
                 use_graph: bool = True):
        self.matvec, self.precond = matvec, precond
        B = shape[0]
        self.B, self.rtol, self.max_iter, self.what = B, rtol, max_iter, what
        new = lambda: torch.zeros(shape, dtype=like.dtype, device=like.device)  # noqa: E731
        self.z, self.r, self.p, self.y, self.ap = (new() for _ in range(5))
        vec = lambda: torch.zeros(B, dtype=like.dtype, device=like.device)  # noqa: E731
        self.rz, self.rz_new, self.pap, self.alpha, self.beta, self.rr, self.active = (vec() for _ in range(7))
        self.active_bool = torch.zeros(B, dtype=torch.bool, device=like.device)
        self.tol2 = torch.zeros(B, dtype=like.dtype, device=like.device)  # rtol^2 ||c||^2 (scaled units)
        self.inv_rr0 = torch.zeros(B, dtype=like.dtype, device=like.device)
        self.use_graph = use_graph and like.device.type == "cuda"
        self.graph = None
        self.mode = "eager"
        self.iterations = 0

    def _dot(self, x: Tensor, y: Tensor, out: Tensor) -> None:
        """Batched dot products ``out[b] = x[b] . y[b]`` as one batched matrix product (one kernel)."""
        B = self.B
        torch.bmm(x.view(B, 1, -1), y.view(B, -1, 1), out=out.view(B, 1, 1))

    def _iteration(self) -> None:
        """One CG step on the buffers; device-side only."""
        B, p = self.B, self.p
        self.matvec(p, self.ap)
        self._dot(p, self.ap, self.pap)
        torch.div(self.rz, self.pap.clamp_min_(_TINY), out=self.alpha)
        self.alpha.mul_(self.active)
        a = self.alpha.view(B, 1, 1)
        self.z.addcmul_(a, p)
        self.r.addcmul_(a, self.ap, value=-1.0)
        self.precond(self.r, self.y)
        self._dot(self.r, self.y, self.rz_new)
        self._dot(self.r, self.r, self.rr)
        torch.div(self.rz_new, self.rz.clamp_min_(_TINY), out=self.beta)
        self.rz.copy_(self.rz_new)
        torch.addcmul(self.y, self.beta.view(B, 1, 1), p, out=p)
        torch.gt(self.rr, self.tol2, out=self.active_bool)
        self.active.copy_(self.active_bool)

    def _start(self, c: Tensor) -> Tensor:
        """Initialise from the right-hand side ``c``; returns the per-RHS scale ``max |c|``."""
        B = self.B
        peak = c.reshape(B, -1).abs().amax(1)
        scale = torch.where(peak > 0, peak, torch.ones_like(peak))
        self.z.zero_()
        torch.div(c, scale.view(B, 1, 1), out=self.r)
        self.precond(self.r, self.y)
        self.p.copy_(self.y)
        self._dot(self.r, self.y, self.rz)
        self._dot(self.r, self.r, self.rr)
        torch.mul(self.rr, self.rtol ** 2, out=self.tol2)
        torch.reciprocal(self.rr.clamp_min(_TINY), out=self.inv_rr0).mul_(self.rr > 0)
        torch.gt(self.rr, self.tol2, out=self.active_bool)
        self.active.copy_(self.active_bool)
        return scale

    def _run(self, n: int) -> None:
        if self.use_graph and self.graph is None and n > 1:
            self._capture()
            n -= 1  # the warm-up iteration of the capture was a real one
        for _ in range(n):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._iteration()

    def _capture(self) -> None:
        """Warm up on a side stream (one real iteration), then capture one iteration as a CUDA graph."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self._iteration()
        torch.cuda.current_stream().wait_stream(stream)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._iteration()
        except RuntimeError:  # capture not possible here: keep eager launches
            torch.cuda.synchronize()
            self.use_graph = False
            return
        self.graph, self.mode = graph, "cuda-graph"

    def solve(self, c: Tensor) -> Tensor:
        """``x = A^-1 c`` for ``c`` ``(B, K, L)``; raises :class:`ConvergenceError` past ``max_iter``."""
        scale = self._start(c)
        done, rr_prev, chunk = 0, None, 4
        tol2 = self.rtol ** 2
        while True:
            rr_max = float((self.rr * self.inv_rr0).max())  # the only host read: once per chunk
            if not math.isfinite(rr_max):
                raise ConvergenceError(f"{self.what} (non-finite residual)", rr_max, done, self.rtol)
            if rr_max <= tol2:
                break
            if done >= self.max_iter:
                raise ConvergenceError(self.what, math.sqrt(rr_max), done, self.rtol)
            if rr_prev is not None and 0.0 < rr_max < rr_prev:
                # per-iteration contraction of ||r||^2 over the last chunk; CG accelerates, so the
                # prediction is pessimistic: run 60 % of it and predict again
                rate = (rr_max / rr_prev) ** (1.0 / chunk)
                need = math.log(tol2 / rr_max) / math.log(rate) if rate < 1.0 else 64
                chunk = int(min(max(math.ceil(0.6 * need), 1), max(4, done), 64))  # at most doubling
            chunk = min(chunk, self.max_iter - done)
            rr_prev = rr_max
            self._run(chunk)
            done += chunk
        self.iterations = done
        return self.z * scale.view(self.B, 1, 1)
