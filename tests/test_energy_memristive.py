"""Energy of memristive neurons: the MIF circuit's supply energy (energy conservation, hand-computed
powers) and the meter's accounting of fully memristive networks (no ADC between layers, neuron
energy from the circuit, spikes the neurons emit, the model's own draws untouched)."""
import pytest
import torch

from circuits.neurons import MIFNeuron, MIFState, count_spikes
from circuits.neurons.energy import mif_supply_energy, mif_supply_power
from devices.volatile import volatile_conductance
from training import SpikingMLP
from training.energy import measure_energy
from training.memristive import column_current, memristive_forward, row_input, spike_counts
from xbar.energy import EnergyConfig

DT = 1e-6


def _neuron(**kw) -> MIFNeuron:
    return MIFNeuron(4, dt=kw.pop("dt", DT), dtype=torch.float64, **kw)


def test_supply_power_is_hand_computed():
    neuron = _neuron(v_low=-0.5, v_high=0.5)
    p = neuron.parameters_tuple()
    state = MIFState(torch.tensor([[0.01, 0.03, 0.1, -0.2]], dtype=torch.float64),
                     torch.full((1, 4), 0.3, dtype=torch.float64), torch.full((1, 4), 0.6, dtype=torch.float64))
    i_in = torch.tensor([[2e-5, -3e-5, 0.0, 1e-5]], dtype=torch.float64)
    g2 = volatile_conductance(state.x2, p.m2)
    # mirror: |I| from the rail on its side; E1 = 0 delivers nothing; E2 only while v < E2
    expected = i_in.abs() * 0.5 + (0.05 * g2 * (0.05 - state.v)).clamp_min(0.0)
    torch.testing.assert_close(mif_supply_power(i_in, state, p), expected, rtol=1e-12, atol=0.0)
    assert float(expected[0, 2]) == pytest.approx(0.0)  # v = 0.1 V > E2: the E2 source is not credited
    ideal = _neuron().parameters_tuple()  # no rails: an ideal source delivers max(I v, 0)
    torch.testing.assert_close(mif_supply_power(i_in, state, ideal) - mif_supply_power(torch.zeros_like(i_in), state, ideal),
                               (i_in * state.v).clamp_min(0.0), rtol=1e-12, atol=1e-18)


def test_resting_neuron_costs_e2_squared_through_both_devices():
    """At rest (no input, v = E2 G2/(G1 + G2)) the only cost is E2 driving M2 and M1 in series."""
    neuron = _neuron()
    p = neuron.parameters_tuple()
    x = torch.full((1, 4), neuron.x_init, dtype=torch.float64)
    g1, g2 = volatile_conductance(x, p.m1), volatile_conductance(x, p.m2)
    v = 0.05 * g2 / (g1 + g2)
    power = mif_supply_power(torch.zeros_like(v), MIFState(v, x, x), p)
    torch.testing.assert_close(power, 0.05 ** 2 * g1 * g2 / (g1 + g2), rtol=1e-12, atol=0.0)
    assert float(power.mean()) == pytest.approx(42e-9, rel=0.01)  # 42 nW (module docstring)


def test_supply_energy_conserves_energy_while_no_source_absorbs():
    """Charging from v = 0 with no input: E2 is the only source and never absorbs, so what it
    delivers equals the Joule heat in M1, M2 plus the energy stored on C (to O(dt^2))."""
    neuron = _neuron(v_init=0.0, dt=5e-9)
    p = neuron.parameters_tuple()
    steps = 600  # 3 us: two membrane time constants (1.5 us)
    i_in = torch.zeros(steps, 2, 4, dtype=torch.float64)
    v, states = neuron(i_in, return_states=True)
    initial = neuron.initial_state(2)
    supplied = mif_supply_energy(i_in, states, initial, p, neuron.dt)

    def joule(s):
        g1, g2 = volatile_conductance(s.x1, p.m1), volatile_conductance(s.x2, p.m2)
        return g1 * (s.v - p.e1) ** 2 + g2 * (s.v - p.e2) ** 2

    start = MIFState(*(torch.cat([a.unsqueeze(0), b[:-1]]) for a, b in zip(initial, states)))
    heat = 0.5 * neuron.dt * (joule(start) + joule(states)).sum(0)
    stored = 0.5 * p.c * (v[-1] ** 2 - initial.v ** 2)
    assert float(stored.min()) > 0.1 * float(heat.min())  # both terms matter (stored 31 fJ)
    torch.testing.assert_close(supplied, heat + stored, rtol=1e-4, atol=0.0)


def _mif_net(**params) -> SpikingMLP:
    torch.manual_seed(0)
    network = {"hidden": [16], "neuron": "mif", "dt": DT, "time_steps": 12, "current_gain": 10.0,
               "neuron_params": params}
    return SpikingMLP(4, 3, network, {"mode": "ideal"})


def test_meter_costs_a_mif_network_from_its_circuits():
    model = _mif_net()
    net = model.network
    x = torch.rand(20, 4)
    config = EnergyConfig()
    report = measure_energy(model, x, config=config)
    assert report.neuron_model == "mif circuit"
    # the neurons' energy, from the currents and states of each layer of the model's own pass
    with torch.no_grad():
        _, traces = memristive_forward(model.layers, model.neurons, model.encode(x, 12), current_gain=net.current_gain,
                                       row_gain=net.row_gain, readout=net.readout, readout_scale=net.readout_scale,
                                       v_row_ref=net.v_row_ref, row_swing=net.row_swing, return_traces=True)
        energy, inputs = 0.0, model.encode(x, 12)
        for k, (layer, neuron) in enumerate(zip(model.layers, model.neurons)):
            i_in = column_current(layer(inputs), layer, net.current_gain)
            v, states = neuron(i_in, return_states=True)
            torch.testing.assert_close(v, traces[k], rtol=1e-4, atol=1e-6)  # the replay is the model's pass
            energy += float(mif_supply_energy(i_in, states, neuron.initial_state(len(x)), neuron.parameters_tuple(),
                                              DT).sum())
            if k + 1 < len(model.layers):
                inputs = row_input(traces[k], model.layers[k + 1], net.row_gain, net.v_row_ref, net.row_swing)
    spikes = sum(float(c.sum()) for c in spike_counts(traces, model.neurons))
    assert report.breakdown_J["neuron"] == pytest.approx(energy / len(x), rel=1e-6)
    assert report.spikes_per_inference == pytest.approx(spikes / len(x), abs=0.5)
    assert report.spikes_per_inference > 0
    # no ADC between layers: the 3 output membranes are digitised once per inference; no partial sums
    assert report.breakdown_J["adc"] == pytest.approx(3 * config.adc_energy(None))
    assert report.breakdown_J["digital"] == 0.0
    # one current mirror per output and read (T reads per inference per layer)
    assert report.breakdown_J["sense"] == pytest.approx(12 * (16 + 3) * config.sense_energy)
    # the CMOS neuron figures are not charged
    other = measure_energy(model, x, config=EnergyConfig(neuron_update_energy=1e-9, neuron_spike_energy=1e-9))
    assert other.breakdown_J["neuron"] == pytest.approx(report.breakdown_J["neuron"])


def test_metering_leaves_the_models_c2c_draws_untouched():
    x = torch.rand(8, 4)
    measured, plain = _mif_net(c2c_sigma=0.05), _mif_net(c2c_sigma=0.05)
    report = measure_energy(measured, x)
    assert report.neuron_model == "mif circuit" and report.breakdown_J["neuron"] > 0
    with torch.no_grad():
        plain(x)  # the pass the meter made
        assert torch.equal(measured(x), plain(x))  # the next pass draws the same noise


def test_oscillator_networks_say_their_neurons_use_the_cmos_figures():
    torch.manual_seed(0)
    model = SpikingMLP(4, 3, {"hidden": [8], "neuron": "oscillator", "dt": 2e-9, "time_steps": 30,
                              "current_gain": 10.0}, {"mode": "ideal"})
    x = torch.rand(6, 4)
    report = measure_energy(model, x)
    assert report.neuron_model == "cmos figures (oscillator circuit not modelled)"
    config = EnergyConfig()
    updates = 30 * (8 + 3)
    assert report.breakdown_J["neuron"] == pytest.approx(
        updates * config.neuron_update_energy
        + report.spikes_per_inference * (config.neuron_spike_energy + config.spike_route_energy), rel=1e-9)
