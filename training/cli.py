"""The ``xbar`` command line.

Sub-commands:

* ``xbar study [--out DIR] [--quick]`` — the package's main job: a small end-to-end
  hardware-aware training study (baseline vs hardware-aware Yin-Yang SNNs on PCM and RRAM
  crossbars, deployed and evaluated over drift time and time steps); report under ``DIR/study``.
* ``xbar train [--config run.toml] [--out DIR] [--no-resume]`` — one training run from a TOML
  config (:mod:`training.config`; without ``--config`` the embedded Yin-Yang default), resumable.
* ``xbar report [--out DIR]`` — executes the report notebooks and writes their figures.
* ``xbar spice export|validate`` — SPICE netlists of crossbars and validation against ngspice.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_report(args: argparse.Namespace) -> int:
    from training.report import run_report

    written = run_report(Path(args.out), notebooks=args.notebook or None, timeout=args.timeout)
    for path in written:
        print(path)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from training.config import RunConfig
    from training.loop import run

    config = RunConfig.from_toml(args.config) if args.config else RunConfig()
    out = Path(args.out) if args.out else Path("results") / config.name
    results = run(config, out, resume=not args.no_resume, progress=not args.quiet)
    last = results["history"][-1]
    print(f"{config.name}: {len(results['history'])} epochs, validation accuracy {last['val_accuracy']:.4f}; "
          f"results in {out}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from training.study import run_study

    report = run_study(Path(args.out), quick=args.quick, progress=not args.quiet)
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xbar", description="memxbar: memristive crossbars + SNNs")
    sub = parser.add_subparsers(dest="command", required=True)

    study = sub.add_parser("study", help="the main job: hardware-aware training study on the embedded default")
    study.add_argument("--out", default="results", help="output directory (default: results)")
    study.add_argument("--quick", action="store_true", help="2 epochs, 1 device seed (smoke test)")
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.set_defaults(func=_cmd_study)

    train = sub.add_parser("train", help="train, deploy and evaluate one SNN from a TOML config")
    train.add_argument("--config", help="run config (TOML); default: the embedded Yin-Yang run")
    train.add_argument("--out", help="output directory (default: results/<name>)")
    train.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)

    report = sub.add_parser("report", help="run the report notebooks and write their figures under --out")
    report.add_argument("--out", default="results", help="output directory (default: results)")
    report.add_argument("--notebook", action="append",
                        help="notebook file name under notebooks/ (repeatable; default: the report set)")
    report.add_argument("--timeout", type=float, default=1800.0, help="per-cell timeout in s (default 1800)")
    report.set_defaults(func=_cmd_report)

    from circuits.spice.cli import add_parser as add_spice_parser
    add_spice_parser(sub)
    from training.sweeps.cli import add_parser as add_sweep_parser
    add_sweep_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"xbar: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
