"""Memristive neurons and a small fully memristive network against ngspice; netlist safety; CLI.

The ngspice tests share one xdist group (libngspice is a process singleton; run with
``--dist loadgroup``). Targets: spike times within 1 % of the window, membrane voltage within
1 % of its swing (the oscillator's membrane: see its test).
"""
import json
import math

import numpy as np
import pytest
import torch

from circuits.neurons.mif import MIFParameters
from circuits.neurons.oscillator import oscillator_period
from circuits.spice.netlist import Netlist, NetlistError
from circuits.spice.neuron_export import (mif_netlist, network_netlist, oscillator_netlist, pwl_points,
                                          volatile_instance, volatile_subcircuit)
from circuits.spice.neuron_validate import (default_network, network_forward, threshold_crossings, validate_network,
                                            validate_neuron)
from circuits.spice.ngspice import run_netlist
from devices.volatile import SwitchParameters
from training.cli import main as xbar_main

ngspice = pytest.mark.xdist_group("ngspice")
DT = 1e-6  # s, waveform sample step of the MIF tests (the MIF paper's step)
N = 100  # samples: a 100 µs window


def pulse_train(amplitude: float, period: int = 25, width: int = 10) -> np.ndarray:
    """``amplitude`` A for ``width`` samples at the start of every ``period`` samples."""
    k = np.arange(N)
    return np.where(k % period < width, amplitude, 0.0)


# ------------------------------------------------------------------------ MIF neuron
@ngspice
def test_mif_dc_step_matches_ngspice():
    rep = validate_neuron("mif", np.full(N, 20e-6), DT, spike_level=0.1)
    assert rep.passed, rep.summary()
    assert rep.max_membrane_err <= 3e-3 and rep.max_spike_time_err <= 1e-3  # measured 5e-4, 1e-7
    # physics: the membrane overshoots past v_on = 110 mV (M1 turns ON) and repolarises
    assert 0.18 < rep.swing < 0.3
    assert len(rep.spike_times_spice["mif"]) == 1


@ngspice
def test_mif_pulse_train_matches_ngspice():
    rep = validate_neuron("mif", pulse_train(30e-6), DT, spike_level=0.1)
    assert rep.passed, rep.summary()
    spikes = rep.spike_times_spice["mif"]
    assert len(spikes) == 4  # one graded spike per pulse, each shortly after its onset
    assert np.allclose(spikes, [0, 25e-6, 50e-6, 75e-6], atol=2e-6)
    # measured 1.3e-3 and 6e-6; a 5 mV (10 %) error in E2 alone gives 9e-3, inside the 1 % target
    assert rep.max_membrane_err <= 3e-3 and rep.max_spike_time_err <= 1e-3


@ngspice
def test_forward_euler_at_paper_step_fails_where_exact_update_holds():
    """Δt = 1 µs, the MIF paper's parameters: G_on Δt / C = 10, so Euler's factor 1 − G Δt/C < −1."""
    i_in = np.full(N, 20e-6)
    exact = validate_neuron("mif", i_in, DT, dt_sim=DT, spike_level=0.1)
    euler = validate_neuron("mif", i_in, DT, dt_sim=DT, method="euler", spike_level=0.1)
    assert exact.max_membrane_err <= 0.01 and exact.max_spike_time_err <= 0.01, exact.summary()
    assert exact.passed
    assert not euler.passed
    assert not math.isfinite(euler.max_membrane_err) or euler.max_membrane_err > 1.0, euler.summary()


# ------------------------------------------------------------------------ oscillator
@ngspice
def test_oscillator_dc_period_matches_ngspice():
    """400 µA DC from the reset level v_lo = 0.72 V: tonic spiking with a ≈ 1 µs period."""
    rep = validate_neuron("oscillator", np.full(40, 400e-6), 0.1e-6, dt_sim=0.5e-9, v0=0.72)
    spikes = rep.spike_times_spice["oscillator"]
    assert len(spikes) >= 3
    # measured 1.5e-4 (period) and 1.2e-4 (spike times) with the second-order step (issue 14)
    assert rep.period_rel_err <= 1e-3 and rep.max_spike_time_err <= 1e-3, rep.summary()
    # the regenerative switch fires a few k_th before the ideal threshold: period ≈ 4 % below the formula
    ideal = float(oscillator_period(400e-6))
    assert 0.9 * ideal < rep.period_spice < ideal
    # the membrane within 1 % of its 0.28 V swing on the steep discharges (issue 14 target): measured
    # 2.1e-3 at 0.5 ns (1.5e-3 at 0.25 ns, where the torch step is within 3e-5 of a Radau reference,
    # so the rest is ngspice's own step); the previous first-order switch step gave 2-4 %
    assert rep.passed and rep.max_membrane_err <= 0.01, rep.summary()


# ------------------------------------------------------------------------ network
@ngspice
def test_network_matches_ngspice():
    rep = validate_network(seed=0, spike_level=0.1)
    assert rep.passed, rep.summary()
    assert set(rep.spike_times_spice) == {"l1_0", "l1_1", "l1_2", "l2_0", "l2_1"}
    assert all(len(t) >= 2 for t in rep.spike_times_spice.values())  # both layers spike repeatedly
    assert rep.swing > 0.3
    assert rep.max_membrane_err <= 3e-3  # measured 6e-4


@ngspice
def test_network_with_saturating_row_buffers_matches_ngspice():
    """Row buffers with rails at ±v_swing (tanh) in both simulators: the membranes agree and the
    second layer's row voltages never exceed the swing although g_V · v does."""
    crossbars, v_in, dt = default_network(0)
    swing = 0.2
    rep = validate_network(crossbars, v_in, dt, v_gain=4.0, v_swing=swing, spike_level=0.1)
    assert rep.passed, rep.summary()
    assert rep.max_membrane_err <= 3e-3, rep.summary()
    res = run_netlist(network_netlist(crossbars, v_in, dt, v_gain=4.0, v_swing=swing, max_step=50e-9).render())
    rows = np.stack([res[f"in_l2_{i}"] for i in range(3)])
    mem = np.stack([res[f"mem_l1_{i}"] for i in range(3)])
    assert 4.0 * mem.max() > 1.5 * swing  # the linear buffer would exceed the rails ...
    assert np.abs(rows).max() <= swing * (1 + 1e-9)  # ... the saturating one does not
    np.testing.assert_allclose(rows, swing * np.tanh(4.0 * mem / swing), rtol=1e-5, atol=1e-9)  # reltol 1e-6
    with pytest.raises(ValueError, match="v_swing"):
        network_netlist(crossbars, v_in, dt, v_swing=-0.1)


@ngspice
def test_compliance_rails_match_a_clamped_ngspice_circuit():
    """Mirror compliance: torch clips each exact step at the rail (smoothed over v_knee); the
    export clamps the membrane to the rail with a stiff B source. A 0.2 V rail that every neuron
    of the default network reaches, and a single neuron driven at 100 µA onto a 0.15 V rail."""
    crossbars, v_in, dt = default_network(0)
    p = MIFParameters(v_low=-0.5, v_high=0.2, v_knee=1e-4)
    rep = validate_network(crossbars, v_in, dt, params=p, v_gain=4.0, v_swing=0.2, spike_level=0.1)
    assert rep.passed, rep.summary()
    assert rep.max_membrane_err <= 3e-3, rep.summary()  # measured 1.4e-3
    assert abs(rep.swing - 0.2) < 1e-3  # the rail bounds every membrane (the lowest sits at 0 V)
    neuron = validate_neuron("mif", np.full(100, 100e-6), 1e-6,
                             params=MIFParameters(v_high=0.15, v_knee=1e-4))
    assert neuron.passed and neuron.max_membrane_err <= 1e-2, neuron.summary()  # measured 3.4e-3
    text = network_netlist(crossbars, v_in, dt, p).render()
    assert text.count("Brail") == 5 and "max(" in text


@ngspice
def test_network_mismatch_is_detected():
    """A 5 % error in the torch side's mirror gain must show up against ngspice."""
    crossbars, v_in, dt = default_network(0)
    res = run_netlist(network_netlist(crossbars, v_in, dt, current_gain=1.0, max_step=50e-9).render())
    t, (v1, _) = network_forward(crossbars, v_in, dt, current_gain=1.05, substeps=10)
    ref = np.interp(t, res["time"], res["mem_l1_0"])
    assert np.abs(v1[:, 0] - ref).max() / np.ptp(res["mem_l1_0"]) > 0.01


def test_network_netlist_wiring_is_deterministic():
    crossbars, v_in, dt = default_network(0)
    text = network_netlist(crossbars, v_in, dt, current_gain=2.0, v_gain=0.5).render()
    assert text == network_netlist(crossbars, v_in, dt, current_gain=2.0, v_gain=0.5).render()
    for card in ("Vsense_l1_0 sense_l1_0 0 DC 0", "Fmir_l1_0 0 mem_l1_0 Vsense_l1_0 2",
                 "Ebuf_l2_2 in_l2_2 0 mem_l1_2 0 0.5", "Xm1_l2_1 mem_l2_1 rev1 x1_l2_1 mss_m1",
                 ".subckt xbar_l1 in_0 in_1 in_2 in_3 sense_0 sense_1 sense_2"):
        assert card in text, card
    with pytest.raises(ValueError, match="rows"):
        network_netlist(crossbars[::-1], v_in, dt)


# ------------------------------------------------------------------------ netlist safety and inputs
def test_pwl_edges_carry_the_charge_of_ideal_steps():
    values = np.array([0.0, 3.0, 3.0, -1.0, 2.0, 2.0])
    pts = np.array(pwl_points(values, 1e-6, edge=0.3e-6))
    charge = np.trapezoid(pts[:, 1], pts[:, 0])
    assert charge == pytest.approx(values.sum() * 1e-6, rel=1e-12)
    assert np.all(np.diff(pts[:, 0]) > 0)
    with pytest.raises(ValueError, match="edge"):
        pwl_points(values, 1e-6, edge=1e-6)


@pytest.mark.parametrize("bad", ["x 0", "x;shell rm", "1x", "x\n.control", "a.b", ""])
def test_bad_names_are_rejected(bad):
    net = Netlist("t")
    with pytest.raises(NetlistError):
        volatile_subcircuit(net, bad, SwitchParameters())
    volatile_subcircuit(net, "mss", SwitchParameters())
    with pytest.raises(NetlistError):
        volatile_instance(net, "m1", "a", "0", bad, "mss", 0.1)


def test_nan_and_out_of_range_values_are_refused():
    i_ok = np.full(5, 1e-6)
    with pytest.raises(ValueError, match="i_in"):
        mif_netlist(np.array([1e-6, np.nan]), DT)
    with pytest.raises(ValueError, match="dt"):
        mif_netlist(i_ok, float("nan"))
    with pytest.raises(ValueError):
        mif_netlist(i_ok, DT, v0=float("nan"))
    with pytest.raises(ValueError, match="x0"):
        mif_netlist(i_ok, DT, x0=1.5)
    with pytest.raises(ValueError, match="r_on"):
        volatile_subcircuit(Netlist("t"), "mss", SwitchParameters(r_on=float("nan")))
    with pytest.raises(ValueError, match="c2c_sigma"):
        volatile_subcircuit(Netlist("t"), "mss", SwitchParameters(c2c_sigma=0.1))
    with pytest.raises(ValueError, match="per-device"):
        volatile_subcircuit(Netlist("t"), "mss", SwitchParameters(v_on=torch.tensor([0.1, 0.12])))
    with pytest.raises(ValueError, match="c"):
        mif_netlist(i_ok, DT, MIFParameters(c=-1e-10))
    crossbars, v_in, dt = default_network(0)
    with pytest.raises(ValueError, match="current_gain"):
        network_netlist(crossbars, v_in, dt, current_gain=float("nan"))
    with pytest.raises(ValueError, match="kind"):
        validate_neuron("lif", i_ok, DT)
    with pytest.raises(ValueError, match="method"):
        validate_neuron("oscillator", i_ok, DT, method="euler")
    with pytest.raises(ValueError, match="dt_sim"):
        validate_neuron("mif", i_ok, DT, dt_sim=0.3e-6)


def test_oscillator_netlist_and_xyce_render():
    net = oscillator_netlist(np.full(3, 1e-4), 1e-7)
    text = net.render()
    assert "Xsw mem load xsw mss_sw" in text and "Rload load 0 100" in text and "abs(" in text
    assert "stp(" not in net.render("xyce")  # no u() in these expressions


def test_threshold_crossings_interpolate():
    assert threshold_crossings([0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 0.0, 4.0], 1.0) == pytest.approx([0.5, 2.25])


# ------------------------------------------------------------------------ CLI
@ngspice
def test_cli_validate_neuron(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = xbar_main(["spice", "validate-neuron", "--kind", "mif", "--amplitude", "20e-6", "--t-stop", "100e-6",
                      "--dt-sim", "1e-7", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.startswith("PASS mif")
    report = json.loads(out.read_text())["report"]
    assert report["passed"] and report["max_membrane_err"] <= 0.01
    assert xbar_main(["spice", "validate-neuron", "--t-stop", "2.5e-6", "--dt", "1e-6"]) == 2
    with pytest.raises(SystemExit):
        xbar_main(["spice", "validate-neuron", "--kind", "lif"])


@ngspice
def test_cli_validate_network(tmp_path, capsys):
    out = tmp_path / "network.json"
    code = xbar_main(["spice", "validate-network", "--v-gain", "4", "--v-swing", "0.2", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.startswith("PASS network")
    report = json.loads(out.read_text())["report"]
    assert report["passed"] and report["max_membrane_err"] <= 3e-3
    with pytest.raises(SystemExit):
        xbar_main(["spice", "validate-network", "--v-swing", "-0.2"])
    assert xbar_main(["spice", "validate-network", "--v-low", "0.3", "--v-high", "0.2"]) == 2
    assert "v_low must be < v_high" in capsys.readouterr().err


# ------------------------------------------------------------------------ caps on unbounded work (issue 15)
@pytest.mark.parametrize("args, expected", [
    (["--dt", "1e-15"], "refused"),                                   # 1e11 samples: ~800 GB before the fix
    (["--kind", "oscillator", "--t-stop", "1e-3"], "pass --force"),   # 4e6 torch steps: ~30 min
    (["--dt-sim", "1e-15"], "refused"),                               # 1e9 substeps per sample
])
def test_cli_refuses_unbounded_neuron_validations_with_the_estimate(args, expected, capsys):
    import time

    start = time.perf_counter()
    assert xbar_main(["spice", "validate-neuron", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - start < 10.0  # refused at once, before any allocation or simulation
    assert len(err.splitlines()) == 1 and err.startswith("xbar: error: validating the")
    assert expected in err and ("about" in err)


def test_validate_neuron_caps_torch_steps():
    i_in = torch.full((100,), 20e-6, dtype=torch.float64)
    with pytest.raises(ValueError, match="max_torch_steps"):
        validate_neuron("mif", i_in, 1e-6, dt_sim=1e-12)  # 1e8 torch steps
    with pytest.raises(ValueError, match="max_torch_steps"):
        validate_neuron("mif", i_in, 1e-6, max_torch_steps=100)  # 2000 steps
    with pytest.raises(ValueError, match="max_torch_steps"):
        validate_neuron("mif", i_in, 1e-6, max_torch_steps=1.5)
    with pytest.raises(ValueError, match="max_torch_steps"):
        validate_network(dt_sim=1e-14)
