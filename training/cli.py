"""The ``xbar`` command line.

Sub-commands:

* ``xbar study [--out DIR] [--quick]`` — the package's main job: a small end-to-end
  hardware-aware training study (baseline vs hardware-aware Yin-Yang SNNs on PCM and RRAM
  crossbars, deployed and evaluated over drift time and time steps); report under ``DIR/study``.
* ``xbar train [--config run.toml] [--out DIR] [--epochs N] [--quick] [--no-resume]`` — one
  training run from a TOML config (:mod:`training.config`; without ``--config`` the embedded
  Yin-Yang default), resumable; ends with the deployed accuracy (also with ``--quiet``).
* ``xbar report [--out DIR]`` — executes the report notebooks and writes their figures.
* ``xbar spice export|validate|validate-neuron|validate-network`` — SPICE netlists of crossbars
  and validation against ngspice (:mod:`circuits.spice.cli`).
* ``xbar sweep ...`` — robustness sweeps (:mod:`training.sweeps.cli`).

Errors: every bad input, unreadable or unwritable file, missing ngspice or failed simulation
ends the command with **one line** ``xbar: error: ...`` on stderr and exit code 2 (argparse's
usage errors too); warnings are one line ``xbar: warning: ...``. ``MEMXBAR_DEBUG=1`` shows the
full traceback instead. Anything else that escapes is an internal bug and keeps its traceback.
Ctrl-C ends with exit code 130 (resumable commands continue where they stopped when rerun).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

DEBUG_VARIABLE = "MEMXBAR_DEBUG"
#: ``xbar train --quick``: a smoke run (minutes on a busy 2-core machine; numbers not meaningful)
QUICK_EPOCHS, QUICK_REPEATS = 2, 1


class XbarArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``xbar: error: ... (see `xbar train --help`)``)."""

    def error(self, message: str):
        message = " ".join(str(message).split())
        self.exit(2, f"xbar: error: {message} (see `{self.prog} --help`)\n")


def _debug() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (the rest, e.g. ngspice's log, with MEMXBAR_DEBUG=1)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    more = f" ({DEBUG_VARIABLE}=1 shows the details)" if len(lines) > 1 else ""
    return lines[0] + more


@contextlib.contextmanager
def _one_line_warnings():
    """Show warnings as ``xbar: warning: ...`` lines while a command runs."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"xbar: warning: {text}", file=sys.stderr if file is None else file)

    if not _debug():
        warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _cmd_report(args: argparse.Namespace) -> int:
    from devices._io import check_writable
    from training.report import run_report

    check_writable(args.out, "--out", directory=True)
    written = run_report(Path(args.out), notebooks=args.notebook or None, timeout=args.timeout,
                         progress=not args.quiet)
    for path in written:
        print(path)
    return 0


def train_config(args: argparse.Namespace):
    """The run config of ``xbar train``'s options: ``--config`` (or the embedded default),
    ``--epochs`` and ``--quick`` (2 epochs, 1 device seed, name suffix ``_quick``)."""
    from training.config import RunConfig

    config = RunConfig.from_toml(args.config) if args.config else RunConfig()
    values = config.to_dict()
    if args.quick:
        values["name"] = f"{config.name}_quick"
        values["train"]["epochs"] = min(QUICK_EPOCHS, config.train.epochs)
        values["evaluate"]["repeats"] = QUICK_REPEATS
    if args.epochs is not None:
        values["train"]["epochs"] = args.epochs
    if getattr(args, "device", None) is not None:
        values["device"] = args.device
    return RunConfig.from_dict(values) if values != config.to_dict() else config


def deployed_summary(results: dict) -> list[str]:
    """Lines with the deployed test accuracy (mean over device seeds) per mode and read time,
    on the training family, at the trained number of time steps; and the ideal accuracy."""
    from training.evaluate import summarise

    cfg = results["config"]
    family, steps = cfg["hardware"]["family"], cfg["network"]["time_steps"]
    rows = results["evaluation"]
    ideal = [r["accuracy"] for r in rows if r["mode"] == "ideal" and r["time_steps"] == steps]
    times = sorted({r["t"] for r in rows if r.get("sweep") == "time" and r["family"] == family})
    lines = []
    if ideal:
        lines.append(f"  ideal (no hardware): {100 * ideal[0]:.1f} %")
    labels = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "1 month", 31536000.0: "1 year"}
    for mode in ("noisy", "circuit"):
        cells = []
        for t in times:
            mean, std, n = summarise(rows, mode=mode, family=family, t=t, sweep="time")
            if n:
                spread = f" ± {100 * std:.1f}" if n > 1 else ""
                cells.append(f"{labels.get(t, f'{t:g} s')} {100 * mean:.1f} %{spread}")
        if cells:
            seeds = max(summarise(rows, mode=mode, family=family, t=t, sweep="time")[2] for t in times)
            lines.append(f"  deployed on {family}, {mode} ({seeds} device seed{'s' if seeds > 1 else ''}): "
                         + ", ".join(cells))
    energy = results.get("energy")
    if energy and "energy_per_inference_J" in energy:
        parts = [f"{energy['energy_per_inference_J'] * 1e9:.3g} nJ per inference"]
        if "latency_per_step_s" in energy:
            parts.append(f"{energy['latency_per_step_s'] * 1e9:.3g} ns per time step")
        if "spikes_per_inference" in energy:
            parts.append(f"{energy['spikes_per_inference']:.3g} spikes per inference")
        lines.append(f"  energy ({energy.get('mode', '?')}, t = {energy.get('t', 0):g} s): " + ", ".join(parts))
    return lines


def _cmd_train(args: argparse.Namespace) -> int:
    from devices._io import check_writable
    from training.loop import run

    config = train_config(args)
    out = Path(args.out) if args.out else Path("results") / config.name
    check_writable(out, "--out", directory=True)
    start = time.perf_counter()
    results = run(config, out, resume=not args.no_resume, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    last = results["history"][-1]
    print(f"{config.name}: {len(results['history'])} epochs, validation accuracy {last['val_accuracy']:.4f}; "
          f"test accuracy (deployed, read at t after programming):")
    for line in deployed_summary(results):
        print(line)
    print(f"results in {out} ({elapsed:.0f} s on {results.get('device', 'cpu')})")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from devices._io import check_writable
    from training.study import run_study

    check_writable(args.out, "--out", directory=True)
    report = run_study(Path(args.out), quick=args.quick, progress=not args.quiet)
    print(report)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _positive_real(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = XbarArgumentParser(prog="xbar", description="memxbar: memristive crossbars + SNNs",
                                epilog=f"Errors are one line; {DEBUG_VARIABLE}=1 shows tracebacks.")
    sub = parser.add_subparsers(dest="command", required=True)

    study = sub.add_parser("study", help="the main job: hardware-aware training study on the embedded default")
    study.add_argument("--out", default="results", help="output directory (default: results)")
    study.add_argument("--quick", action="store_true", help="2 epochs, 1 device seed (smoke test)")
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.set_defaults(func=_cmd_study)

    train = sub.add_parser(
        "train", help="train, deploy and evaluate one SNN from a TOML config",
        description="Train, deploy and evaluate one SNN; ends with the deployed test accuracy. The README example "
                    "(training/configs/yin_yang_pcm_hwa.toml: 30 epochs, 3 device seeds, noisy and circuit "
                    "evaluation) took 2.5-4 min on a 2-core machine busy with other jobs; --quick 20-30 s.")
    train.add_argument("--config", help="run config (TOML); default: the embedded Yin-Yang run")
    train.add_argument("--out", help="output directory (default: results/<name>)")
    train.add_argument("--epochs", type=_positive_int, default=None, help="override [train] epochs")
    train.add_argument("--quick", action="store_true",
                       help=f"smoke run: {QUICK_EPOCHS} epochs, {QUICK_REPEATS} device seed, name <name>_quick "
                            "(numbers not meaningful)")
    train.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bars (the final summary is printed)")
    train.add_argument("--device", default=None,
                       help='override the config\'s device: "auto" (CUDA if available, else CPU; recorded in '
                            'results.json), "cpu", "cuda" or "cuda:N"; "cuda" without a GPU is an error')
    train.set_defaults(func=_cmd_train)

    report = sub.add_parser("report", help="run the report notebooks and write their figures under --out")
    report.add_argument("--out", default="results", help="output directory (default: results)")
    report.add_argument("--notebook", action="append",
                        help="notebook file name under notebooks/ (repeatable; default: the report set)")
    report.add_argument("--timeout", type=_positive_real, default=1800.0, help="per-cell timeout in s (default 1800)")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    report.set_defaults(func=_cmd_report)

    from circuits.spice.cli import add_parser as add_spice_parser
    add_spice_parser(sub)
    from training.sweeps.cli import add_parser as add_sweep_parser
    add_sweep_parser(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input or environment (one line, exit 2), not a bug."""
    from circuits.spice.ngspice import NgspiceNotFoundError, SpiceSimulationError

    return (ValueError, OSError, NgspiceNotFoundError, SpiceSimulationError, FloatingPointError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with _one_line_warnings():
        try:
            return args.func(args)
        except BrokenPipeError:  # `xbar spice export | head`: the reader left; not an error of ours
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except KeyboardInterrupt:
            if _debug():
                raise
            print("xbar: interrupted (resumable commands continue where they stopped when run again)",
                  file=sys.stderr)
            return 130
        except _user_errors() as exc:
            if _debug():
                raise
            print(f"xbar: error: {one_line(exc)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
