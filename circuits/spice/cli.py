"""``xbar spice`` sub-commands: export a crossbar as a netlist, or validate it against ngspice.

* ``xbar spice export [--rows R --cols C | --conductances G.npy|G.csv] [--preset FAMILY[:NAME]
  [--t-read S]] [--out FILE] [--dialect ngspice|xyce]`` — the netlist of one DC operating point
  (stdout without ``--out``; the file is written atomically). It prints the column currents when
  run on its own: ``ngspice -b FILE`` prints one line ``i_out_<j> = <A>`` per column (a
  ``.control`` block: ``op``, ``print``, ``quit``); ``--no-print`` leaves that block out;
* ``xbar spice validate [same array options] [--tolerance T] [--json FILE]`` — memxbar vs ngspice;
  prints the :class:`~circuits.spice.validate.ValidationReport` summary and exits with 0 when
  it passed, 1 when it did not, 2 on bad arguments or a missing/failing ngspice. ngspice's time
  grows steeply with the array: about 0.1 s at 32x32, 2.5 s at 64x64 and 70 s at 128x128 on an
  idle 2-core machine (several times that under load);
* ``xbar spice validate-neuron --kind mif|oscillator [--amplitude A] [--t-stop T] [--waveform dc|pulses]
  [--json FILE]`` — a memristive neuron (torch) vs ngspice under a DC step or a pulse train of
  input current; prints the :class:`~circuits.spice.neuron_validate.NeuronValidationReport`
  summary, exit codes as for ``validate``;
* ``xbar spice validate-network [--seed S] [--current-gain G] [--v-gain G] [--v-swing V] [--json FILE]``
  — the default 4-input, 2-layer fully memristive network (crossbars → mirrors → MIF neurons →
  buffers → crossbars) vs ngspice (:func:`~circuits.spice.neuron_validate.validate_network`).

The array (:mod:`circuits.spice.cli_arrays`): the user's conductances or ``G_ij ~ U(g_min,
g_max)`` (S), optionally programmed into a device preset and read ``--t-read`` s later; inputs
``--inputs FILE`` or ``v_i ~ U(0, v_max)`` (V); wires ``r_row``/``r_col`` (Ω per segment), driver
``r_source`` and sense ``r_sense`` (Ω) default to :class:`xbar.CrossbarConfig`'s values (1 Ω).

Every command estimates its cost first (:mod:`circuits.spice.cost`) and refuses work above 10
minutes or a netlist above 200 MB unless ``--force`` is given (then it shows a progress bar), and
checks that ``--out``/``--json`` can be written before any long work.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import torch

from devices.validation import SEED_MAX

from .cli_arrays import MEMORY_FAMILIES, crossbar_defaults

F64 = torch.float64
RUN_TIME_NOTE = ("ngspice's run time grows steeply with the array: about 0.1 s at 32x32, 2.5 s at 64x64 and 70 s "
                 "at 128x128 on an idle 2-core machine, several times that under load; arrays whose estimate "
                 "exceeds 10 min need --force")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63 - 1], got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63 - 1], got {value}")
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
    """Options shared by ``export`` and ``validate``: the array, electrical values (SI), --force."""
    d = crossbar_defaults()
    p.add_argument("--rows", type=_positive_int, default=None, help="number of rows (>= 1, default 8)")
    p.add_argument("--cols", type=_positive_int, default=None, help="number of columns (>= 1, default 8)")
    p.add_argument("--conductances", metavar="FILE", default=None,
                   help="the cell conductances, S: a (rows, cols) .npy or .csv file (default: random)")
    p.add_argument("--inputs", metavar="FILE", default=None,
                   help="the row input voltages, V: a .npy or .csv file, one per row (default: random)")
    p.add_argument("--preset", metavar="FAMILY[:NAME]", default=None,
                   help=f"program the conductances into a device preset ({', '.join(MEMORY_FAMILIES)}; e.g. "
                        "pcm:joshi2020_pcm) and use the conductances read --t-read s later")
    p.add_argument("--t-read", type=_nonneg, default=None, help="read time after programming, s (default 0)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random conductances and inputs (default 0)")
    p.add_argument("--topology", choices=("0T1R", "1T1R", "1S1R"), default=d["topology"], help="cell topology")
    p.add_argument("--transistor", choices=("linear", "ekv"), default=d["transistor"], help="1T1R access transistor")
    p.add_argument("--selector", choices=("sinh", "exp"), default=d["selector"], help="1S1R selector I-V")
    for name, what in (("r_row", "row wire resistance per segment"), ("r_col", "column wire resistance per segment"),
                       ("r_source", "row driver resistance"), ("r_sense", "column sense resistance")):
        p.add_argument("--" + name.replace("_", "-"), type=_nonneg, default=d[name],
                       help=f"{what}, Ω (default {d[name]:g}, as xbar.CrossbarConfig)")
    p.add_argument("--g-min", type=_nonneg, default=None,
                   help="smallest random conductance, S (default 1e-6, or the preset's g_min)")
    p.add_argument("--g-max", type=_positive, default=None,
                   help="largest random conductance, S (default 1e-4, or the preset's g_max)")
    p.add_argument("--v-max", type=_nonneg, default=0.5, help="largest random input voltage, V (default 0.5)")
    p.add_argument("--force", action="store_true",
                   help="run even when the estimated cost exceeds the budget (10 min, 200 MB netlist)")


def _bytes_per_cell(args: argparse.Namespace, dialect: str) -> float:
    """Netlist bytes per cell of the options' topology (from rendering 8x8 and 16x16 arrays)."""
    from xbar import Crossbar

    from .crossbar_export import export_crossbar

    sizes = []
    for n in (8, 16):
        xb = Crossbar(torch.full((n, n), 1e-5, dtype=F64), topology=args.topology, transistor=args.transistor,
                      selector=args.selector, r_row=args.r_row, r_col=args.r_col, r_source=args.r_source,
                      r_sense=args.r_sense)
        sizes.append(len(export_crossbar(xb, torch.full((n,), 0.1, dtype=F64), dialect=dialect)))
    return (sizes[1] - sizes[0]) / (256 - 64)


def _check_array_cost(args: argparse.Namespace, *, simulate: bool, dialect: str = "ngspice"):
    """The cost estimate of the command's array (raises ValueError when over budget)."""
    from .cli_arrays import array_shape
    from .cost import check_cost, crossbar_cost

    rows, cols = array_shape(args)
    linear = args.topology == "0T1R" or (args.topology == "1T1R" and args.transistor == "linear")
    cost = crossbar_cost(rows, cols, _bytes_per_cell(args, dialect), simulate=simulate, linear=linear)
    return check_cost(cost, force=args.force, hint="use a smaller array (--rows/--cols)")


def _progress(args: argparse.Namespace) -> bool | None:
    """Progress bars: off with --quiet, else on when stderr is a terminal."""
    return False if getattr(args, "quiet", False) else None


def _cmd_export(args: argparse.Namespace) -> int:
    from devices._io import check_writable

    from .cli_arrays import build_array
    from .crossbar_export import export_crossbar
    from .progress import elapsed_bar

    if args.out is not None:
        check_writable(args.out, "--out")
    cost = _check_array_cost(args, simulate=False, dialect=args.dialect)
    with elapsed_bar("building the netlist", estimate_s=cost.seconds, enable=_progress(args)):
        xb, v, source = build_array(args)
        text = export_crossbar(xb, v, path=args.out, dialect=args.dialect, print_currents=not args.no_print)
    if args.out is None:
        sys.stdout.write(text)
    else:
        run = f"; `ngspice -b {args.out}` prints i_out_0..i_out_{xb.cols - 1} (A)" \
            if args.dialect == "ngspice" and not args.no_print else ""
        print(f"wrote {args.out} ({xb.rows}x{xb.cols} {xb.config.topology}, {args.dialect}; {source}){run}")
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


def _check_json(args: argparse.Namespace) -> None:
    """``--json`` must be writable before any long work (one-line error otherwise)."""
    from devices._io import check_writable

    if args.json is not None:
        check_writable(args.json, "--json")


def _run_validation(args: argparse.Namespace, run, *, desc: str, estimate_s: float | None) -> int:
    """``_report`` of ``run()`` under a progress bar (call :func:`_check_json` first). A missing
    or failing ngspice raises (the ``xbar`` entry point prints one line, exit code 2)."""
    from .progress import elapsed_bar

    with elapsed_bar(desc, estimate_s=estimate_s, enable=_progress(args)):
        report = run()
    return _report(report, args)


def _output_options(p: argparse.ArgumentParser) -> None:
    """``--json``, ``--backend`` and ``--quiet`` of every validation command."""
    p.add_argument("--json", default=None, help="also write the report as JSON to this file")
    p.add_argument("--backend", choices=("auto", "shared", "batch"), default="auto", help="ngspice backend")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _transient_tolerances(p: argparse.ArgumentParser) -> None:
    """Pass criteria of the neuron and network transients."""
    p.add_argument("--spike-tolerance", type=_tolerance, default=0.01, help="spike-time error / window (0.01)")
    p.add_argument("--membrane-tolerance", type=_tolerance, default=0.01, help="membrane error / swing (0.01)")


def _cmd_validate(args: argparse.Namespace) -> int:
    from .cli_arrays import build_array
    from .validate import validate

    _check_json(args)
    cost = _check_array_cost(args, simulate=True)
    xb, v, _ = build_array(args)
    return _run_validation(args, lambda: validate(xb, v, tolerance=args.tolerance, backend=args.backend,
                                                  ngspice_binary=args.ngspice),
                           desc=f"ngspice {xb.rows}x{xb.cols}", estimate_s=cost.seconds)


#: ``validate-neuron`` defaults per kind: amplitude (A), window (s), waveform sample step (s)
_NEURON_DEFAULTS = {"mif": (20e-6, 100e-6, 1e-6), "oscillator": (200e-6, 10e-6, 0.1e-6)}


def _neuron_cost(args: argparse.Namespace, n: int, dt: float, t_stop: float):
    """Cost of ``validate-neuron`` (raises ValueError when over budget, before any allocation)."""
    from .cost import check_cost, transient_cost
    from .neuron_validate import DT_SIM_MIF, DT_SIM_OSCILLATOR, DT_SPICE_MIF, DT_SPICE_OSCILLATOR, _substeps

    mif = args.kind == "mif"
    substeps = _substeps(dt, args.dt_sim, DT_SIM_MIF if mif else DT_SIM_OSCILLATOR)
    step = min(DT_SPICE_MIF if mif else DT_SPICE_OSCILLATOR, dt)
    cost = transient_cost(f"validating the {args.kind} neuron over {t_stop:g} s ({n} samples x {substeps} torch steps)",
                          n, substeps, t_stop, step)
    return check_cost(cost, force=args.force, hint="use a shorter --t-stop or a larger --dt / --dt-sim")


def neuron_waveform(args: argparse.Namespace, *, with_cost: bool = False):
    """``(i_in, dt)``: the input current samples (A) of ``validate-neuron``'s options
    (``with_cost``: ``(i_in, dt, cost)``, the cost checked before the samples are allocated).

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
    cost = _neuron_cost(args, n, dt, t_stop) if with_cost else None
    t = dt * torch.arange(n, dtype=F64)
    if args.waveform == "dc":
        samples = torch.full((n,), amp, dtype=F64)
    else:
        period = t_stop / 4 if args.period is None else args.period
        width = 0.4 * period if args.width is None else args.width
        if not width < period:
            raise ValueError(f"--width must be < --period ({period:g} s), got {width:g} s")
        on = torch.remainder(t + 0.5 * dt, period) < width
        samples = torch.where(on, torch.tensor(amp, dtype=F64), torch.tensor(0.0, dtype=F64))
    return (samples, dt, cost) if with_cost else (samples, dt)


def _cmd_validate_neuron(args: argparse.Namespace) -> int:
    from .neuron_validate import validate_neuron

    _check_json(args)
    i_in, dt, cost = neuron_waveform(args, with_cost=True)
    return _run_validation(args, lambda: validate_neuron(
        args.kind, i_in, dt, dt_sim=args.dt_sim, v0=args.v0, spike_tolerance=args.spike_tolerance,
        membrane_tolerance=args.membrane_tolerance, backend=args.backend, max_torch_steps=None),  # cost checked
        desc=f"validating the {args.kind} neuron", estimate_s=cost.seconds)


def _cmd_validate_network(args: argparse.Namespace) -> int:
    from circuits.neurons.mif import MIFParameters

    from .neuron_validate import validate_network

    _check_json(args)
    params = MIFParameters(v_low=args.v_low, v_high=args.v_high, v_knee=args.v_knee)
    return _run_validation(args, lambda: validate_network(
        seed=args.seed, params=params, current_gain=args.current_gain, v_gain=args.v_gain, v_swing=args.v_swing,
        spike_level=args.spike_level, spike_tolerance=args.spike_tolerance,
        membrane_tolerance=args.membrane_tolerance, backend=args.backend),
        desc="validating the network", estimate_s=None)


def _add_network_parser(sub) -> None:
    p = sub.add_parser("validate-network", help="compare a small fully memristive network (torch) with ngspice")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the default network's conductances (default 0)")
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
    p = sub.add_parser("validate-neuron", help="compare a memristive neuron (torch) with ngspice",
                       description="Torch takes about 0.4 ms per step (t_stop/dt_sim steps) and ngspice about "
                                   "60 us per step; runs estimated above 10 min need --force.")
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
    p.add_argument("--force", action="store_true", help="run even when the estimated run time exceeds 10 min")
    _transient_tolerances(p)
    _output_options(p)
    p.set_defaults(func=_cmd_validate_neuron)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``spice`` command (export, validate, validate-neuron, validate-network) to an
    argparse sub-parser set."""
    spice = subparsers.add_parser("spice", help="export crossbars as SPICE netlists / validate against ngspice")
    sub = spice.add_subparsers(dest="spice_command", required=True)

    export = sub.add_parser(
        "export", help="write the netlist of a crossbar's DC operating point",
        description="Write the netlist of one DC operating point of a crossbar: random, the user's conductances "
                    "(--conductances) or a device preset read at --t-read. Run it with `ngspice -b FILE`: it prints "
                    "one line `i_out_<j> = <current in A>` per column (the current into column j's sense end), e.g. "
                    "`i_out_0 = 8.998480405543892e-06`; `ngspice -b FILE | grep '^i_out_'` keeps just those.")
    _array_options(export)
    export.add_argument("--out", default=None, help="output file (written atomically; default: stdout)")
    export.add_argument("--dialect", choices=("ngspice", "xyce"), default="ngspice", help="netlist dialect")
    export.add_argument("--no-print", action="store_true",
                        help="leave out the .control block that prints the column currents")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=_cmd_export)

    check = sub.add_parser("validate", help="compare memxbar with ngspice on a crossbar",
                           description=f"Compare memxbar's exact crossbar solution with ngspice's. {RUN_TIME_NOTE}.")
    _array_options(check)
    check.add_argument("--tolerance", type=_tolerance, default=None,
                       help="largest relative error that passes (default 1e-8 linear, 1e-6 nonlinear)")
    _output_options(check)
    check.add_argument("--ngspice", default="ngspice", help="ngspice executable for the batch backend")
    check.set_defaults(func=_cmd_validate)
    _add_neuron_parser(sub)
    _add_network_parser(sub)
    return spice
