"""``xbar sweep plan|run|status|report`` (registered by :func:`add_parser`).

* ``xbar sweep plan SPEC [--out DIR]`` — validate, print the expanded points and a cost estimate;
* ``xbar sweep run SPEC --out DIR [--workers N] [--scheduler ADDRESS] [--retry-failed]`` — run or
  resume the study (local process pool, default one worker per core or per GPU, or a Dask
  scheduler);
* ``xbar sweep status DIR`` — done / failed / pending counts and trained models;
* ``xbar sweep report DIR [--dest OUT]`` — table (CSV, Parquet), plots and ``report.md`` under
  ``DIR/report`` (or ``OUT``).

Errors are one line (``xbar: error: ...``, exit code 2), never a traceback: bad specs, unusable
or corrupt study directories and stores, unreachable schedulers, a study directory in use by
another run, impossible GPU placements. ``xbar sweep run`` exits with

* 0 — every point of the spec is done;
* 1 — the study is incomplete because points failed (kept; ``--retry-failed`` runs them again);
* 3 — the study is incomplete because points are pending (a worker died or the run stopped
  early; a plain re-run resumes them);
* 130 — interrupted (Ctrl-C); re-run the same command to resume.
"""
from __future__ import annotations

import argparse
import functools
import sqlite3
import sys
from pathlib import Path

EXIT_FAILED, EXIT_ERROR, EXIT_PENDING, EXIT_INTERRUPTED = 1, 2, 3, 130

SCHEDULER_HELP = ("Dask scheduler address (tcp://HOST:PORT) instead of local workers. A Dask scheduler and its "
                  "workers are TRUSTED CODE: results come back pickled and are unpickled here, so use only a "
                  "cluster you control. GPUs: one single-threaded worker per GPU, each with its own "
                  "CUDA_VISIBLE_DEVICES (and --resources GPU=1)")


def _error(message: str) -> int:
    print(f"xbar: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _guarded(func):
    """One line instead of a traceback for every expected failure of a sweep command."""
    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from .errors import Interrupted, SweepError

        try:
            return func(args)
        except Interrupted as exc:
            s = exc.summary
            print(f"xbar sweep: interrupted: {s['done']} point(s) done and {s['failed']} failed in this run, "
                  f"{s['pending']} pending; run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print("xbar sweep: interrupted; run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (SweepError, ValueError, OSError) as exc:
            return _error(_one_line(exc))
        except sqlite3.Error as exc:
            return _error(f"results database: {_one_line(exc)}")
    return wrapper


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return text


@_guarded
def _cmd_plan(args: argparse.Namespace) -> int:
    from .executors import check_workers, cpu_count
    from .plan import format_plan, plan

    workers = check_workers(args.workers) if args.workers is not None else cpu_count()
    if isinstance(args.show, int) and args.show < 0:
        raise ValueError(f"--show must be an integer >= 0, got {args.show}")
    print(format_plan(plan(args.spec, args.out), workers=max(workers, 1), show_points=args.show))
    return 0


def run_message(summary: dict, out) -> tuple[str, int]:
    """The closing line(s) of ``xbar sweep run`` and its exit code (module docstring)."""
    s = summary
    parts = [f"{s['points']} point(s)"]
    if s["done_before"]:
        parts.append(f"{s['done_before']} done earlier")
    if s["failed_before"]:
        parts.append(f"{s['failed_before']} failed earlier (kept; --retry-failed runs them again)")
    parts.append(f"{s['done']} done and {s['failed']} failed now, {s['trained']} model(s) trained")
    if s["resubmitted"]:
        parts.append(f"{s['resubmitted']} task(s) resubmitted after a worker died")
    lines = [", ".join(parts) + f", {s['elapsed_s']:.1f} s; results in {Path(out) / 'results.sqlite'}"]
    if "GPU" in s.get("placement", ""):
        lines[0] += f" ({s['placement']})"
    if s["complete"]:
        return lines[0], 0
    pending = f"{s['pending']} pending" + (f" ({s['lost']} lost to worker failures)" if s["lost"] else "")
    lines.append(f"study incomplete: {s['done_total']} of {s['points']} done, {s['failed_total']} failed, {pending}; "
                 + ("`xbar sweep run --retry-failed` runs the failed points again" if s["failed_total"] else
                    "run the same command again to resume"))
    return "\n".join(lines), EXIT_FAILED if s["failed_total"] else EXIT_PENDING


@_guarded
def _cmd_run(args: argparse.Namespace) -> int:
    from .execute import run

    summary = run(args.spec, args.out, workers=args.workers, scheduler=args.scheduler,
                  retry_failed=args.retry_failed, progress=not args.quiet)
    text, code = run_message(summary, args.out)
    print(text)
    return code


def status_text(out_dir) -> str:
    """Counts of a study directory against its latest spec (read only)."""
    from .report import study_keys
    from .store import Store

    with Store(out_dir, readonly=True) as store:
        spec, keys = study_keys(store)
        statuses = store.statuses()
        models = store.models()
    if keys is not None:
        statuses = {k: v for k, v in statuses.items() if k in keys}
        models = [m for m in models if m["train_key"] in {k for k in spec.by_train_key()}]
    done = sum(v == "done" for v in statuses.values())
    failed = sum(v == "failed" for v in statuses.values())
    total = len(keys) if keys is not None else len(statuses)
    pending = total - done - failed
    trained = sum(m["status"] == "done" for m in models)
    train_s = sum(m["train_s"] or 0.0 for m in models if m["status"] == "done")
    name = spec.name if spec else "study"
    state = "complete" if done == total else "incomplete"
    hint = ""
    if failed:
        hint = " (`xbar sweep run --retry-failed` runs the failed points again)"
    elif pending:
        hint = " (`xbar sweep run` resumes the pending points)"
    return (f"{name}: {total} point(s): {done} done, {failed} failed, {pending} pending — {state}{hint}; "
            f"{trained} model(s) trained ({_human_seconds(train_s)} of training over every session), "
            f"{sum(m['status'] == 'failed' for m in models)} failed training(s)")


def _human_seconds(seconds: float) -> str:
    from .units import human_duration

    return human_duration(seconds)


@_guarded
def _cmd_status(args: argparse.Namespace) -> int:
    from .errors import StoreError
    from .store import Store

    print(status_text(args.dir))
    try:  # damaged rows do not change the counts, but the report would stop on them: say so
        with Store(args.dir, readonly=True) as store:
            store.rows()
    except StoreError as exc:
        print(f"xbar sweep: warning: {exc}", file=sys.stderr)
    return 0


@_guarded
def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report

    print(report(args.dir, dest=args.dest))
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
    r = sub.add_parser("run", help="run or resume a study (exit 0: complete, 1: failed points, 3: pending points)")
    r.add_argument("spec", help="sweep spec (TOML)")
    r.add_argument("--out", required=True, help="study directory (results.sqlite, models/); one run at a time")
    r.add_argument("--workers", type=int, help="local worker processes (default: cores, or one per GPU when the run "
                                               "configs ask for a GPU; 0 = in this process)")
    r.add_argument("--scheduler", help=SCHEDULER_HELP)
    r.add_argument("--retry-failed", action="store_true", help="run the points that failed before again")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)
    s = sub.add_parser("status", help="done / failed / pending points of a study directory")
    s.add_argument("dir", help="study directory")
    s.set_defaults(func=_cmd_status)
    rep = sub.add_parser("report", help="table (CSV, Parquet), plots and report.md under DIR/report")
    rep.add_argument("dir", help="study directory (read only)")
    rep.add_argument("--dest", help="write the report here instead of DIR/report (e.g. for a read-only study)")
    rep.set_defaults(func=_cmd_report)
    return sweep
