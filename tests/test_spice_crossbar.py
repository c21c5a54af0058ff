"""memxbar's crossbar solver vs ngspice; netlist export, Xyce text, safety, and the ``xbar spice`` CLI.

Every comparison is ``validate`` (or ``spice_solution``) on a seeded random array: the exported
netlist is simulated by ngspice and the same circuit is solved by :class:`xbar.Crossbar`; linear
arrays must agree to 1e-8 relative, nonlinear ones (selectors, EKV transistors, device I-V) to
1e-6. ``test_validate_detects_a_perturbed_cell`` shows that the comparison can fail.
"""
import importlib
import json
import os

import numpy as np
import pytest
import torch

from circuits.spice import (NetlistError, NgspiceNotFoundError, crossbar_netlist, crossbar_transient_netlist,
                            export_crossbar, spice_solution, validate)
from circuits.spice.netlist import Netlist, num
from devices import RRAM, make
from training.cli import main
from xbar import Crossbar

# the package re-exports the function ``validate``, which shadows the module's attribute name
validate_module = importlib.import_module("circuits.spice.validate")
F64 = torch.float64
WIRES = dict(r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)
VARIANTS = {
    "0T1R": dict(topology="0T1R"),
    "1T1R-linear": dict(topology="1T1R", transistor="linear"),
    "1T1R-ekv": dict(topology="1T1R", transistor="ekv"),
    "1S1R-sinh": dict(topology="1S1R", selector="sinh"),
    "1S1R-exp": dict(topology="1S1R", selector="exp"),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small arrays solve fastest on one thread; idle OpenMP threads spin-wait on a busy 2-core
    machine (16x16 solve: ~4 ms at 1 thread, ~190 ms at 2). Restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def uniform(shape, lo, hi, seed):
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=F64)


def random_crossbar(rows, cols, seed, **options):
    return Crossbar(uniform((rows, cols), 1e-6, 100e-6, seed), **(WIRES | options))


# ------------------------------------------------------------------ agreement with ngspice
@pytest.mark.parametrize("size", [(4, 4), (8, 8), (5, 12), (16, 16), (32, 32)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_random_arrays_agree_with_ngspice(size, variant):
    rows, cols = size
    xb = random_crossbar(rows, cols, seed=rows * 100 + cols, **VARIANTS[variant])
    v = uniform(rows, 0.0, 0.5, seed=rows + cols)
    report = validate(xb, v)
    assert report.tolerance == (1e-8 if variant in ("0T1R", "1T1R-linear") else 1e-6)
    assert report.passed, report.summary()
    assert report.max_rel_err_current <= 1e-8  # in practice every topology agrees far below its tolerance


def test_ideal_wires_give_exact_v_times_g_in_ngspice():
    # independent of memxbar: with ideal wires, drivers and sense ends I_out = v G exactly
    g, v = uniform((6, 7), 1e-6, 100e-6, 1), uniform(6, 0.0, 0.5, 2)
    xb = Crossbar(g, r_row=0.0, r_col=0.0, r_source=0.0, r_sense=0.0)
    i_out, v_row, v_col, _ = spice_solution(xb, v)
    np.testing.assert_allclose(i_out, (v @ g).numpy(), rtol=1e-13)
    np.testing.assert_allclose(v_row, v.numpy()[:, None].repeat(7, 1), rtol=1e-14)
    assert np.abs(v_col).max() < 1e-15
    assert validate(xb, v).passed


def test_1t1r_with_gates_off_agrees_and_blocks_its_rows():
    xb = random_crossbar(8, 6, seed=3, topology="1T1R", gate_enable=torch.tensor([True, False] * 4))
    v = uniform(8, 0.1, 0.5, 4)
    report = validate(xb, v)
    assert report.passed, report.summary()
    i_half, _, _, _ = spice_solution(xb, v)
    i_all, _, _, _ = spice_solution(random_crossbar(8, 6, seed=3, topology="1T1R"), v)
    assert (i_half < i_all).all()  # the off transistors really cut their rows out


@pytest.mark.parametrize("variant", ["0T1R", "1S1R-sinh"])
def test_severe_ir_drop_agrees(variant):
    xb = random_crossbar(24, 24, seed=5, **(VARIANTS[variant] | dict(r_row=50.0, r_col=50.0)))
    v = uniform(24, 0.3, 0.5, 6)
    report = validate(xb, v)
    assert report.passed, report.summary()
    # the IR drop is severe: the exact currents are far below the ideal v G
    i_out, _, _, _ = spice_solution(xb, v)
    if variant == "0T1R":
        assert i_out.sum() < 0.8 * float((v @ xb.g).sum())


def test_strongly_nonlinear_selector_array_agrees():
    # nonlinearity I(1 V)/I(0.5 V) = 1e4: the selector dominates the cell
    xb = random_crossbar(16, 16, seed=7, topology="1S1R", selector="exp", selector_i_s=1e-11, selector_v_0=None,
                         selector_nl=1e4, selector_v_w=1.0)
    v = uniform(16, 0.8, 1.2, 8)
    report = validate(xb, v, tolerance=1e-7)
    assert report.passed, report.summary()


@pytest.mark.parametrize("variant", ["0T1R", "1S1R-sinh"])
def test_column_bias_agrees(variant):
    xb = random_crossbar(6, 9, seed=9, **VARIANTS[variant])
    v, bias = uniform(6, 0.0, 0.5, 10), uniform(9, -0.2, 0.2, 11)
    report = validate(xb, v, v_col_bias=bias)
    assert report.passed, report.summary()
    i_biased, _, _, _ = spice_solution(xb, v, v_col_bias=bias)
    i_plain, _, _, _ = spice_solution(xb, v)
    assert np.abs(i_biased - i_plain).max() > 1e-3 * np.abs(i_plain).max()  # the bias is really applied


def test_stuck_cells_of_a_device_object_agree():
    dev = RRAM((6, 6), seed=0)
    dev.program(uniform((6, 6), 2e-6, 30e-6, 12))
    dev.stuck[1, 2], dev.stuck[4, 0], dev.stuck[3, 3] = 1, -1, 1  # stuck-on, stuck-off
    xb = Crossbar(dev, **WIRES)
    v = uniform(6, 0.05, 0.2, 13)
    report = validate(xb, v)
    assert report.passed, report.summary()
    text = crossbar_netlist(xb, v).render()
    # stuck cells are ohmic at g_max / g_min whatever their programmed state
    assert f"Bcell_1_2 row_1_2 col_1_2 I={{({num(dev.g_max)})*(V(row_1_2,col_1_2))}}" in text
    assert f"Bcell_4_0 row_4_0 col_4_0 I={{({num(dev.g_min)})*(V(row_4_0,col_4_0))}}" in text


@pytest.mark.parametrize("topology", ["0T1R", "1T1R", "1S1R"])
def test_extreme_conductances_agree(topology):
    # stuck-on ~ 10 mS (100 Ω) and stuck-off = 0 S (open) cells in a 1-100 µS array
    g = uniform((10, 10), 1e-6, 100e-6, 14)
    g[2, 3] = g[7, 1] = 1e-2
    g[5, 5] = g[0, 9] = 0.0
    xb = Crossbar(g, topology=topology, **WIRES)
    report = validate(xb, uniform(10, 0.0, 0.5, 15))
    assert report.passed, report.summary()


@pytest.mark.parametrize("family", ["rram", "pcm", "stt_mram", "floating_gate", "volatile"])
def test_every_device_family_as_cells(family):
    dev = make(family, (5, 6), seed=1)
    dev.program(uniform((5, 6), dev.g_min, dev.g_max, 16))
    xb = Crossbar(dev, **WIRES)
    report = validate(xb, uniform(5, 0.05, 0.3, 17))
    assert not report.linear and report.tolerance == 1e-6
    assert report.passed, report.summary()
    assert report.max_rel_err_current < 1e-9


def test_validate_detects_a_perturbed_cell(monkeypatch):
    xb = random_crossbar(8, 8, seed=18)
    v = uniform(8, 0.1, 0.5, 19)
    assert validate(xb, v).passed
    g = xb.g.clone()
    g[3, 4] *= 1.001  # ngspice sees one cell 0.1 % off
    perturbed = Crossbar(g, **WIRES)
    export = validate_module.crossbar_netlist
    monkeypatch.setattr(validate_module, "crossbar_netlist", lambda _xb, v_in, **kw: export(perturbed, v_in, **kw))
    report = validate(xb, v)
    assert not report.passed and report.summary().startswith("FAIL")
    # the column current changes by about 0.1 % of that cell's share of the column
    assert 1e-6 < report.max_rel_err_current < 1e-3


# ------------------------------------------------------------------ input checks and safety
def test_nan_and_inf_inputs_are_refused():
    xb = random_crossbar(3, 3, seed=20)
    with pytest.raises(ValueError, match="v_in must be finite"):
        crossbar_netlist(xb, [0.1, float("nan"), 0.2])
    with pytest.raises(ValueError, match="v_col_bias must be finite"):
        validate(xb, [0.1, 0.1, 0.1], v_col_bias=[0.0, float("inf"), 0.0])
    with pytest.raises(ValueError, match="v_in must have 3 entries"):
        export_crossbar(xb, [0.1, 0.2])
    with pytest.raises(ValueError, match="conductances must be finite"):
        Crossbar(torch.tensor([[1e-6, float("nan")]], dtype=F64))
    with pytest.raises(ValueError, match="tolerance"):
        validate(xb, [0.1, 0.1, 0.1], tolerance=float("nan"))
    with pytest.raises(NetlistError):
        Netlist("t").vsource("in", "a", "0", dc=float("inf"))


@pytest.mark.parametrize("bad", ["a\nb", ".control", 'q"uote', "x shell rm", "n\r.endc", "r;shell", "'x'"])
def test_injection_attempts_are_rejected(bad):
    net = Netlist("t")
    for add in (lambda: net.resistor(bad, "a", "b", 1.0), lambda: net.vsource("v", bad, "0", dc=1.0),
                lambda: net.set_options(**{bad: 1.0})):
        with pytest.raises(NetlistError):
            add()


def test_title_and_dialect_cannot_inject_cards():
    xb = random_crossbar(2, 2, seed=21)
    text = crossbar_netlist(xb, [0.1, 0.2], title="x\n.control\nshell rm -rf /\n.endc").render()
    cards = [line.strip().lower() for line in text.splitlines()]
    assert not any(c.startswith((".control", "shell", ".endc")) for c in cards)
    with pytest.raises(ValueError, match="dialect"):
        export_crossbar(xb, [0.1, 0.2], dialect="ngspice\n.control")


# ------------------------------------------------------------------ export and Xyce text
def test_export_writes_the_file_atomically(tmp_path, monkeypatch):
    xb = random_crossbar(4, 5, seed=22, topology="1S1R")
    path = tmp_path / "sub" / "xbar.cir"
    text = export_crossbar(xb, uniform(4, 0.0, 0.5, 23), path=path)
    assert path.read_text() == text and text.rstrip().endswith(".end")
    assert os.listdir(path.parent) == ["xbar.cir"]  # no temporary file left behind

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        export_crossbar(xb, uniform(4, 0.0, 0.3, 24), path=path)
    assert path.read_text() == text  # the old file is intact
    assert os.listdir(path.parent) == ["xbar.cir"]
    with pytest.raises(ValueError, match="directory"):
        export_crossbar(xb, uniform(4, 0.0, 0.3, 24), path=tmp_path)


def test_xyce_dialect_text():
    xb = random_crossbar(3, 3, seed=25, topology="1S1R")
    v = uniform(3, 0.0, 0.5, 26)
    ng, xy = export_crossbar(xb, v, print_currents=False), export_crossbar(xb, v, dialect="xyce", print_currents=False)
    assert ".options reltol=" in ng and ".options reltol=" not in xy
    assert ".options nonlin reltol=9.9999999999999998e-13" in xy and ".options device gmin=" in xy
    assert "* ngspice option vntol=" in xy  # no Xyce equivalent: kept as a comment
    body = lambda t: [ln for ln in t.splitlines() if ln and not ln.startswith((".options", "*"))]  # noqa: E731
    assert body(ng) == body(xy)  # elements, analysis and .end are identical
    # the stateful RRAM model uses ngspice's u(); Xyce gets stp()
    dev = RRAM((1, 1), seed=0)
    tran = crossbar_transient_netlist(Crossbar(dev, **WIRES), [0.0, 1e-6], [[0.0], [1.0]], [[0.0], [0.0]],
                                      max_step=1e-8)
    ng, xy = tran.render("ngspice"), tran.render("xyce")
    b_ng = [ln for ln in ng.splitlines() if ln.startswith("B")]
    b_xy = [ln for ln in xy.splitlines() if ln.startswith("B")]
    assert any("u(" in ln for ln in b_ng) and not any("(u(" in ln or " u(" in ln for ln in b_xy)
    assert [ln.replace("stp(", "u(") for ln in b_xy] == b_ng
    # printed column currents: an ngspice .control block, a Xyce .print dc card
    ng, xy = export_crossbar(xb, v), export_crossbar(xb, v, dialect="xyce")
    assert ng.splitlines()[-3:] == ["quit", ".endc", ".end"] and "print i_out_2" in ng
    assert ".print dc I(Vsense_0) I(Vsense_1) I(Vsense_2)" in xy and ".control" not in xy


def test_shared_ngspice_leaves_torch_threads_alone():
    # libngspice (built with OpenMP) resets the process-wide OpenMP thread count on circuit set-up
    # once torch has started its OpenMP pool; that silently overrode torch.set_num_threads
    xb = random_crossbar(4, 4, seed=28)
    v = uniform(4, 0.0, 0.5, 29)
    xb.solve(v.reshape(1, -1))
    for threads in (1, 2, 1):
        torch.set_num_threads(threads)
        for _ in range(2):
            spice_solution(xb, v, backend="shared")
            assert torch.get_num_threads() == threads


def test_missing_ngspice_says_how_to_install():
    xb = random_crossbar(2, 2, seed=27)
    with pytest.raises(NgspiceNotFoundError, match="apt-get install ngspice"):
        validate(xb, [0.1, 0.2], backend="batch", ngspice_binary="/nonexistent/ngspice")


# ------------------------------------------------------------------ CLI
def test_cli_export_to_stdout_and_file(capsys, tmp_path):
    args = ["spice", "export", "--rows", "3", "--cols", "4", "--seed", "5", "--topology", "1S1R"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Vin_2 src_2 0 DC" in text and "Bsel_2_3 " in text and text.rstrip().endswith(".end")
    assert main(args) == 0 and capsys.readouterr().out == text  # the seed fixes the circuit
    out = tmp_path / "a.cir"
    assert main(args + ["--out", str(out), "--dialect", "xyce"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert ".options nonlin reltol" in out.read_text()


def test_cli_validate_pass_fail_and_json(capsys, tmp_path):
    report_file = tmp_path / "report.json"
    assert main(["spice", "validate", "--rows", "6", "--cols", "5", "--r-row", "50", "--r-col", "50",
                 "--json", str(report_file)]) == 0
    assert capsys.readouterr().out.startswith("PASS 6x5 0T1R")
    data = json.loads(report_file.read_text())
    assert data["report"]["passed"] and data["report"]["max_rel_err_current"] < 1e-8
    assert data["settings"]["r_row"] == 50.0 and data["settings"]["rows"] == 6
    # a tolerance below float64 round-off cannot pass: exit code 1
    assert main(["spice", "validate", "--rows", "4", "--cols", "4", "--tolerance", "1e-20"]) == 1
    assert capsys.readouterr().out.startswith("FAIL")


def _ngspice_batch(path) -> dict[str, float]:
    """``i_out_<j>`` values printed by ``ngspice -b path`` (the exported file run on its own)."""
    import subprocess

    proc = subprocess.run(["ngspice", "-b", "-n", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=path.parent)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith("i_out_"):
            name, value = line.split("=")
            found[name.strip()] = float(value)
    return found


@pytest.mark.parametrize("col_sense", ["last", "both"])
def test_exported_netlist_prints_the_column_currents(tmp_path, col_sense):
    """Issue 16: the exported file prints i_out_<j> = <A> under ``ngspice -b``; those are the
    exact column currents (memxbar's solve of the same circuit)."""
    xb = random_crossbar(5, 4, seed=40, col_sense=col_sense)
    v = uniform(5, 0.0, 0.5, 41)
    path = tmp_path / "array.cir"
    export_crossbar(xb, v, path=path)
    printed = _ngspice_batch(path)
    assert sorted(printed) == [f"i_out_{j}" for j in range(4)]
    i_mx = xb.solve(v.reshape(1, -1))[0]
    for j in range(4):
        assert printed[f"i_out_{j}"] == pytest.approx(float(i_mx[j]), rel=1e-12)


def test_cli_exports_user_conductances_and_presets(tmp_path, capsys):
    g = uniform((3, 4), 2e-6, 50e-6, 42).numpy()
    v = np.array([0.1, 0.2, 0.3])
    np.save(tmp_path / "g.npy", g)
    np.savetxt(tmp_path / "g.csv", g, delimiter=",")
    np.savetxt(tmp_path / "v.csv", v, delimiter=",")
    for name in ("g.npy", "g.csv"):
        out = tmp_path / f"{name}.cir"
        assert main(["spice", "export", "--conductances", str(tmp_path / name), "--inputs", str(tmp_path / "v.csv"),
                     "--out", str(out)]) == 0
        assert "3x4" in capsys.readouterr().out
        printed = _ngspice_batch(out)
        # the CLI's wires are xbar.CrossbarConfig's defaults (1 Ohm everywhere)
        i_mx = Crossbar(torch.from_numpy(g)).solve(torch.from_numpy(v).reshape(1, -1))[0]
        assert [printed[f"i_out_{j}"] for j in range(4)] == pytest.approx(i_mx.tolist(), rel=1e-9)
    # a device preset: the conductances are programmed, then read t_read seconds later (PCM drifts down)
    out = tmp_path / "pcm.cir"
    args = ["spice", "export", "--rows", "6", "--cols", "6", "--preset", "pcm:joshi2020_pcm", "--out", str(out)]
    assert main(args + ["--t-read", "1"]) == 0
    early = _ngspice_batch(out)
    assert main(args + ["--t-read", "31536000"]) == 0
    late = _ngspice_batch(out)
    assert sum(late.values()) < 0.9 * sum(early.values())
    assert "programmed into pcm:joshi2020_pcm and read at t = 3.1536e+07 s" in capsys.readouterr().out


def test_cost_estimates_follow_the_measured_ngspice_times():
    from circuits.spice.cost import crossbar_cost, ngspice_op_seconds, transient_cost

    # measured on an idle 2-core machine (/work/shared/reference/spice-and-solver.md)
    for n, seconds in ((32, 0.1), (64, 2.5), (128, 70.0)):
        assert ngspice_op_seconds(n, n) == pytest.approx(seconds, rel=0.1)
    assert ngspice_op_seconds(64, 64, linear=False) > ngspice_op_seconds(64, 64)
    export = crossbar_cost(400, 400, 130.0, simulate=False)
    assert export.netlist_bytes == pytest.approx(20.8e6) and 2.0 < export.seconds < 20.0  # measured 5.8 s
    osc = transient_cost("x", 10_000, 400, 1e-3, 0.5e-9)  # oscillator over 1 ms: 4e6 torch steps
    assert osc.seconds > 600.0


def test_cli_budget_refuses_without_force_and_runs_with_it(tmp_path, capsys, monkeypatch):
    import circuits.spice.cost as cost

    monkeypatch.setattr(cost, "MAX_NETLIST_BYTES", 5e3)  # a 10x10 netlist is ~15 kB
    out = tmp_path / "a.cir"
    assert main(["spice", "export", "--rows", "10", "--cols", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "budget; pass --force" in err and not out.exists()
    assert main(["spice", "export", "--rows", "10", "--cols", "10", "--out", str(out), "--force", "--quiet"]) == 0
    assert out.is_file()


def test_cli_wire_defaults_are_crossbar_config_defaults(capsys):
    import dataclasses

    from xbar import CrossbarConfig

    defaults = {f.name: f.default for f in dataclasses.fields(CrossbarConfig)}
    assert main(["spice", "export", "--rows", "2", "--cols", "2"]) == 0
    header = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("* array")][0]
    for name in ("r_row", "r_col", "r_source", "r_sense"):
        assert f"{name}={defaults[name]:g} ohm" in header


def test_cli_bad_arguments_exit_with_code_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["spice", "export", "--rows", "0"])
    assert exc.value.code == 2
    assert "argument --rows: must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["spice", "validate", "--r-row", "-1"])
    assert exc.value.code == 2 and "--r-row: must be >= 0" in capsys.readouterr().err
    assert main(["spice", "export", "--g-min", "1e-3", "--g-max", "1e-4"]) == 2
    assert "--g-max must be >= --g-min" in capsys.readouterr().err
    assert main(["spice", "validate", "--backend", "batch", "--ngspice", "/nonexistent/ngspice"]) == 2
    assert "apt-get install ngspice" in capsys.readouterr().err
