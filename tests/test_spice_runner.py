"""Netlist builder safety, the ngspice runner, and the RRAM subcircuit's transient vs memxbar."""
import os

import numpy as np
import pytest
import torch

from circuits.spice.device_models import rram_cell
from circuits.spice.netlist import Netlist, NetlistError, const, func, ident, num
from circuits.spice.ngspice import NgspiceNotFoundError, run_netlist
from devices.rram import RRAMParams
from devices.rram_physics import simulate_waveform


def divider() -> Netlist:
    net = Netlist("divider")
    net.vsource("in", "a", "0", dc=1.0)
    net.resistor("top", "a", "mid", 1e3)
    net.resistor("bottom", "mid", "0", 3e3)
    net.op()
    return net


@pytest.mark.parametrize("backend", ["shared", "batch"])
def test_operating_point_is_exact(backend):
    res = run_netlist(divider().render(), backend=backend)
    assert res["mid"][0] == pytest.approx(0.75, rel=1e-14)
    assert res["vin#branch"][0] == pytest.approx(-0.25e-3, rel=1e-14)
    assert res.backend == backend


def test_missing_ngspice_binary_raises_documented_error():
    with pytest.raises(NgspiceNotFoundError, match="apt-get install ngspice"):
        run_netlist(divider().render(), backend="batch", ngspice_binary="/nonexistent/ngspice")


@pytest.mark.parametrize("bad", ["a\nb", ".control", "x y", 'q"uote', "r;shell", "", "1abc", "a" * 65, "v(x)",
                                 "n\r.endc"])
def test_injection_attempts_in_names_are_rejected(bad):
    net = Netlist("t")
    with pytest.raises(NetlistError):
        net.resistor(bad, "a", "b", 1.0)
    with pytest.raises(NetlistError):
        net.resistor("ok", bad, "b", 1.0)
    with pytest.raises(NetlistError):
        ident(bad)


def test_numbers_are_formatted_not_interpolated():
    assert num(0.1) == "0.10000000000000001"
    assert float(num(1 / 3)) == 1 / 3
    for bad in (float("nan"), float("inf"), "1; .control", None):
        with pytest.raises(NetlistError):
            num(bad)
    net = Netlist("t")
    with pytest.raises(NetlistError):
        net.resistor("r", "a", "b", float("nan"))
    with pytest.raises(NetlistError):
        func("system", const(1.0))
    # comments cannot start a new card
    net.comment("hello\n.control\nshell rm -rf /\n.endc")
    net.resistor("r", "a", "0", 1.0)
    net.op()
    text = net.render()
    assert not any(line.strip().lower().startswith((".control", "shell", ".endc")) for line in text.splitlines())


def test_xyce_dialect_options():
    net = divider()
    net.set_options(reltol=1e-9, abstol=1e-15)
    assert ".options reltol=1.0000000000000001e-09 abstol=1.0000000000000001e-15" in net.render("ngspice")
    xyce = net.render("xyce")
    assert ".options nonlin reltol=1.0000000000000001e-09" in xyce
    assert ".options timeint abstol=1.0000000000000001e-15" in xyce
    with pytest.raises(NetlistError):
        net.render("hspice")


def _rram_pulse(amplitude: float, width: float, gap0: float):
    p = RRAMParams()
    pwl = [(0.0, 0.0), (10e-9, amplitude), (10e-9 + width, amplitude), (20e-9 + width, 0.0), (60e-9 + width, 0.0)]
    net = Netlist("rram pulse")
    net.vsource("in", "te", "0", pwl=pwl)
    gap_node = rram_cell(net, "c0", "te", "0", p, gap0)
    net.tran(1e-9, pwl[-1][0], max_step=2e-9, uic=True)
    net.set_options(reltol=1e-6, abstol=1e-15, vntol=1e-9)
    res = run_netlist(net.render())
    t, v = res["time"], res["te"]
    gap_spice, i_spice = res[gap_node] * 1e-9, -res["vin#branch"]
    gap_mx, i_mx = simulate_waveform(p.gap_params(), torch.tensor(gap0, dtype=torch.float64),
                                     torch.tensor(t), torch.tensor(v), max_gap_step=2e-12)
    return gap_spice, i_spice, gap_mx.numpy(), i_mx.numpy()


@pytest.mark.parametrize("amplitude, gap0", [(1.6, 1.3e-9), (-1.25, 0.4e-9)], ids=["set", "reset"])
def test_rram_pulse_transient_matches_ngspice(amplitude, gap0):
    gap_s, i_s, gap_m, i_m = _rram_pulse(amplitude, 1e-6, gap0)
    swing_gap = np.ptp(gap_s)
    assert swing_gap > 0.03e-9  # the pulse really switched the device
    assert np.abs(gap_m - gap_s).max() <= 0.01 * swing_gap
    assert np.abs(i_m - i_s).max() <= 0.01 * np.ptp(i_s)


# ------------------------------------------------------------------ no user init file runs (issue 15)
_PROBE = r"""
import sys
from circuits.spice.ngspice import run_netlist
for backend in sys.argv[1:]:
    res = run_netlist("t\nV1 a 0 DC 1\nR1 a 0 1k\n.op\n.end\n", backend=backend)
    assert res.backend == backend and abs(res["a"][0] - 1.0) < 1e-12
print("ran")
"""


def test_a_planted_spiceinit_never_runs(tmp_path):
    """ngspice sources ``.spiceinit``/``spice.rc`` from the working directory, $HOME,
    $USERPROFILE and $SPICE_USERINIT_DIR; a ``shell`` line there used to run when a user validated
    inside a received directory (libngspice read ./.spiceinit in the user's process). Fresh
    process: the shared library is loaded once per process."""
    import subprocess
    import sys
    from pathlib import Path

    received, home = tmp_path / "received", tmp_path / "home"
    received.mkdir()
    home.mkdir()
    markers = []
    for where in (received, home):
        for name in (".spiceinit", "spice.rc"):
            marker = tmp_path / f"PWNED-{where.name}-{name.lstrip('.')}"
            (where / name).write_text(f"echo planted\nshell touch {marker}\n")
            markers.append(marker)
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home), "SPICE_USERINIT_DIR": str(home),
           "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, "shared", "batch"], cwd=received, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ran" in proc.stdout, proc.stderr[-2000:]
    assert not [m.name for m in markers if m.exists()]
    assert "planted" not in proc.stdout + proc.stderr
    # the user's process is left as it was: working directory and variables restored
    assert (received / ".spiceinit").is_file()


def test_sandbox_restores_cwd_and_variables(tmp_path, monkeypatch):
    from circuits.spice.ngspice import USER_INIT_VARIABLES, _sandbox

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("USERPROFILE", raising=False)
    with _sandbox() as box:
        assert os.getcwd() == box != str(tmp_path) and not os.listdir(box)
        assert all(os.environ[name] == box for name in USER_INIT_VARIABLES)
    assert os.getcwd() == str(tmp_path) and os.environ["HOME"] == str(tmp_path)
    assert "USERPROFILE" not in os.environ and not os.path.exists(box)


@pytest.mark.parametrize("bad", ["reltol\n", "abc\n", "gmin\n.control"])
def test_identifiers_with_a_trailing_newline_are_rejected(bad):
    # ``^...$`` with re.match accepts one trailing newline; identifiers are matched whole
    with pytest.raises(NetlistError):
        ident(bad)
    net = divider()
    with pytest.raises(NetlistError):
        net.set_options(**{bad: 1.0})
    with pytest.raises(NetlistError):
        net.vsource(bad, "a", "0", dc=1.0)


def test_control_blocks_are_refused_by_the_runner():
    text = divider().render().replace(".end", ".control\nshell echo hi\n.endc\n.end")
    with pytest.raises(ValueError, match=r"\.control block"):
        run_netlist(text, backend="batch")


@pytest.mark.parametrize("backend", ["shared", "batch"])
def test_simulation_errors_have_a_telling_first_line(backend):
    from circuits.spice.ngspice import SpiceSimulationError

    # two ideal sources in parallel at different voltages: no operating point exists
    text = "t\nV1 a 0 DC 1\nV2 a 0 DC 2\nR1 a 0 1k\n.op\n.end\n"
    with pytest.raises(SpiceSimulationError) as info:
        run_netlist(text, backend=backend)
    first = str(info.value).splitlines()[0]
    assert first.startswith("ngspice") and len(first) < 300
