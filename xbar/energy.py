r"""Energy and latency of crossbar reads: the array from the circuit, peripherals from cited figures.

Array (cells and wires). A read applies row voltages ``v`` (V) for the read pulse ``t_read`` (s)
with the columns held at the sense amplifiers' virtual ground (0 V); the energy drawn from the row
sources is ``E = t_read · Σ_i v_i i_in,i`` (J) — everything the cells, the row/column wires and the
driver/sense resistances dissipate (:attr:`xbar.CrossbarSolution.power`). :func:`array_energy`
takes it from the exact circuit solution and splits it into the cells' part
``t_read · Σ_ij v_cell,ij i_cell,ij`` and the rest (wires, drivers, sense resistances). For a linear
array the source currents are linear in ``v``, ``i_in = v @ Y`` with the symmetric row admittance
matrix ``Y`` (S, :func:`row_admittance`: one solve per row with a unit voltage), so
``E = t_read · v Y vᵀ`` (:func:`quadratic_energy`) costs a matrix product per input once ``Y`` is
known. Ideal wires give ``Y = diag(Σ_j G_ij)``: ``E = t_read Σ_ij G_ij v_i²``.

Peripherals, per event (:class:`EnergyConfig`; every default names its source):

* ADC, per conversion: ``E = FoM_W · 2^bits`` (Walden figure of merit, J per conversion step);
  conversion time ``outputs_per_adc / adc_sample_rate``;
* DAC / row driver, per driven input: ``dac_energy_per_bit · bits`` (bit-serial drive as in
  ISAAC; a spike is a 1-bit drive); with ``event_driven`` a row whose input is 0 is not driven;
* sense amplifier (TIA or integrator), per column pair and read: ``sense_energy``;
* digital partial-sum addition (row tiles of one output), per addition: ``partial_sum_energy``;
* neuron circuit: ``neuron_update_energy`` per neuron and time step, ``neuron_spike_energy`` +
  ``spike_route_energy`` per spike.

Latency of one read of a tile (all tiles of a layer read in parallel):
``t_read + outputs_per_adc / adc_sample_rate`` (:meth:`EnergyConfig.read_latency`).

The network-level accounting (spike counts, layers, time steps) is :mod:`training.energy`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from devices.validation import check_bool, check_int, check_real

from .crossbar import Crossbar

Tensor = torch.Tensor

__all__ = ["EnergyConfig", "ArrayEnergy", "array_energy", "row_admittance", "quadratic_energy"]


@dataclass(frozen=True)
class EnergyConfig:
    """Peripheral energy figures and read timing (plain values, SI units: J, s, S/s).

    t_read: read pulse duration (s). Default 100 ns: one crossbar read per 100 ns (10 MHz) in
        ISAAC (Shafiee et al., ISCA 2016, "ISAAC: A convolutional neural network accelerator with
        in-situ analog arithmetic in crossbars").
    adc_fom: Walden figure of merit ``P / (2^ENOB f_s)`` (J per conversion step). Default
        10 fJ: SAR ADCs at 1-250 MS/s in B. Murmann's "ADC Performance Survey 1997-2024"
        reach ≲ 10 fJ/conversion-step (e.g. Verbruggen et al., 9.7 fJ at 250 MS/s, ENOB 9.45,
        as tabulated from the survey by B. E. Jonsson, converterpassion.wordpress.com, 2012);
        ``E = adc_fom · 2^bits`` = 2.6 pJ for 8 bits, close to ISAAC's 8-bit 1.28 GS/s ADC
        (1.67 pJ per conversion; Kull et al., ISSCC 2013, via Andrulis et al.,
        arXiv:2404.06553 / hwcomponents-library).
    adc_sample_rate: conversions per second of one ADC (S/s). Default 100 MS/s (the speed class
        of the FoM above).
    outputs_per_adc: column pairs that share one ADC (converted one after another). Default 1.
    ideal_converter_bits: resolution at which an ideal converter (``adc_bits``/``dac_bits`` =
        None in the hardware config) is costed. Default 8.
    dac_energy_per_bit: energy of driving one row with one bit (J). Default 0.42 pJ: ISAAC's
        1-bit DAC (4 mW for 8·128 DACs at 1.2·10^7 reads/s, derived in Andrulis et al.'s
        hwcomponents-library, isaac.py).
    sense_energy: energy of one column pair's sense amplifier per read (J). Default 1.45 pJ:
        NeuRRAM's analog sample (1.2 pJ) plus integrator (0.25 pJ) per read (Wan et al.,
        Nature 608, 504 (2022), 130 nm; figures from hwcomponents-library, neurram.py).
    partial_sum_energy: one digital addition of two row tiles' partial outputs (J). Default
        0.021 pJ: ISAAC's 16-bit shift-and-add (hwcomponents-library, isaac.py).
    neuron_update_energy: one neuron's update per time step (J). Default 52 pJ: Loihi's inactive
        neuron update (Davies et al., IEEE Micro 38(1), 82 (2018), Table 2: 81 pJ active / 52 pJ
        inactive).
    neuron_spike_energy: extra energy of a neuron that fires (J). Default 29 pJ = 81 - 52 pJ
        (Loihi, active - inactive update, same table).
    spike_route_energy: delivering one spike to the next layer's input (J). Default 1.7 pJ:
        Loihi's within-tile spike energy (same table).
    event_driven: rows whose input is 0 (no spike) are not driven: no DAC energy for them.
    """

    t_read: float = 100e-9
    adc_fom: float = 10e-15
    adc_sample_rate: float = 100e6
    outputs_per_adc: int = 1
    ideal_converter_bits: int = 8
    dac_energy_per_bit: float = 0.42e-12
    sense_energy: float = 1.45e-12
    partial_sum_energy: float = 0.021e-12
    neuron_update_energy: float = 52e-12
    neuron_spike_energy: float = 29e-12
    spike_route_energy: float = 1.7e-12
    event_driven: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self) -> "EnergyConfig":
        """Raise ``ValueError`` naming the first bad field and its allowed range."""
        check_real("t_read (read pulse, s)", self.t_read, low=0.0, low_open=True)
        check_real("adc_fom (J per conversion step)", self.adc_fom, low=0.0)
        check_real("adc_sample_rate (S/s)", self.adc_sample_rate, low=0.0, low_open=True)
        check_int("outputs_per_adc", self.outputs_per_adc, low=1)
        check_int("ideal_converter_bits", self.ideal_converter_bits, low=1, high=32)
        for name in ("dac_energy_per_bit", "sense_energy", "partial_sum_energy", "neuron_update_energy",
                     "neuron_spike_energy", "spike_route_energy"):
            check_real(f"{name} (J)", getattr(self, name), low=0.0)
        check_bool("event_driven", self.event_driven)
        return self

    # ------------------------------------------------------------------ per-event figures
    def adc_energy(self, bits: int | None) -> float:
        """Energy of one conversion (J): ``adc_fom · 2^bits`` (``bits`` None: ideal converter)."""
        bits = self.ideal_converter_bits if bits is None else check_int("bits", bits, low=1, high=32)
        return self.adc_fom * 2.0 ** bits

    def dac_energy(self, bits: int | None) -> float:
        """Energy of driving one row with a ``bits``-bit input (J): ``dac_energy_per_bit · bits``."""
        bits = self.ideal_converter_bits if bits is None else check_int("bits", bits, low=1, high=32)
        return self.dac_energy_per_bit * bits

    @property
    def adc_time(self) -> float:
        """Time (s) the ADCs of a tile need to convert its outputs: ``outputs_per_adc / adc_sample_rate``."""
        return self.outputs_per_adc / self.adc_sample_rate

    @property
    def read_latency(self) -> float:
        """Latency (s) of one read of a tile: read pulse plus conversions."""
        return self.t_read + self.adc_time

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EnergyConfig":
        if not isinstance(values, dict):
            raise ValueError(f"energy config must be a table, got {values!r}")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown energy option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**values)

    def replace(self, **changes) -> "EnergyConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class ArrayEnergy:
    """Energy (J) of each read of a batch, ``(batch,)`` float64: ``total`` drawn from the sources,
    ``cells`` dissipated in the cells, ``wires`` = ``total - cells`` (wires, drivers, sense)."""

    total: Tensor
    cells: Tensor
    wires: Tensor


def _check_crossbar(crossbar) -> Crossbar:
    if not isinstance(crossbar, Crossbar):
        raise ValueError(f"crossbar must be an xbar.Crossbar, got {type(crossbar).__name__}")
    return crossbar


def array_energy(crossbar: Crossbar, v, t_read: float) -> ArrayEnergy:
    """Energy of reading ``crossbar`` with row voltages ``v`` (V; ``(rows,)`` or ``(batch, rows)``)
    for ``t_read`` s, from the exact circuit solution (any topology; module docstring)."""
    _check_crossbar(crossbar)
    t_read = check_real("t_read (s)", t_read, low=0.0, low_open=True)
    with torch.no_grad():
        sol = crossbar.full_solution(v)
        total = sol.power.to(torch.float64) * t_read
        cells = (sol.v_cell * sol.i_cell).sum((-2, -1)).to(torch.float64) * t_read
    return ArrayEnergy(total, cells, total - cells)


def row_admittance(crossbar: Crossbar, rows: int | None = None) -> Tensor:
    """The row admittance matrix ``Y`` (S, float64, symmetric) of a linear crossbar: the source
    currents of row voltages ``v`` are ``i_in = v @ Y``. ``rows``: only the first ``rows`` rows
    (the others driven at 0 V), ``Y`` is then ``(rows, rows)``."""
    _check_crossbar(crossbar)
    if not crossbar.is_linear:
        raise ValueError(f"the row admittance needs a linear crossbar; topology {crossbar.config.topology!r} with "
                         "these options is nonlinear: use array_energy (one solve per input)")
    n = crossbar.rows if rows is None else check_int("rows", rows, low=1, high=crossbar.rows)
    with torch.no_grad():
        eye = torch.eye(crossbar.rows, dtype=torch.float64, device=crossbar.torch_device)[:n]
        # the cell currents of the exact solution (Crossbar.full_solution without its KCL
        # residual check, which costs three times the solve itself)
        v, b, _ = crossbar._inputs(eye, None)
        i_cell = crossbar._cells_at(v, b, crossbar._g_param())[-1]
        return i_cell.sum(-1)[:, :n].to(torch.float64)


def quadratic_energy(v: Tensor, admittance: Tensor, t_read: float) -> Tensor:
    """``t_read · v Y vᵀ`` (J) for each row of ``v (batch, rows)`` (V) and admittance ``Y`` (S)."""
    t_read = check_real("t_read (s)", t_read, low=0.0, low_open=True)
    v = v.to(torch.float64)
    return ((v @ admittance) * v).sum(-1) * t_read
