"""Hostile inputs for the SPICE API and the ``xbar spice`` CLI (issue 15), table-driven.

Every input must end in a *clear error*: the API raises ``ValueError`` (``NetlistError`` is
one) or ``OSError`` naming the parameter or file; the CLI exits with code 2 and prints exactly one
line ``xbar: error: ...`` (never a traceback), before any long work. ``python
tests/test_bad_inputs_spice.py`` prints the tally: inputs tried, clear errors, tracebacks (any
other exception) and silent answers (no error at all).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

F64 = torch.float64


def _xb(rows=2, cols=2, **options):
    from xbar import Crossbar

    return Crossbar(torch.full((rows, cols), 1e-5, dtype=F64), **options)


def _net():
    from circuits.spice.netlist import Netlist

    net = Netlist("t")
    net.vsource("in", "a", "0", dc=1.0)
    net.resistor("r", "a", "0", 1e3)
    net.op()
    return net


def _i_in(n=10, value=20e-6):
    return torch.full((n,), value, dtype=F64)


def api_cases() -> dict:
    """name -> (callable, text the error must contain)."""
    from circuits.spice import (crossbar_netlist, export_crossbar, run_netlist, validate, validate_network,
                                validate_neuron)
    from circuits.spice.neuron_export import pwl_points

    xb = _xb()
    v = [0.1, 0.2]
    return {
        "export v_in NaN": (lambda: export_crossbar(xb, [0.1, float("nan")]), "v_in"),
        "export v_in short": (lambda: export_crossbar(xb, [0.1]), "v_in"),
        "export v_in string": (lambda: export_crossbar(xb, "0.1 0.2"), "v_in"),
        "export v_in None": (lambda: export_crossbar(xb, None), "v_in"),
        "export v_col_bias inf": (lambda: export_crossbar(xb, v, v_col_bias=[0.0, float("inf")]), "v_col_bias"),
        "export dialect": (lambda: export_crossbar(xb, v, dialect="hspice"), "dialect"),
        "export dialect injection": (lambda: export_crossbar(xb, v, dialect="ngspice\n.control"), "dialect"),
        "export path is a directory": (lambda: export_crossbar(xb, v, path=Path("/tmp")), "directory"),
        "export path unwritable": (lambda: export_crossbar(xb, v, path="/sys/memxbar/x.cir"), "sys"),
        "option key newline": (lambda: crossbar_netlist(xb, v, options={"reltol\n": 1e-6}), "option"),
        "option key with space": (lambda: crossbar_netlist(xb, v, options={"reltol 1 .control": 1e-6}), "option"),
        "option value NaN": (lambda: crossbar_netlist(xb, v, options={"reltol": float("nan")}), "reltol"),
        "option value string": (lambda: crossbar_netlist(xb, v, options={"reltol": "1e-3; .control"}), "reltol"),
        "validate tolerance NaN": (lambda: validate(xb, v, tolerance=float("nan")), "tolerance"),
        "validate tolerance 0": (lambda: validate(xb, v, tolerance=0.0), "tolerance"),
        "validate tolerance 1": (lambda: validate(xb, v, tolerance=1.0), "tolerance"),
        "validate tolerance string": (lambda: validate(xb, v, tolerance="1e-3"), "tolerance"),
        "validate tolerance bool": (lambda: validate(xb, v, tolerance=True), "tolerance"),
        "validate backend": (lambda: validate(xb, v, backend="gpu"), "backend"),
        "validate missing binary": (lambda: validate(xb, v, backend="batch", ngspice_binary="/nonexistent/ngspice"),
                                    "apt-get install ngspice"),
        "validate v_in long": (lambda: validate(xb, [0.1, 0.2, 0.3]), "v_in"),
        "run backend": (lambda: run_netlist(_net().render(), backend="gpu"), "backend"),
        "run netlist None": (lambda: run_netlist(None), "netlist"),
        "run netlist bytes": (lambda: run_netlist(_net().render().encode()), "netlist"),
        "run .control shell": (lambda: run_netlist(_net().render().replace(".end", ".control\nshell id\n.endc\n.end")),
                               ".control"),
        "run .CONTROL upper": (lambda: run_netlist(_net().render().replace(".end", " .CONTROL\nshell id\n.ENDC\n.end"),
                                                   backend="batch"), ".control"),
        "run empty netlist": (lambda: run_netlist("", backend="batch"), "analysis"),
        "neuron kind": (lambda: validate_neuron("lif", _i_in(), 1e-6), "kind"),
        "neuron euler oscillator": (lambda: validate_neuron("oscillator", _i_in(), 1e-6, method="euler"), "method"),
        "neuron i_in None": (lambda: validate_neuron("mif", None, 1e-6), "i_in"),
        "neuron i_in NaN": (lambda: validate_neuron("mif", _i_in(value=float("nan")), 1e-6), "i_in"),
        "neuron i_in 2-D": (lambda: validate_neuron("mif", torch.zeros(3, 2, dtype=F64), 1e-6), "i_in"),
        "neuron i_in empty": (lambda: validate_neuron("mif", torch.zeros(0, dtype=F64), 1e-6), "i_in"),
        "neuron dt 0": (lambda: validate_neuron("mif", _i_in(), 0.0), "dt"),
        "neuron dt negative": (lambda: validate_neuron("mif", _i_in(), -1e-6), "dt"),
        "neuron dt NaN": (lambda: validate_neuron("mif", _i_in(), float("nan")), "dt"),
        "neuron dt string": (lambda: validate_neuron("mif", _i_in(), "1e-6"), "dt"),
        "neuron dt bool": (lambda: validate_neuron("mif", _i_in(), True), "dt"),
        "neuron dt_sim not dividing": (lambda: validate_neuron("mif", _i_in(), 1e-6, dt_sim=0.3e-6), "dt_sim"),
        "neuron dt_sim tiny (hang)": (lambda: validate_neuron("mif", _i_in(), 1e-6, dt_sim=1e-15), "max_torch_steps"),
        "neuron spike_tolerance 0": (lambda: validate_neuron("mif", _i_in(), 1e-6, spike_tolerance=0.0),
                                     "spike_tolerance"),
        "neuron membrane_tolerance NaN": (lambda: validate_neuron("mif", _i_in(), 1e-6, membrane_tolerance=math.nan),
                                          "membrane_tolerance"),
        "neuron v0 NaN": (lambda: validate_neuron("mif", _i_in(), 1e-6, v0=float("nan")), "v0"),
        "neuron v0 string": (lambda: validate_neuron("mif", _i_in(), 1e-6, v0="0"), "v0"),
        "neuron spike_level string": (lambda: validate_neuron("mif", _i_in(), 1e-6, spike_level="x"), "spike_level"),
        "neuron max_torch_steps 0": (lambda: validate_neuron("mif", _i_in(), 1e-6, max_torch_steps=0),
                                     "max_torch_steps"),
        "neuron max_torch_steps bool": (lambda: validate_neuron("mif", _i_in(), 1e-6, max_torch_steps=True),
                                        "max_torch_steps"),
        "network crossbars without v_in": (lambda: validate_network(crossbars=[_xb(4, 3), _xb(3, 2)]), "v_in"),
        "network empty layers": (lambda: validate_network(crossbars=[], v_in=torch.zeros(5, 4, dtype=F64)),
                                 "crossbars"),
        "network layer mismatch": (lambda: validate_network(crossbars=[_xb(4, 3), _xb(2, 2)],
                                                            v_in=torch.zeros(5, 4, dtype=F64)), "rows"),
        "network v_in shape": (lambda: validate_network(crossbars=[_xb(4, 3)], v_in=torch.zeros(5, 3, dtype=F64)),
                               "v_in"),
        "network v_swing negative": (lambda: validate_network(v_swing=-0.2), "v_swing"),
        "network dt_sim tiny (hang)": (lambda: validate_network(dt_sim=1e-15), "max_torch_steps"),
        "pwl edge >= dt": (lambda: pwl_points([0.0, 1.0], 1e-6, edge=2e-6), "edge"),
    }


def _write(path: Path, data) -> str:
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        np.save(path, data, allow_pickle=True)
    return str(path)


def cli_cases(tmp: Path, write: bool = True) -> dict:
    """name -> (argv, text the one error line must contain); ``write``: create the input files."""
    g_ok = np.full((2, 2), 1e-5)

    def f(name, data):
        return _write(tmp / name, data) if write else str(tmp / name)

    pickled = tmp / "pickled.npy"
    evil = tmp / "evil.npy"
    if write:
        with pickled.open("wb") as fh:  # an object array: np.load(allow_pickle=False) refuses it
            np.lib.format.write_array(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        evil.write_bytes(pickle.dumps(os.system))
    return {
        "rows 0": (["spice", "export", "--rows", "0"], "--rows"),
        "rows negative": (["spice", "export", "--rows", "-1"], "--rows"),
        "rows float": (["spice", "export", "--rows", "2.5"], "--rows"),
        "rows text": (["spice", "export", "--rows", "many"], "--rows"),
        "rows 3000 export": (["spice", "export", "--rows", "3000", "--cols", "3000"], "3000x3000"),
        "rows 1e6 x 1": (["spice", "export", "--rows", "1000000", "--cols", "1000"], "refused"),
        "validate 300x300": (["spice", "validate", "--rows", "300", "--cols", "300"], "--force"),
        "cols 0": (["spice", "validate", "--cols", "0"], "--cols"),
        "seed negative": (["spice", "export", "--seed", "-1"], "--seed"),
        "seed 2**64": (["spice", "export", "--seed", str(2 ** 64)], "--seed"),
        "seed float": (["spice", "export", "--seed", "1.5"], "--seed"),
        "r-row negative": (["spice", "export", "--r-row", "-1"], "--r-row"),
        "r-col NaN": (["spice", "export", "--r-col", "nan"], "--r-col"),
        "r-source inf": (["spice", "export", "--r-source", "inf"], "--r-source"),
        "r-sense text": (["spice", "export", "--r-sense", "ten"], "--r-sense"),
        "g-min > g-max": (["spice", "export", "--g-min", "1e-3", "--g-max", "1e-4"], "--g-max"),
        "g-max 0": (["spice", "export", "--g-max", "0"], "--g-max"),
        "v-max NaN": (["spice", "export", "--v-max", "nan"], "--v-max"),
        "tolerance 0": (["spice", "validate", "--tolerance", "0"], "--tolerance"),
        "tolerance 1": (["spice", "validate", "--tolerance", "1"], "--tolerance"),
        "backend gpu": (["spice", "validate", "--backend", "gpu"], "--backend"),
        "dialect hspice": (["spice", "export", "--dialect", "hspice"], "--dialect"),
        "topology 2T2R": (["spice", "export", "--topology", "2T2R"], "--topology"),
        "ngspice missing": (["spice", "validate", "--backend", "batch", "--ngspice", "/nonexistent"], "apt-get"),
        "conductances missing": (["spice", "export", "--conductances", str(tmp / "missing.npy")], "not found"),
        "conductances empty file": (["spice", "export", "--conductances", f("empty.npy", b"")], "--conductances"),
        "conductances garbage": (["spice", "export", "--conductances", f("garbage.npy", b"\x93NUMPY garbage")],
                                 "--conductances"),
        "conductances pickle object array": (["spice", "export", "--conductances", str(pickled)], "--conductances"),
        "conductances raw pickle": (["spice", "export", "--conductances", str(evil)], "--conductances"),
        "conductances 1-D": (["spice", "export", "--conductances", f("g1.npy", np.full(4, 1e-5))], "2-D"),
        "conductances 3-D": (["spice", "export", "--conductances", f("g3.npy", np.full((2, 2, 2), 1e-5))], "2-D"),
        "conductances NaN": (["spice", "export", "--conductances", f("gnan.npy", np.array([[1e-5, np.nan]]))],
                             "NaN"),
        "conductances negative": (["spice", "export", "--conductances", f("gneg.npy", -g_ok)], "[0, 1] S"),
        "conductances in uS": (["spice", "export", "--conductances", f("gus.npy", g_ok * 1e6)], "1e-6"),
        "conductances bool": (["spice", "export", "--conductances", f("gbool.npy", np.ones((2, 2), bool))],
                              "real numbers"),
        "conductances complex": (["spice", "export", "--conductances", f("gc.npy", g_ok.astype(complex))],
                                 "real numbers"),
        "conductances csv text": (["spice", "export", "--conductances", f("g.csv", "1e-5,abc\n1e-5,1e-5\n")],
                                  "--conductances"),
        "conductances csv ragged": (["spice", "export", "--conductances", f("gr.csv", "1e-5,1e-5\n1e-5\n")],
                                    "--conductances"),
        "conductances csv empty": (["spice", "export", "--conductances", f("ge.csv", "")], "--conductances"),
        "conductances extension": (["spice", "export", "--conductances", f("g.mat", b"x")], ".npy or .csv"),
        "conductances is a directory": (["spice", "export", "--conductances", str(tmp)], "--conductances"),
        "conductances vs rows": (["spice", "export", "--rows", "3", "--conductances", f("g2.npy", g_ok)],
                                 "disagree"),
        "inputs wrong length": (["spice", "export", "--rows", "2", "--cols", "2", "--inputs",
                                 f("v3.npy", np.zeros(3))], "--inputs"),
        "inputs NaN": (["spice", "export", "--rows", "2", "--inputs", f("vn.npy", np.array([0.1, np.nan]))],
                       "--inputs"),
        "inputs 100 V": (["spice", "export", "--rows", "2", "--inputs", f("vh.npy", np.array([0.1, 100.0]))],
                         "--inputs"),
        "preset family": (["spice", "export", "--preset", "sram"], "--preset"),
        "preset name": (["spice", "export", "--preset", "pcm:nope"], "unknown preset"),
        "preset volatile": (["spice", "export", "--preset", "volatile"], "--preset"),
        "preset injection": (["spice", "export", "--preset", "pcm:x\n.control"], "--preset"),
        "t-read without preset": (["spice", "export", "--t-read", "10"], "--t-read"),
        "t-read negative": (["spice", "export", "--preset", "pcm", "--t-read", "-1"], "--t-read"),
        "preset target outside window": (["spice", "export", "--preset", "pcm", "--g-min", "1e-3", "--g-max", "2e-3"],
                                         "g_max"),
        "out is a directory": (["spice", "export", "--out", str(tmp)], "--out"),
        "out unwritable": (["spice", "export", "--out", "/sys/memxbar/a.cir"], "not writable"),
        "out under a file": (["spice", "export", "--out", f("afile", "x") + "/a.cir"], "not a directory"),
        "json unwritable": (["spice", "validate", "--json", "/sys/memxbar/r.json"], "not writable"),
        "neuron dt 1e-15": (["spice", "validate-neuron", "--dt", "1e-15"], "refused"),
        "neuron t-stop 1e3": (["spice", "validate-neuron", "--t-stop", "1e3"], "validating the mif neuron"),
        "neuron oscillator 1 ms": (["spice", "validate-neuron", "--kind", "oscillator", "--t-stop", "1e-3"],
                                   "--force"),
        "neuron t-stop not multiple": (["spice", "validate-neuron", "--t-stop", "2.5e-6", "--dt", "1e-6"],
                                       "whole number"),
        "neuron width >= period": (["spice", "validate-neuron", "--waveform", "pulses", "--period", "1e-5",
                                    "--width", "2e-5"], "--width"),
        "neuron amplitude NaN": (["spice", "validate-neuron", "--amplitude", "nan"], "--amplitude"),
        "neuron dt-sim not dividing": (["spice", "validate-neuron", "--dt-sim", "3e-7"], "dt_sim"),
        "neuron kind": (["spice", "validate-neuron", "--kind", "lif"], "--kind"),
        "network rails crossed": (["spice", "validate-network", "--v-low", "0.3", "--v-high", "0.2"], "v_low"),
        "network gain 0": (["spice", "validate-network", "--current-gain", "0"], "--current-gain"),
        "network swing 0": (["spice", "validate-network", "--v-swing", "0"], "--v-swing"),
        "network seed negative": (["spice", "validate-network", "--seed", "-2"], "--seed"),
    }


# ------------------------------------------------------------------ classification
def classify_api(call, needle: str) -> tuple[str, str]:
    """``("clear", message)``, ``("traceback", repr)`` or ``("silent", repr(result))``."""
    try:
        result = call()
    except (ValueError, OSError) as exc:
        text = str(exc)
        first = text.splitlines()[0] if text else ""
        return ("clear" if needle.lower() in text.lower() and first else "unclear"), first
    except Exception as exc:  # noqa: BLE001 - any other exception is a traceback for the user
        from circuits.spice.ngspice import NgspiceNotFoundError, SpiceSimulationError

        if isinstance(exc, (NgspiceNotFoundError, SpiceSimulationError)) and needle.lower() in str(exc).lower():
            return "clear", str(exc).splitlines()[0]
        return "traceback", f"{type(exc).__name__}: {exc}"
    return "silent", repr(result)[:200]


def classify_cli(argv: list[str], needle: str) -> tuple[str, str]:
    from training.cli import main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if code == 0:
        return "silent", out.getvalue()[:200]
    one = len(lines) == 1 and lines[0].startswith("xbar: error: ") and needle in lines[0]
    return ("clear" if code == 2 and one else "unclear"), " | ".join(lines)[:400]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MEMXBAR_DEBUG", raising=False)
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", list(api_cases()))
def test_spice_api_hostile_input_is_a_clear_error(name):
    call, needle = api_cases()[name]
    outcome, detail = classify_api(call, needle)
    assert outcome == "clear", f"{name}: {outcome}: {detail}"


@pytest.mark.parametrize("name", list(cli_cases(Path("/nonexistent"), write=False)))
def test_spice_cli_hostile_input_is_one_line_exit_2(name, tmp_path):
    argv, needle = cli_cases(tmp_path)[name]
    outcome, detail = classify_cli(argv, needle)
    assert outcome == "clear", f"{name}: {outcome}: {detail}"


class _Hang(BaseException):
    pass


def tally(timeout_s: int = 60) -> dict:
    """Run every case (each stopped after ``timeout_s`` s: a "hang"); count the outcomes
    (``python tests/test_bad_inputs_spice.py``)."""
    import signal
    import tempfile

    def alarm(*_):
        raise _Hang

    counts, bad = {}, []
    previous = signal.signal(signal.SIGALRM, alarm)
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"api: {k}", classify_api, *v) for k, v in api_cases().items()]
        cases += [(f"cli: {k}", classify_cli, *v) for k, v in cli_cases(Path(tmp)).items()]
        for name, classify, what, needle in cases:
            signal.alarm(timeout_s)
            try:
                outcome, detail = classify(what, needle)
            except _Hang:
                outcome, detail = "hang", f"still running after {timeout_s} s"
            except MemoryError as exc:
                outcome, detail = "traceback", f"MemoryError: {exc}"
            finally:
                signal.alarm(0)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome != "clear":
                bad.append(f"{name}: {outcome}: {detail}")
    signal.signal(signal.SIGALRM, previous)
    return {"tried": sum(counts.values()), **counts, "not clear": bad}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.pop("MEMXBAR_DEBUG", None)
    result = tally()
    for line in result.pop("not clear"):
        print(line)
    print(result)
