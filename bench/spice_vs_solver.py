"""Benchmark: memxbar's crossbar solver vs ngspice on one DC operating point (prints a table).

Settings: 0T1R, r_row = r_col = 1 Ω, r_source = r_sense = 10 Ω, cells U(1, 100) µS, inputs
U(0, 0.5) V, seed 0, float64, ``torch.set_num_threads(--threads)`` (default 1: on a shared
2-core machine, 2 OpenMP threads that spin-wait while another job holds a core made the block
solver's many small factorisations ~80x slower, 2.3 s instead of 28 ms at 64×64). Per size:

* ngspice time — the simulation call of :func:`circuits.spice.run_netlist` (netlist parsing
  included, building the netlist text excluded), median of ``--spice-repeats`` runs (one run
  from 128×128 up: it takes about a minute);
* memxbar time — building the :class:`xbar.Crossbar` and ``full_solution``, median of
  ``--repeats`` runs;
* speed ratio = ngspice time / memxbar time;
* max relative errors ``max |x_memxbar − x_spice| / max |x_spice|`` of the column currents and
  of all row- and column-wire node voltages.

Usage: ``python bench/spice_vs_solver.py [--max-size 64] [--repeats 7] [--backend auto]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from circuits.spice import crossbar_netlist, run_netlist  # noqa: E402
from xbar import Crossbar  # noqa: E402

SIZES = (16, 32, 64, 128)
WIRES = dict(r_row=1.0, r_col=1.0, r_source=10.0, r_sense=10.0)


def problem(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells G ~ U(1, 100) µS (S) and inputs v ~ U(0, 0.5) V from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    g = 1e-6 + 99e-6 * torch.rand(n, n, generator=gen, dtype=torch.float64)
    v = 0.5 * torch.rand(n, generator=gen, dtype=torch.float64)
    return g, v


def spice_run(g: torch.Tensor, v: torch.Tensor, repeats: int, backend: str):
    """ngspice's (median time s, i_out, node voltages, backend)."""
    n_r, n_c = g.shape
    text = crossbar_netlist(Crossbar(g, **WIRES), v).render()
    times, res = [], None
    for _ in range(repeats):
        res = run_netlist(text, backend=backend)
        times.append(res.wall_time)
    i_out = np.array([res[f"vsense_{j}#branch"][0] for j in range(n_c)])
    nodes = np.array([res[f"{kind}_{i}_{j}"][0] for kind in ("row", "col") for i in range(n_r) for j in range(n_c)])
    return statistics.median(times), i_out, nodes, res.backend


def memxbar_run(g: torch.Tensor, v: torch.Tensor, repeats: int):
    """memxbar's (median time s incl. set-up, i_out, node voltages, method)."""
    times, sol = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        sol = Crossbar(g, **WIRES).full_solution(v.reshape(1, -1))
        times.append(time.perf_counter() - start)
    nodes = torch.cat([sol.v_row[0].reshape(-1), sol.v_col[0].reshape(-1)]).numpy()
    return statistics.median(times), sol.i_out[0].numpy(), nodes, sol.method


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-size", type=int, default=128, help="largest N of the N×N sizes 16, 32, 64, 128")
    parser.add_argument("--repeats", type=int, default=7, help="memxbar repeats (median)")
    parser.add_argument("--spice-repeats", type=int, default=3, help="ngspice repeats below 128×128 (median)")
    parser.add_argument("--backend", choices=("auto", "shared", "batch"), default="auto", help="ngspice backend")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for memxbar (default 1)")
    args = parser.parse_args(argv)
    if args.max_size < SIZES[0] or min(args.repeats, args.spice_repeats, args.threads) < 1:
        parser.error(f"--max-size must be >= {SIZES[0]}; --repeats, --spice-repeats and --threads >= 1")
    torch.set_num_threads(args.threads)
    print(f"0T1R, {WIRES} ohm, cells U(1, 100) uS, inputs U(0, 0.5) V, seed 0, float64, "
          f"threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"| {'array':>9} | {'ngspice':>11} | {'memxbar':>10} | {'ratio':>7} | {'rel.err I_out':>13} "
          f"| {'rel.err nodes':>13} | notes")
    print("|" + "-" * 11 + "|" + "-" * 13 + "|" + "-" * 12 + "|" + "-" * 9 + "|" + "-" * 15 + "|" + "-" * 15 + "|------")
    for n in (s for s in SIZES if s <= args.max_size):
        g, v = problem(n)
        t_sp, i_sp, n_sp, backend = spice_run(g, v, 1 if n >= 128 else args.spice_repeats, args.backend)
        t_mx, i_mx, n_mx, method = memxbar_run(g, v, args.repeats)
        print(f"| {n:>4}x{n:<4} | {t_sp:>9.3f} s | {t_mx * 1e3:>7.2f} ms | {t_sp / t_mx:>6.3g}x "
              f"| {rel_err(i_mx, i_sp):>13.2e} | {rel_err(n_mx, n_sp):>13.2e} | ngspice {backend}, memxbar {method}",
              flush=True)


if __name__ == "__main__":
    main()
