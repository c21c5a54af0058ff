"""``xbar sweep plan|run|status|report`` (registered by :func:`add_parser`).

* ``xbar sweep plan SPEC [--out DIR]`` — validate, print the expanded points and a cost estimate;
* ``xbar sweep run SPEC --out DIR [--workers N] [--scheduler ADDRESS] [--retry-failed]`` — run or
  resume the study (local process pool, default one worker per core, or a Dask scheduler);
* ``xbar sweep status DIR`` — done / failed / pending counts and trained models;
* ``xbar sweep report DIR`` — table (CSV, Parquet), plots and ``report.md`` under ``DIR/report``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def _cmd_plan(args: argparse.Namespace) -> int:
    from .plan import format_plan, plan

    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    print(format_plan(plan(args.spec, args.out), workers=max(workers, 1), show_points=args.show))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .execute import run

    summary = run(args.spec, args.out, workers=args.workers, scheduler=args.scheduler,
                  retry_failed=args.retry_failed, progress=not args.quiet)
    print(f"{summary['points']} point(s): {summary['skipped']} already finished, {summary['done']} done and "
          f"{summary['failed']} failed now, {summary['trained']} model(s) trained, "
          f"{summary['elapsed_s']:.1f} s; results in {Path(args.out) / 'results.sqlite'}")
    return 1 if summary["failed"] else 0


def status_text(out_dir) -> str:
    """Counts of a study directory against its latest spec."""
    from .report import study_keys
    from .store import Store

    with Store(out_dir, create=False) as store:
        spec, keys = study_keys(store)
        statuses = store.statuses()
        models = store.models()
    if keys is not None:
        statuses = {k: v for k, v in statuses.items() if k in keys}
    done = sum(v == "done" for v in statuses.values())
    failed = sum(v == "failed" for v in statuses.values())
    total = len(keys) if keys is not None else len(statuses)
    trained = sum(m["status"] == "done" for m in models)
    train_s = sum(m["train_s"] or 0.0 for m in models)
    name = spec.name if spec else "study"
    return (f"{name}: {total} point(s): {done} done, {failed} failed, {total - done - failed} pending; "
            f"{trained} model(s) trained ({train_s:.0f} s of training), "
            f"{sum(m['status'] == 'failed' for m in models)} failed training(s)")


def _cmd_status(args: argparse.Namespace) -> int:
    print(status_text(args.dir))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report

    print(report(args.dir))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sweep`` and its sub-commands to the ``xbar`` parser."""
    sweep = subparsers.add_parser("sweep", help="parameter studies from a TOML spec (plan, run, status, report)")
    sub = sweep.add_subparsers(dest="sweep_command", required=True)
    p = sub.add_parser("plan", help="validate a spec, print its points and a cost estimate")
    p.add_argument("spec", help="sweep spec (TOML)")
    p.add_argument("--out", help="study directory: leave out what is already finished there")
    p.add_argument("--workers", type=int, help="workers for the wall-time estimate (default: cores)")
    p.add_argument("--show", type=int, default=50, help="points to list (default 50)")
    p.set_defaults(func=_cmd_plan)
    r = sub.add_parser("run", help="run or resume a study")
    r.add_argument("spec", help="sweep spec (TOML)")
    r.add_argument("--out", required=True, help="study directory (results.sqlite, models/)")
    r.add_argument("--workers", type=int, help="local worker processes (default: cores; 0 = in this process)")
    r.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:PORT) instead of local workers")
    r.add_argument("--retry-failed", action="store_true", help="run the points that failed before again")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)
    s = sub.add_parser("status", help="done / failed / pending points of a study directory")
    s.add_argument("dir", help="study directory")
    s.set_defaults(func=_cmd_status)
    rep = sub.add_parser("report", help="table (CSV, Parquet), plots and report.md under DIR/report")
    rep.add_argument("dir", help="study directory")
    rep.set_defaults(func=_cmd_report)
    return sweep
