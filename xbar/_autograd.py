"""Exact gradients of the crossbar solve by the implicit function theorem (adjoint method).

At the solution the free node voltages ``x`` satisfy ``F(x, theta) = 0`` (KCL), with
``theta = (v_in, v_col_bias, g)``. Hence::

    dx/dtheta = -J^-1 dF/dtheta,   J = dF/dx  (the nodal matrix at the solution, SPD)
    dL/dtheta = -(dF/dtheta)^T lambda,   J lambda = dL/dx   (J symmetric: same solver)

For a linear cell ``F`` contains ``G_ij (x_r,ij - x_c,ij)`` at both nodes, so this is
``dL/dG_ij = -(lambda_r,ij - lambda_c,ij)(x_r,ij - x_c,ij)``. ``dF/dtheta`` is taken by
torch autograd on the residual function, so every cell model and boundary option gets its
exact gradient from one code path. The output currents are computed from ``x`` outside this
Function with ordinary autograd (their direct dependence on ``theta`` is handled there).
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


class NodeSolve(torch.autograd.Function):
    """``(x_p, x_q, u) = solve(v_in, v_col_bias, g)`` with an adjoint backward.

    ``u`` is the cell voltage ``x_p - x_q`` as the solver computed it (possibly more accurate than
    the difference); it is returned as a non-differentiable value (its derivative is that of
    ``x_p - x_q``, which the caller takes from the first two outputs).
    ``engine`` provides ``nodes(v_in, v_bias, g)`` (forward solve, no graph, returns
    ``(x_p, x_q, u)``),
    ``adjoint(x_p, x_q, g, r_p, r_q)`` (``J^-1 r`` with zero sources) and
    ``residual(x_p, x_q, v_in, v_bias, g)`` (differentiable KCL residual).
    """

    @staticmethod
    def forward(ctx, engine, v_in: Tensor, v_bias: Tensor, g: Tensor):
        x_p, x_q, u = engine.nodes(v_in.detach(), v_bias.detach(), g.detach())
        ctx.engine = engine
        ctx.save_for_backward(v_in, v_bias, g, x_p, x_q)
        ctx.mark_non_differentiable(u)
        return x_p, x_q, u

    @staticmethod
    def backward(ctx, grad_p: Tensor, grad_q: Tensor, grad_u: Tensor | None = None):
        v_in, v_bias, g, x_p, x_q = ctx.saved_tensors
        engine = ctx.engine
        if grad_p is None:
            grad_p = torch.zeros_like(x_p)
        if grad_q is None:
            grad_q = torch.zeros_like(x_q)
        lam_p, lam_q = engine.adjoint(x_p, x_q, g.detach(), grad_p, grad_q)
        wanted = ctx.needs_input_grad[1:]
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(need) for t, need in zip((v_in, v_bias, g), wanted)]
            f_p, f_q = engine.residual(x_p, x_q, *leaves)
            targets = [t for t, need in zip(leaves, wanted) if need]
            grads = torch.autograd.grad((f_p, f_q), targets, (-lam_p, -lam_q), allow_unused=True) if targets else []
        out, it = [], iter(grads)
        for t, need in zip(leaves, wanted):
            gr = next(it) if need else None
            out.append(torch.zeros_like(t) if need and gr is None else gr)
        return (None, *out)
