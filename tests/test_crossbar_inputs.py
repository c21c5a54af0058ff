"""Bad input raises ValueError naming the parameter; hypothesis fuzzing of the linear solver."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xbar.crossbar import Crossbar

F64 = torch.float64
G = torch.full((3, 4), 1e-4, dtype=F64)


@pytest.mark.parametrize("bad, name", [
    (torch.tensor([[1e-4, float("nan")]], dtype=F64), "conductances"),
    (torch.tensor([[1e-4, float("inf")]], dtype=F64), "conductances"),
    (torch.tensor([[1e-4, -1e-6]], dtype=F64), "conductances"),
    (torch.zeros(0, 3, dtype=F64), "conductances"),
    (torch.ones(3, dtype=F64), "conductances"),
])
def test_bad_conductances(bad, name):
    with pytest.raises(ValueError, match=name):
        Crossbar(bad)


@pytest.mark.parametrize("field", ["r_row", "r_col", "r_source", "r_sense"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_resistances(field, value):
    with pytest.raises(ValueError, match=field):
        Crossbar(G, **{field: value})


@pytest.mark.parametrize("kw, name", [
    (dict(topology="2T2R"), "topology"), (dict(row_drive="middle"), "row_drive"),
    (dict(col_sense="none"), "col_sense"), (dict(method="qr"), "method"), (dict(grad_mode="fd"), "grad_mode"),
    (dict(r_access_on=0.0), "r_access_on"), (dict(selector_nl=1.5, selector_v_w=1.0), "selector_nl"),
    (dict(selector_nl=10.0), "selector_nl"), (dict(newton_max_iter=0), "newton_max_iter"),
    (dict(cg_rtol=0.0), "cg_rtol"),
])
def test_bad_options(kw, name):
    with pytest.raises(ValueError, match=name):
        Crossbar(G, **kw)


@pytest.mark.parametrize("v, name", [
    (torch.ones(4, dtype=F64), "v_in"), (torch.ones(2, 5, dtype=F64), "v_in"),
    (torch.tensor([1.0, float("nan"), 0.0], dtype=F64), "v_in"), (torch.ones(0, 3, dtype=F64), "v_in"),
])
def test_bad_inputs(v, name):
    with pytest.raises(ValueError, match=name):
        Crossbar(G).solve(v)


def test_bad_bias_and_gates():
    with pytest.raises(ValueError, match="v_col_bias"):
        Crossbar(G).solve(torch.ones(3, dtype=F64), v_col_bias=torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="gate_enable"):
        Crossbar(G, gate_enable=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="transfer_matrix"):
        Crossbar(G, topology="1S1R").transfer_matrix()


resistance = st.one_of(st.just(0.0), st.floats(1e-3, 10.0))
conductance = st.one_of(st.just(1e-9), st.just(1e-2), st.floats(1e-9, 1e-2))


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), data=st.data(),
       r_row=resistance, r_col=resistance, r_source=resistance, r_sense=resistance,
       row_drive=st.sampled_from(["first", "last", "both"]), col_sense=st.sampled_from(["first", "last", "both"]))
def test_fuzz_linear_solvers_agree_and_obey_kcl(rows, cols, data, r_row, r_col, r_source, r_sense, row_drive,
                                                col_sense):
    g = torch.tensor(data.draw(st.lists(st.lists(conductance, min_size=cols, max_size=cols),
                                        min_size=rows, max_size=rows)), dtype=F64)
    v = torch.tensor(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=rows, max_size=rows)), dtype=F64)
    kw = dict(r_row=r_row, r_col=r_col, r_source=r_source, r_sense=r_sense, row_drive=row_drive,
              col_sense=col_sense)
    ref = Crossbar(g, method="direct", **kw).full_solution(v)
    scale = float(ref.i_cell.abs().max()) + 1e-300
    for method in ("block", "cg", "auto"):
        sol = Crossbar(g, method=method, **kw).full_solution(v)
        assert float((sol.i_out - ref.i_out).abs().max()) <= 1e-10 * scale
        assert float(sol.power.min()) >= -1e-12 * scale
    # rounding floor of KCL: eps x (largest finite node conductance) x (largest voltage)
    g_sum = sum(2 / r for r in (r_row, r_col) if r > 0)
    floor = 64 * 2.2e-16 * (g_sum + 2 / max(min(r_source, r_sense), 1e-3)) * (float(v.abs().max()) + 1e-300)
    assert float(ref.kcl_residual.max()) * scale <= max(1e-12 * scale, floor)
    if max(r_row, r_col, r_source, r_sense) == 0.0:
        torch.testing.assert_close(ref.i_out[0], v @ g, rtol=1e-13, atol=1e-300)
    assert math.isfinite(float(ref.i_out.abs().max()))
