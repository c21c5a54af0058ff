"""Hostile inputs for every public entry point of xbar's solver side: each must raise a ValueError
whose message names the parameter (table-driven; the table's size is reported by the last test).

Entry points: Crossbar (conductances, config, options, gate_enable), CrossbarConfig.validate,
Crossbar.solve / full_solution / transfer_matrix, xbar.transient.rram_crossbar_transient and
xbar.writing (bias_voltages, cell_categories, write_cell, read_margin, read_margin_vs_size).
"""
from __future__ import annotations

import math

import pytest
import torch

from devices import RRAM
from xbar import Crossbar, CrossbarConfig
from xbar.transient import rram_crossbar_transient
from xbar.writing import bias_voltages, cell_categories, read_margin, read_margin_vs_size, write_cell

F64 = torch.float64
G = torch.full((3, 4), 1e-4, dtype=F64)
NAN, INF = float("nan"), math.inf

CASES: list[tuple[str, object, str]] = []  # (case id, zero-argument callable, name expected in the message)


def case(name: str, fn, expect: str) -> None:
    CASES.append((name, fn, expect))


# ------------------------------------------------------------------ CrossbarConfig fields
_REALS = {  # field: bad values (finite reals must be in range; inf only where allowed)
    "r_row": [-1.0, NAN, INF, True, "1"], "r_col": [-1e-3, NAN, INF, None], "r_source": [-1.0, INF, "0"],
    "r_sense": [-2.0, NAN, False], "r_access_on": [0.0, -5.0, INF, "1k"], "r_access_off": [0.0, NAN, "off"],
    "mos_beta": [0.0, -1.0, NAN], "mos_n": [0.0, INF], "mos_u_t": [-0.02, "0.025"], "mos_v_th": [NAN, INF, None],
    "v_gate_on": [INF, "1.2"], "v_gate_off": [NAN, True], "selector_i_s": [0.0, -1e-7, INF],
    "selector_v_0": [0.0, -0.1, NAN, "0.1"], "cg_rtol": [0.0, 2.0, NAN, "1e-14"], "newton_rtol": [0.0, -1.0, 1.5],
    "block_max_bytes": [-1.0, NAN, "big"], "transfer_chunk_bytes": [0.0, -5.0, INF],
    "transfer_batch_ratio": [-1.0, NAN, "1"],
}
_INTS = {"cg_max_iter": [0, -3, 2.5, True, "100", None], "newton_max_iter": [0, 1.0, False]}
_CHOICES = {"topology": ["2T2R", "0t1r", 1, None], "row_drive": ["middle", ""], "col_sense": ["none", 0],
            "transistor": ["bjt"], "selector": ["tanh", None], "method": ["qr", "CG", 3],
            "backend": ["gpu", "cuda", True], "grad_mode": ["fd", None]}
for field, values in _REALS.items():
    for value in values:
        case(f"config.{field}={value!r}", lambda f=field, v=value: CrossbarConfig(**{f: v}).validate(), field)
for field, values in _INTS.items():
    for value in values:
        case(f"config.{field}={value!r}", lambda f=field, v=value: CrossbarConfig(**{f: v}).validate(), field)
for field, values in _CHOICES.items():
    for value in values:
        case(f"config.{field}={value!r}", lambda f=field, v=value: CrossbarConfig(**{f: v}).validate(), field)
for value in ["yes", 1, None]:
    case(f"config.cuda_graphs={value!r}", lambda v=value: CrossbarConfig(cuda_graphs=v).validate(), "cuda_graphs")
case("config.selector_nl without v_w", lambda: CrossbarConfig(selector_nl=10.0).validate(), "selector_nl")
case("config.selector_nl <= 2", lambda: CrossbarConfig(selector_nl=1.5, selector_v_w=1.0).validate(), "selector_nl")
case("config.selector_v_w <= 0", lambda: CrossbarConfig(selector_nl=10.0, selector_v_w=0.0).validate(),
     "selector_v_w")
case("config.selector_v_0 None alone", lambda: CrossbarConfig(selector_v_0=None).validate(), "selector_v_0")
case("Crossbar(**bad option)", lambda: Crossbar(G, r_row=-1.0), "r_row")
case("Crossbar(config=dict)", lambda: Crossbar(G, config={"r_row": 1.0}), "config")

# ------------------------------------------------------------------ conductances and gates
for label, bad in [("nan", torch.tensor([[1e-4, NAN]], dtype=F64)), ("inf", torch.tensor([[INF, 1e-4]], dtype=F64)),
                   ("negative", torch.tensor([[1e-4, -1e-6]], dtype=F64)), ("1-D", torch.ones(3, dtype=F64)),
                   ("3-D", torch.ones(2, 2, 2, dtype=F64)), ("empty", torch.zeros(0, 3, dtype=F64)),
                   ("string", "1e-4"), ("bool tensor", torch.ones(2, 2, dtype=torch.bool)),
                   ("complex", torch.ones(2, 2, dtype=torch.complex128)), ("ragged list", [[1e-4, 1e-4], [1e-4]]),
                   ("None", None), ("overflowing", torch.tensor([[1e-4, 1e200]], dtype=F64)), ("bool", True)]:
    case(f"conductances {label}", lambda b=bad: Crossbar(b), "conductances")
case("gate_enable shape", lambda: Crossbar(G, gate_enable=torch.ones(4, dtype=torch.bool)), "gate_enable")
case("gate_enable dtype", lambda: Crossbar(G, gate_enable=torch.ones(3)), "gate_enable")

# ------------------------------------------------------------------ solve / full_solution / transfer_matrix
_BAD_V = [("wrong length", torch.ones(4, dtype=F64)), ("batch wrong length", torch.ones(2, 5, dtype=F64)),
          ("3-D", torch.ones(1, 2, 3, dtype=F64)), ("nan", torch.tensor([1.0, NAN, 0.0], dtype=F64)),
          ("inf", torch.tensor([INF, 0.0, 0.0], dtype=F64)), ("empty batch", torch.ones(0, 3, dtype=F64)),
          ("string", "0.2"), ("bool", torch.ones(3, dtype=torch.bool)), ("ragged", [[0.1, 0.2], [0.3]]),
          ("None", None), ("complex", torch.ones(3, dtype=torch.complex128))]
for entry in ("solve", "full_solution"):
    for label, bad in _BAD_V:
        case(f"{entry} v_in {label}", lambda e=entry, b=bad: getattr(Crossbar(G), e)(b), "v_in")
    for label, bias in [("shape", torch.ones(3, dtype=F64)), ("nan", torch.full((4,), NAN, dtype=F64)),
                        ("string", "0"), ("bool", torch.ones(4, dtype=torch.bool))]:
        case(f"{entry} v_col_bias {label}",
             lambda e=entry, b=bias: getattr(Crossbar(G), e)(torch.ones(3, dtype=F64), v_col_bias=b), "v_col_bias")
case("transfer_matrix nonlinear", lambda: Crossbar(G, topology="1S1R").transfer_matrix(), "transfer_matrix")
case("tiny wires, nodal method", lambda: Crossbar(G, method="cg", r_row=1e-12, r_col=1e-12).solve(torch.ones(3, dtype=F64)),
     "method")

# ------------------------------------------------------------------ transient
_DEV = RRAM((2, 3), seed=0)
_XB = Crossbar(_DEV)
_T = [0.0, 1e-9, 2e-9]
_VR, _VC = torch.zeros(3, 2, dtype=F64), torch.zeros(3, 3, dtype=F64)


def _tr(**kw):
    args = dict(crossbar=_XB, times=_T, v_rows=_VR, v_cols=_VC)
    args.update(kw)
    return lambda: rram_crossbar_transient(args.pop("crossbar"), args.pop("times"), args.pop("v_rows"),
                                           args.pop("v_cols"), **args)


case("transient crossbar not a Crossbar", _tr(crossbar=G), "crossbar")
case("transient linear cells", _tr(crossbar=Crossbar(torch.full((2, 3), 1e-4, dtype=F64))), "RRAM")
for label, times in [("decreasing", [0.0, 2e-9, 1e-9]), ("one point", [0.0]), ("nan", [0.0, NAN, 2e-9]),
                     ("string", "0 1 2"), ("2-D", [[0.0, 1e-9, 2e-9]]), ("None", None)]:
    case(f"transient times {label}", _tr(times=times), "times")
for name, good in (("v_rows", _VR), ("v_cols", _VC)):
    for label, bad in [("shape", good[:, :1]), ("1-D", good[0]), ("nan", good + NAN), ("string", "0"),
                       ("None", None), ("ragged", [[0.0], [0.0, 0.0]]), ("bool", good > 0)]:
        case(f"transient {name} {label}", _tr(**{name: bad}), name)
for value in (0, -1, 1.5, True, "2"):
    case(f"transient substeps={value!r}", _tr(substeps=value), "substeps")
for value in (0.0, -1e-12, 1e-6, NAN, "1e-12", None):
    case(f"transient max_gap_step={value!r}", _tr(max_gap_step=value), "max_gap_step")

# ------------------------------------------------------------------ writing
_GW = torch.full((4, 5), 1e-4, dtype=F64)
for label, fn, name in [
    ("bias scheme", lambda: bias_voltages(3, 4, (1, 2), 1.0, "v/4"), "scheme"),
    ("bias selected row", lambda: bias_voltages(3, 4, (3, 0), 1.0), "selected[0]"),
    ("bias selected col float", lambda: bias_voltages(3, 4, (0, 1.5), 1.0), "selected[1]"),
    ("bias selected shape", lambda: bias_voltages(3, 4, (0,), 1.0), "selected"),
    ("bias v nan", lambda: bias_voltages(3, 4, (0, 0), NAN), "v"),
    ("bias rows", lambda: bias_voltages(0, 4, (0, 0), 1.0), "rows"),
    ("categories selected", lambda: cell_categories(3, 4, (-1, 0)), "selected[0]"),
    ("categories cols", lambda: cell_categories(3, 2.0, (0, 0)), "cols"),
    ("write scheme", lambda: write_cell(_GW, (0, 0), 1.0, scheme="ground"), "scheme"),
    ("write v_write zero", lambda: write_cell(_GW, (0, 0), 0.0), "v_write"),
    ("write v_write string", lambda: write_cell(_GW, (0, 0), "1"), "v_write"),
    ("write selected", lambda: write_cell(_GW, (4, 0), 1.0), "selected[0]"),
    ("write selected string", lambda: write_cell(_GW, "ab", 1.0), "selected"),
    ("write segments", lambda: write_cell(_GW, (0, 0), 1.0, segments=0), "segments"),
    ("write segments float", lambda: write_cell(_GW, (0, 0), 1.0, segments=2.0), "segments"),
    ("write width", lambda: write_cell(_GW, (0, 0), 1.0, width=-1e-9), "width"),
    ("write width nan", lambda: write_cell(_GW, (0, 0), 1.0, width=NAN), "width"),
    ("write i_compliance", lambda: write_cell(_GW, (0, 0), 1.0, i_compliance=0.0), "i_compliance"),
    ("write apply", lambda: write_cell(_GW, (0, 0), 1.0, apply="no"), "apply"),
    ("write topology", lambda: write_cell(_GW, (0, 0), 1.0, topology="1T1R"), "topology"),
    ("write bad option", lambda: write_cell(_GW, (0, 0), 1.0, r_row=-1.0), "r_row"),
    ("margin g_lrs", lambda: read_margin(4, 0.0, 0.0), "g_lrs"),
    ("margin g_hrs", lambda: read_margin(4, 1e-6, 1e-4), "g_hrs"),
    ("margin v_read", lambda: read_margin(4, 1e-4, 1e-6, v_read=-0.1), "v_read"),
    ("margin n zero", lambda: read_margin(0, 1e-4, 1e-6), "n"),
    ("margin n float", lambda: read_margin(2.5, 1e-4, 1e-6), "n"),
    ("margin n triple", lambda: read_margin((2, 2, 2), 1e-4, 1e-6), "n"),
    ("margin n string", lambda: read_margin("4", 1e-4, 1e-6), "n"),
    ("margin scheme", lambda: read_margin(4, 1e-4, 1e-6, scheme="floating"), "scheme"),
    ("margin unselected", lambda: read_margin(4, 1e-4, 1e-6, unselected="mixed"), "unselected"),
    ("margin definition", lambda: read_margin(4, 1e-4, 1e-6, definition="snr"), "definition"),
    ("margin selected", lambda: read_margin(4, 1e-4, 1e-6, selected=(0, 9)), "selected[1]"),
    ("margin topology", lambda: read_margin(4, 1e-4, 1e-6, topology="2T2R"), "topology"),
    ("margin sizes empty", lambda: read_margin_vs_size([], 1e-4, 1e-6), "sizes"),
    ("margin sizes scalar", lambda: read_margin_vs_size(4, 1e-4, 1e-6), "sizes"),
]:
    case(label, fn, name)


@pytest.mark.parametrize("label, fn, expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_value_error_naming_the_parameter(label, fn, expect):
    with pytest.raises(ValueError) as info:
        fn()
    assert expect in str(info.value), f"{label}: message does not name {expect!r}: {info.value}"


def test_the_table_covers_every_entry_point():
    """A table that silently shrank would pass while testing nothing: count it."""
    assert len(CASES) >= 200
    prefixes = {"config.", "conductances", "gate_enable", "solve ", "full_solution ", "transfer_matrix",
                "transient ", "bias ", "categories ", "write ", "margin "}
    assert all(any(label.startswith(p) for label, _, _ in CASES) for p in prefixes)
