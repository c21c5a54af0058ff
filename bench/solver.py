"""Benchmark of the exact crossbar solver (prints a table; nothing is asserted).

Settings: r_row = r_col = 1 Ohm, r_source = r_sense = 1 Ohm, cells U(1, 100) uS, inputs
U(0, 1) V, float64, ``torch.set_num_threads(2)``. Accuracy = max |I - I_direct| / max |I_direct|
against the scipy sparse-LU reference solve (``method="direct"``) where affordable.
"""
from __future__ import annotations

import resource
import sys
import math
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbar.crossbar import Crossbar  # noqa: E402

R = dict(r_row=1.0, r_col=1.0, r_source=1.0, r_sense=1.0)


def cells(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (1e-6 + 99e-6 * torch.rand(n, n, dtype=torch.float64, generator=gen))


def inputs(batch: int, n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def rel_err(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def reference(g, v):
    return Crossbar(g, method="direct", **R).solve(v)


def row(name, t, target, acc="", extra=""):
    print(f"| {name:<44} | {t * 1e3:>10.1f} ms | {target:<10} | {acc:<9} | {extra}")


def main() -> None:
    torch.set_num_threads(2)
    print(f"settings: {R}, cells U(1, 100) uS, inputs U(0, 1) V, float64, threads={torch.get_num_threads()}")
    print(f"| {'case':<44} | {'time':>13} | {'target':<10} | {'rel. err':<9} | notes")
    print("|" + "-" * 46 + "|" + "-" * 15 + "|" + "-" * 12 + "|" + "-" * 11 + "|------")
    g128, v128 = cells(128), inputs(1, 128)
    ref128 = reference(g128, v128)
    print(f"machine load average (1 min) at start: {__import__('os').getloadavg()[0]:.2f} on 2 cores")
    for method in ("auto", "block", "cg"):
        t, out = timed(lambda: Crossbar(g128, method=method, **R).solve(v128), repeat=5)
        row(f"128x128 one solve incl. set-up ({method})", t, "<= 50 ms", f"{rel_err(out, ref128):.1e}")
    t, _ = timed(lambda: reference(g128, v128), repeat=2)
    row("128x128 one solve, scipy sparse LU reference", t, "", "0")

    g256 = cells(256)
    t, a = timed(lambda: Crossbar(g256, **R).transfer_matrix(), repeat=2)
    eye = torch.eye(256, dtype=torch.float64)
    t_ref, a_ref = timed(lambda: reference(g256, eye[:16]))
    row("256x256 transfer matrix (block)", t, "<= 1 s", f"{rel_err(a[:16], a_ref):.1e}")

    xb = Crossbar(g256, **R)
    xb.transfer_matrix()
    v = inputs(4 * 256, 256)
    # interleaved repeats, so that machine load hits both alike; the minimum of each
    t_exact, t_ideal = math.inf, math.inf
    for _ in range(30):
        t_exact = min(t_exact, timed(lambda: xb.solve(v), repeat=1)[0])
        t_ideal = min(t_ideal, timed(lambda: v @ g256, repeat=1)[0])
    row("256x256 exact MVM, batch 1024 (cached A)", t_exact, "<= 2x ideal", "",
        f"ideal v@G {t_ideal * 1e3:.2f} ms, ratio {t_exact / t_ideal:.2f}")

    print("\nscaling (one solve incl. set-up, method auto):")
    print(f"| {'array':<10} | {'cells':>9} | {'time':>10} | {'method':<6} | {'rel. err vs LU':<14} | peak RSS")
    for n in (32, 64, 128, 256, 512, 1024):
        g, vv = cells(n), inputs(1, n)
        xb = Crossbar(g, **R)
        t, sol = timed(lambda: xb.full_solution(vv) if not xb._cache.clear() else None)
        err = f"{rel_err(sol.i_out, reference(g, vv)):.1e}" if n <= 256 else "n/a"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        target = " (target <= 10 s, <= 4 GB)" if n == 1024 else ""
        print(f"| {n}x{n:<6} | {n * n:>9} | {t:>8.3f} s | {sol.method:<6} | {err:<14} | {rss:.2f} GB "
              f"(kcl {float(sol.kcl_residual.max()):.1e}){target}")


if __name__ == "__main__":
    main()
