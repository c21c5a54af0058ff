"""Netlist builder safety, the ngspice runner, and the RRAM subcircuit's transient vs memxbar."""
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
