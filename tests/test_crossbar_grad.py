"""Gradients: exact adjoint (gradcheck) and straight-through ideal mode."""
from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from xbar.crossbar import Crossbar

F64 = torch.float64


def leaves(seed=0, rows=3, cols=4, batch=2):
    gen = torch.Generator().manual_seed(seed)
    g = (1e-3 + 1e-2 * torch.rand(rows, cols, dtype=F64, generator=gen)).requires_grad_()
    v = torch.rand(batch, rows, dtype=F64, generator=gen).requires_grad_()
    return v, g


CASES = [
    dict(r_row=2.0, r_col=3.0),
    dict(r_row=2.0, r_col=3.0, method="cg"),
    dict(r_row=2.0, r_col=3.0, method="direct", row_drive="both", col_sense="both"),
    dict(r_row=0.0, r_col=3.0, r_sense=0.0),
    dict(r_row=2.0, r_col=3.0, topology="1T1R", r_access_on=50.0),
    dict(r_row=2.0, r_col=3.0, topology="1S1R", selector_i_s=1e-4, selector_v_0=0.2),
    dict(r_row=2.0, r_col=3.0, topology="1S1R", selector="exp", selector_i_s=1e-4, selector_nl=10.0,
         selector_v_w=1.0, selector_v_0=None),
    dict(r_row=2.0, r_col=3.0, topology="1T1R", transistor="ekv", mos_beta=1e-2),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_gradcheck_exact(kw):
    v, g = leaves()
    assert gradcheck(lambda v, g: Crossbar(g, **kw).solve(v), (v, g))


def test_gradcheck_column_bias_and_full_solution():
    v, g = leaves(1)
    b = (0.1 * torch.rand(2, 4, dtype=F64, generator=torch.Generator().manual_seed(3))).requires_grad_()
    assert gradcheck(lambda v, b, g: Crossbar(g, topology="1S1R", selector_i_s=1e-4).solve(v, v_col_bias=b), (v, b, g))
    assert gradcheck(lambda v, g: Crossbar(g, r_row=1.0).full_solution(v).power, (v, g))


def test_gradcheck_transfer_matrix():
    _, g = leaves(2)
    assert gradcheck(lambda g: Crossbar(g, r_row=1.0, r_col=2.0).transfer_matrix(), (g,))


def test_transfer_path_gradient_wrt_inputs_is_exact():
    v, g = leaves(3, batch=8)
    xb = Crossbar(g.detach(), r_row=1.0, r_col=2.0)
    xb.transfer_matrix()
    assert gradcheck(lambda v: xb.solve(v), (v,))


def test_ideal_mode_backward_is_ideal_crossbar():
    v, g = leaves(4)
    out = Crossbar(g, r_row=5.0, r_col=5.0, grad_mode="ideal").solve(v)
    ref = Crossbar(g.detach(), r_row=5.0, r_col=5.0).solve(v.detach())
    torch.testing.assert_close(out.detach(), ref)
    w = torch.randn_like(out)
    gv, gg = torch.autograd.grad((out * w).sum(), (v, g))
    torch.testing.assert_close(gv, w @ g.detach().T)
    torch.testing.assert_close(gg, v.detach().T @ w)
