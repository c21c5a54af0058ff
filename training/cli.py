"""The ``xbar`` command line.

Sub-commands:

* ``xbar report [--out DIR]`` — the package's main job: executes the report notebooks on the
  embedded defaults and writes their figures and the executed notebooks under ``DIR``.
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xbar", description="memxbar: memristive crossbars + SNNs")
    sub = parser.add_subparsers(dest="command", required=True)

    report = sub.add_parser("report", help="run the report notebooks and write their figures under --out")
    report.add_argument("--out", default="results", help="output directory (default: results)")
    report.add_argument("--notebook", action="append",
                        help="notebook file name under notebooks/ (repeatable; default: the report set)")
    report.add_argument("--timeout", type=float, default=1800.0, help="per-cell timeout in s (default 1800)")
    report.set_defaults(func=_cmd_report)

    from circuits.spice.cli import add_parser as add_spice_parser
    add_spice_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"xbar: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
