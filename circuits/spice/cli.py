"""``xbar spice`` sub-commands: export a random crossbar as a netlist, or validate it against ngspice.

* ``xbar spice export --rows 8 --cols 8 --seed 0 [--out FILE] [--dialect ngspice|xyce]`` — the
  netlist of one DC operating point (stdout without ``--out``; the file is written atomically);
* ``xbar spice validate --rows 8 --cols 8 [--tolerance T] [--json FILE]`` — memxbar vs ngspice;
  prints the :class:`~circuits.spice.validate.ValidationReport` summary and exits with 0 when
  it passed, 1 when it did not, 2 on bad arguments or a missing/failing ngspice.
* ``xbar spice validate-neuron --kind mif|oscillator [--amplitude A] [--t-stop T] [--waveform dc|pulses]
  [--json FILE]`` — a memristive neuron (torch) vs ngspice under a DC step or a pulse train of
  input current; prints the :class:`~circuits.spice.neuron_validate.NeuronValidationReport`
  summary, exit codes as for ``validate``;
* ``xbar spice validate-network [--seed S] [--current-gain G] [--v-gain G] [--v-swing V] [--json FILE]``
  — the default 4-input, 2-layer fully memristive network (crossbars → mirrors → MIF neurons →
  buffers → crossbars) vs ngspice (:func:`~circuits.spice.neuron_validate.validate_network`).

The array: conductances ``G_ij ~ U(g_min, g_max)`` (S) and inputs ``v_i ~ U(0, v_max)`` (V),
both drawn from ``torch.Generator().manual_seed(seed)`` (conductances first), so a seed always
gives the same circuit; wires ``r_row``/``r_col`` (Ω per segment), driver ``r_source`` and
sense ``r_sense`` (Ω), and the topology's access element (``--transistor``, ``--selector``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import torch

F64 = torch.float64


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _real(text: str, *, low: float | None = None, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a real number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    return value


def _nonneg(text: str) -> float:
    return _real(text, low=0.0)


def _positive(text: str) -> float:
    return _real(text, low=0.0, low_open=True)


def _tolerance(text: str) -> float:
    value = _positive(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a relative error in (0, 1), got {value:g}")
    return value


def _array_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``export`` and ``validate``: size, seed, electrical values (SI)."""
    p.add_argument("--rows", type=_positive_int, default=8, help="number of rows (>= 1, default 8)")
    p.add_argument("--cols", type=_positive_int, default=8, help="number of columns (>= 1, default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random conductances and inputs (default 0)")
    p.add_argument("--topology", choices=("0T1R", "1T1R", "1S1R"), default="0T1R", help="cell topology")
    p.add_argument("--transistor", choices=("linear", "ekv"), default="linear", help="1T1R access transistor")
    p.add_argument("--selector", choices=("sinh", "exp"), default="sinh", help="1S1R selector I-V")
    p.add_argument("--r-row", type=_nonneg, default=1.0, help="row wire resistance per segment, Ω (default 1)")
    p.add_argument("--r-col", type=_nonneg, default=1.0, help="column wire resistance per segment, Ω (default 1)")
    p.add_argument("--r-source", type=_nonneg, default=10.0, help="row driver resistance, Ω (default 10)")
    p.add_argument("--r-sense", type=_nonneg, default=10.0, help="column sense resistance, Ω (default 10)")
    p.add_argument("--g-min", type=_nonneg, default=1e-6, help="smallest cell conductance, S (default 1e-6)")
    p.add_argument("--g-max", type=_positive, default=100e-6, help="largest cell conductance, S (default 1e-4)")
    p.add_argument("--v-max", type=_nonneg, default=0.5, help="largest input voltage, V (default 0.5)")


def random_array(args: argparse.Namespace):
    """``(crossbar, v_in)`` of the parsed options: G ~ U(g_min, g_max) S, v ~ U(0, v_max) V."""
    from xbar import Crossbar

    if args.g_max < args.g_min:
        raise ValueError(f"--g-max must be >= --g-min ({args.g_min:g} S), got {args.g_max:g} S")
    gen = torch.Generator().manual_seed(args.seed)
    g = args.g_min + (args.g_max - args.g_min) * torch.rand(args.rows, args.cols, generator=gen, dtype=F64)
    v = args.v_max * torch.rand(args.rows, generator=gen, dtype=F64)
    xb = Crossbar(g, r_row=args.r_row, r_col=args.r_col, r_source=args.r_source, r_sense=args.r_sense,
                  topology=args.topology, transistor=args.transistor, selector=args.selector)
    return xb, v


def _cmd_export(args: argparse.Namespace) -> int:
    from .crossbar_export import export_crossbar

    xb, v = random_array(args)
    text = export_crossbar(xb, v, path=args.out, dialect=args.dialect)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.out} ({xb.rows}x{xb.cols} {xb.config.topology}, {args.dialect})")
    return 0


def _report(report, args: argparse.Namespace) -> int:
    """Print a validation report, write it (with the command's settings) to ``--json`` if
    given; exit code 0 if it passed, else 1."""
    from .crossbar_export import write_atomic

    print(report.summary())
    if args.json is not None:
        settings = {k: val for k, val in vars(args).items() if k not in ("func", "command", "spice_command")}
        write_atomic(args.json, json.dumps({"report": report.as_dict(), "settings": settings}, indent=2) + "\n")
    return 0 if report.passed else 1


def _run_validation(args: argparse.Namespace, run) -> int:
    """``_report`` of ``run()``; exit code 2 with the message when ngspice is missing or fails."""
    from .ngspice import NgspiceNotFoundError, SpiceSimulationError

    try:
        report = run()
    except (NgspiceNotFoundError, SpiceSimulationError) as exc:
        print(f"xbar spice {args.spice_command}: error: {exc}", file=sys.stderr)
        return 2
    return _report(report, args)


def _output_options(p: argparse.ArgumentParser) -> None:
    """``--json`` and ``--backend`` of every validation command."""
    p.add_argument("--json", default=None, help="also write the report as JSON to this file")
    p.add_argument("--backend", choices=("auto", "shared", "batch"), default="auto", help="ngspice backend")


def _transient_tolerances(p: argparse.ArgumentParser) -> None:
    """Pass criteria of the neuron and network transients."""
    p.add_argument("--spike-tolerance", type=_tolerance, default=0.01, help="spike-time error / window (0.01)")
    p.add_argument("--membrane-tolerance", type=_tolerance, default=0.01, help="membrane error / swing (0.01)")


def _cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate

    xb, v = random_array(args)
    return _run_validation(args, lambda: validate(xb, v, tolerance=args.tolerance, backend=args.backend,
                                                  ngspice_binary=args.ngspice))


#: ``validate-neuron`` defaults per kind: amplitude (A), window (s), waveform sample step (s)
_NEURON_DEFAULTS = {"mif": (20e-6, 100e-6, 1e-6), "oscillator": (200e-6, 10e-6, 0.1e-6)}


def neuron_waveform(args: argparse.Namespace):
    """``(i_in, dt)``: the input current samples (A) of ``validate-neuron``'s options.

    ``dc``: ``amplitude`` from t = 0; ``pulses``: ``amplitude`` for ``width`` s at the start of
    every ``period`` s (defaults ``t_stop/4`` and ``0.4 period``), 0 A in between.
    """
    amp, t_stop, dt = _NEURON_DEFAULTS[args.kind]
    amp = amp if args.amplitude is None else args.amplitude
    t_stop = t_stop if args.t_stop is None else args.t_stop
    dt = dt if args.dt is None else args.dt
    n = round(t_stop / dt)
    if n < 1 or abs(n * dt - t_stop) > 1e-9 * t_stop:
        raise ValueError(f"--t-stop must be a whole number of --dt steps (dt = {dt:g} s), got {t_stop:g} s")
    t = dt * torch.arange(n, dtype=F64)
    if args.waveform == "dc":
        return torch.full((n,), amp, dtype=F64), dt
    period = t_stop / 4 if args.period is None else args.period
    width = 0.4 * period if args.width is None else args.width
    if not width < period:
        raise ValueError(f"--width must be < --period ({period:g} s), got {width:g} s")
    on = torch.remainder(t + 0.5 * dt, period) < width
    return torch.where(on, torch.tensor(amp, dtype=F64), torch.tensor(0.0, dtype=F64)), dt


def _cmd_validate_neuron(args: argparse.Namespace) -> int:
    from .neuron_validate import validate_neuron

    i_in, dt = neuron_waveform(args)
    return _run_validation(args, lambda: validate_neuron(
        args.kind, i_in, dt, dt_sim=args.dt_sim, v0=args.v0, spike_tolerance=args.spike_tolerance,
        membrane_tolerance=args.membrane_tolerance, backend=args.backend))


def _cmd_validate_network(args: argparse.Namespace) -> int:
    from circuits.neurons.mif import MIFParameters

    from .neuron_validate import validate_network

    params = MIFParameters(v_low=args.v_low, v_high=args.v_high, v_knee=args.v_knee)
    return _run_validation(args, lambda: validate_network(
        seed=args.seed, params=params, current_gain=args.current_gain, v_gain=args.v_gain, v_swing=args.v_swing,
        spike_level=args.spike_level, spike_tolerance=args.spike_tolerance,
        membrane_tolerance=args.membrane_tolerance, backend=args.backend))


def _add_network_parser(sub) -> None:
    p = sub.add_parser("validate-network", help="compare a small fully memristive network (torch) with ngspice")
    p.add_argument("--seed", type=int, default=0, help="seed of the default network's conductances (default 0)")
    p.add_argument("--current-gain", type=_positive, default=1.0, help="mirror gain, column -> membrane (default 1)")
    p.add_argument("--v-gain", type=_positive, default=1.0, help="row buffer gain, membrane -> next rows (default 1)")
    p.add_argument("--v-swing", type=_positive, default=None,
                   help="row buffer output limit, V (tanh saturation; default: linear buffers)")
    p.add_argument("--v-low", type=_real, default=None, help="mirrors' lower compliance rail, V (default: none)")
    p.add_argument("--v-high", type=_real, default=None, help="mirrors' upper compliance rail, V (default: none)")
    p.add_argument("--v-knee", type=_positive, default=1e-4,
                   help="torch smoothing of the rails, V (default 1e-4: close to ngspice's stiff clamp)")
    p.add_argument("--spike-level", type=_real, default=0.1, help="spike-time threshold, V (default 0.1)")
    _transient_tolerances(p)
    _output_options(p)
    p.set_defaults(func=_cmd_validate_network)


def _add_neuron_parser(sub) -> None:
    p = sub.add_parser("validate-neuron", help="compare a memristive neuron (torch) with ngspice")
    p.add_argument("--kind", choices=("mif", "oscillator"), default="mif", help="neuron model (default mif)")
    p.add_argument("--amplitude", type=_real, default=None,
                   help="input current, A (default 20e-6 for mif, 200e-6 for oscillator)")
    p.add_argument("--t-stop", type=_positive, default=None, help="window, s (default 100e-6 mif, 10e-6 oscillator)")
    p.add_argument("--dt", type=_positive, default=None, help="waveform sample step, s (default 1e-6 / 0.1e-6)")
    p.add_argument("--waveform", choices=("dc", "pulses"), default="dc", help="DC step or pulse train (default dc)")
    p.add_argument("--period", type=_positive, default=None, help="pulse period, s (default t_stop/4)")
    p.add_argument("--width", type=_positive, default=None, help="pulse width, s (default 0.4 period)")
    p.add_argument("--dt-sim", type=_positive, default=None, help="torch step, dt/n (default 50 ns / 0.25 ns)")
    p.add_argument("--v0", type=_real, default=0.0, help="initial membrane voltage, V (default 0)")
    _transient_tolerances(p)
    _output_options(p)
    p.set_defaults(func=_cmd_validate_neuron)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``spice`` command (with ``export`` and ``validate``) to an argparse sub-parser set."""
    spice = subparsers.add_parser("spice", help="export crossbars as SPICE netlists / validate against ngspice")
    sub = spice.add_subparsers(dest="spice_command", required=True)

    export = sub.add_parser("export", help="write the netlist of a random crossbar's DC operating point")
    _array_options(export)
    export.add_argument("--out", default=None, help="output file (written atomically; default: stdout)")
    export.add_argument("--dialect", choices=("ngspice", "xyce"), default="ngspice", help="netlist dialect")
    export.set_defaults(func=_cmd_export)

    check = sub.add_parser("validate", help="compare memxbar with ngspice on a random crossbar")
    _array_options(check)
    check.add_argument("--tolerance", type=_tolerance, default=None,
                       help="largest relative error that passes (default 1e-8 linear, 1e-6 nonlinear)")
    _output_options(check)
    check.add_argument("--ngspice", default="ngspice", help="ngspice executable for the batch backend")
    check.set_defaults(func=_cmd_validate)
    _add_neuron_parser(sub)
    _add_network_parser(sub)
    return spice
