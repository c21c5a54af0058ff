"""Benchmark of the exact crossbar solver, side by side with CrossSim (prints tables; nothing asserted).

Run: ``python bench/solver.py`` (about 2-3 minutes on 2 cores). Every solver runs on one thread
(``OMP_NUM_THREADS=1`` etc. are set before torch/numpy load; CrossSim runs in a subprocess with the
same settings). Settings: cells U(1, 100) uS, inputs U(0, 1) V, float64; wire segments
``r_row = r_col = r`` and driver/sense ``r_source = r_sense = r``.

CrossSim side by side: CrossSim 3.2 (Sandia) is not on PyPI; it is installed from its source into
a bench-only venv (``/work/peers/crosssim-venv``, see the shared peers-install notes) and run with
that venv's python, given by ``CROSSSIM_PYTHON`` (default ``/work/peers/crosssim-venv/bin/python``);
without it its columns are skipped with a note. Its array model ``NoninterleavedInputSourceArray``
is driven directly through ``iterative_solve`` (successive under-relaxation, ``Niters_max = 100``,
``Verr_th = 1e-3``, ``gamma`` starting at 1 and reduced 2 % per failed attempt, its defaults), on
the same conductances and inputs, passed as .npy files. Its parasitic model with zero terminal
resistance puts one wire segment between the driver and the first cell and between the last cell
and the sense node, which is memxbar's circuit with ``r_source = r_sense = r`` (checked: the two
agree to 8e-13 at ``Verr_th = 1e-12``). CrossSim's error is measured against memxbar's exact solution
(itself checked against the sparse-LU reference).

Timings are the best of several repeats, interleaved between the two tools so that machine load
affects both alike; the machine's load average is printed with the tables.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbar.crossbar import Crossbar  # noqa: E402

CROSSSIM_PYTHON = os.environ.get("CROSSSIM_PYTHON", "/work/peers/crosssim-venv/bin/python")

# Runs inside CrossSim's venv: argv = g.npy v.npy r repeats out.npy; prints {"time": s, "gamma": final}.
_CROSSSIM_DRIVER = r"""
import json, sys, time
from types import SimpleNamespace as NS
import numpy as np
from simulator.backend import ComputeBackend
ComputeBackend(use_gpu=False)
from simulator.parameters.core_parameters import CoreStyle
from simulator.circuits.array import NoninterleavedInputSourceArray
g, v = np.load(sys.argv[1]), np.load(sys.argv[2])
r, repeats = float(sys.argv[3]), int(sys.argv[4])
def array():
    parasitics = NS(Rp_row_norm=r, Rp_col_norm=r, Rp_row_terminal_norm=0.0, Rp_col_terminal_norm=0.0)
    params = NS(xbar=NS(array=NS(parasitics=parasitics), device=NS(nonlinear_IV=NS(enable=False))),
                simulation=NS(fast_matmul=True, Niters_max_parasitics=100, Verr_th_mvm=1e-3,
                              hide_convergence_msg=True, Verr_matmul_criterion="max_max", relaxation_gamma=1.0),
                core=NS(style=CoreStyle.OFFSET, balanced=NS(interleaved_posneg=False)))
    return NoninterleavedInputSourceArray(params)
best, out = float("inf"), None
for _ in range(repeats):
    a = array()
    t0 = time.perf_counter()
    out = a.iterative_solve(np.ascontiguousarray(g.T), v, row_in=True)  # CrossSim: (outputs, inputs)
    best = min(best, time.perf_counter() - t0)
np.save(sys.argv[5], out)
print(json.dumps({"time": best, "gamma": a.gamma}))
"""


def cells(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 1e-6 + 99e-6 * torch.rand(n, n, dtype=torch.float64, generator=gen)


def inputs(batch: int, n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def wires(r: float) -> dict:
    return dict(r_row=r, r_col=r, r_source=r, r_sense=r)


def best_of(fn, repeat: int):
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def rel_err(a, b) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).abs().max() / b.abs().max())


def fresh_solve(g, v, **kw):
    """One solve from fresh conductances: construct the array (validation, set-up) and solve."""
    xb = Crossbar(g, **kw)
    out = xb.solve(v)
    solver = xb._cache["linear"][1]
    return out, xb._cache["linear"][2], getattr(solver, "iterations", 0)


def crosssim(g: torch.Tensor, v: torch.Tensor, r: float, repeats: int):
    """``(seconds, output currents)`` of CrossSim's SUR solver, or None when its venv is missing."""
    if not Path(CROSSSIM_PYTHON).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ("g.npy", "v.npy", "out.npy")]
        np.save(paths[0], g.numpy())
        np.save(paths[1], v.numpy())
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        res = subprocess.run([CROSSSIM_PYTHON, "-c", _CROSSSIM_DRIVER, paths[0], paths[1], repr(r), str(repeats),
                              paths[2]], capture_output=True, text=True, env=env, timeout=1800)
        if res.returncode != 0:
            print(f"CrossSim failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            return None
        info = json.loads(res.stdout.strip().splitlines()[-1])
        return info["time"], torch.from_numpy(np.load(paths[2]))


def side_by_side() -> None:
    print("\n## Fresh 256x256 solve, memxbar vs CrossSim (CPU, 1 thread each)\n")
    if not Path(CROSSSIM_PYTHON).exists():
        print(f"CrossSim not found at {CROSSSIM_PYTHON} (set CROSSSIM_PYTHON): its columns are skipped\n")
    print("| r (Ohm) | memxbar | method, CG iterations | memxbar err vs LU | CrossSim SUR | CrossSim err | "
          "CrossSim / memxbar | target |")
    print("|---|---|---|---|---|---|---|---|")
    g, v = cells(256), inputs(1, 256)[0]
    for r, target, cs_repeats in ((0.1, "memxbar <= CrossSim", 3), (1.0, "CrossSim / memxbar >= 10", 1)):
        ref = Crossbar(g, method="direct", **wires(r)).solve(v)
        t_mx, (out, method, its) = math.inf, (None, "", 0)
        t_cs, cs_out = math.inf, None
        for _ in range(2):  # interleaved rounds
            t, res = best_of(lambda: fresh_solve(g, v, **wires(r)), 5)
            if t < t_mx:
                t_mx, (out, method, its) = t, res
            cs = crosssim(g, v, r, cs_repeats) if (cs_out is None or r < 1.0) else None
            if cs is not None and cs[0] < t_cs:
                t_cs, cs_out = cs
        if cs_out is None:
            cs_cols = "n/a | n/a | n/a"
        else:
            cs_cols = f"{t_cs * 1e3:.1f} ms | {rel_err(cs_out, out):.1e} | {t_cs / t_mx:.1f}x"
        print(f"| {r:g} | {t_mx * 1e3:.2f} ms | {method}, {its} | {rel_err(out, ref):.1e} | {cs_cols} | {target} |")


def targets() -> None:
    print("\n## memxbar CPU targets (1 thread)\n")
    print("| case | time | target | check |")
    print("|---|---|---|---|")
    g, v = cells(1024), inputs(1, 1024)[0]
    t, (out, method, its) = best_of(lambda: fresh_solve(g, v, **wires(1.0)), 2)
    sol = Crossbar(g, **wires(1.0)).full_solution(v)
    print(f"| 1024x1024 fresh solve, 1 Ohm ({method}, {its} CG iterations) | {t * 1e3:.0f} ms | <= 1 s | "
          f"KCL backward error {float(sol.kcl_residual.max()):.1e} |")

    g256 = cells(256)
    xb = Crossbar(g256, **wires(1.0))
    t_a, a = best_of(lambda: Crossbar(g256, **wires(1.0)).transfer_matrix(), 2)
    ref = Crossbar(g256, method="direct", **wires(1.0)).solve(torch.eye(256, dtype=torch.float64)[:16])
    print(f"| 256x256 transfer matrix (block sweep) | {t_a * 1e3:.0f} ms | | err vs LU {rel_err(a[:16], ref):.1e} |")
    xb.transfer_matrix()
    vb = inputs(1024, 256)
    t_exact, t_ideal = math.inf, math.inf
    for _ in range(30):  # interleaved, so that load hits both alike
        t_exact = min(t_exact, best_of(lambda: xb.solve(vb), 1)[0])
        t_ideal = min(t_ideal, best_of(lambda: vb @ g256, 1)[0])
    print(f"| 256x256 exact MVM, batch 1024, cached set-up | {t_exact * 1e3:.2f} ms | <= 1.5x ideal | "
          f"ideal v @ G {t_ideal * 1e3:.2f} ms, ratio {t_exact / t_ideal:.2f} |")


def scaling() -> None:
    print("\n## Scaling: one fresh solve, 1 Ohm, method auto\n")
    print("| array | cells | time | method | CG iterations | err vs LU | KCL backward error |")
    print("|---|---|---|---|---|---|---|")
    for n in (32, 64, 128, 256, 512, 1024):
        g, v = cells(n), inputs(1, n)[0]
        t, (out, method, its) = best_of(lambda: fresh_solve(g, v, **wires(1.0)), 3 if n <= 256 else 1)
        err = f"{rel_err(out, Crossbar(g, method='direct', **wires(1.0)).solve(v)):.1e}" if n <= 256 else "n/a"
        kcl = float(Crossbar(g, **wires(1.0)).full_solution(v).kcl_residual.max())
        print(f"| {n}x{n} | {n * n} | {t * 1e3:.1f} ms | {method} | {its} | {err} | {kcl:.1e} |")


def torch_path() -> None:
    """The code path CUDA runs (batched torch kernels, device-resident CG), here on the CPU."""
    print("\n## The torch (GPU) code path, run on this CPU\n")
    print("| case | time | CG iterations | kernels per CG iteration | err vs compiled CPU path |")
    print("|---|---|---|---|---|")
    for n, r in ((256, 0.1), (256, 1.0)):
        g, v = cells(n), inputs(1, n)[0]
        t, (out, _, its) = best_of(lambda: fresh_solve(g, v, method="cg", backend="torch", **wires(r)), 2)
        xb = Crossbar(g, method="cg", backend="torch", **wires(r))
        xb.solve(v)
        ops = xb._cache["linear"][1].ops_per_iteration()
        cpu = Crossbar(g, method="cg", backend="cpu", **wires(r)).solve(v)
        print(f"| {n}x{n}, {r:g} Ohm, one fresh solve | {t * 1e3:.1f} ms | {its} | {ops} | {rel_err(out, cpu):.1e} |")


def main() -> None:
    torch.set_num_threads(1)
    print(f"memxbar solver benchmark: cells U(1, 100) uS, inputs U(0, 1) V, float64, 1 thread; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    fresh_solve(cells(8), inputs(1, 8)[0], **wires(1.0))  # load the compiled kernels once
    side_by_side()
    targets()
    scaling()
    torch_path()
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
