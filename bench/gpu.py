"""GPU benchmark of the exact crossbar solver: one prepared script for a lent GPU machine.

Run from the repository root: ``PYTHONPATH=. python bench/gpu.py`` (needs torch, numpy, scipy;
no memxbar install, no PySpice, no numba needed). It prints one Markdown table with the CPU and the
GPU side by side and their agreement, then the training rows of ``bench/_gpu_training.py``
(``rows(device) -> list[dict]``) when that module exists. On a machine without CUDA it prints the
CPU rows and a "no GPU" line and exits 0. A few minutes in all on an H200.

Rows (issue 13 targets, float64, cells U(1, 100) uS, inputs U(0, 1) V, every segment and
driver/sense resistance ``r``; "fresh" = new conductances each repeat, so the time includes the
array's set-up):

* 256 x 256 single solve from fresh conductances, 0.1 and 1 Ohm: <= 3 ms (GPU, CUDA graphs on and off);
* 256 x 256 batch of 1024 inputs from fresh conductances: <= 20 ms (transfer matrix + matmul);
* 256 x 256 transfer matrix: <= 20 ms (block cyclic reduction on the GPU, the LAPACK sweep on CPU);
* 1024 x 1024 single solve, 1 Ohm: <= 20 ms;
* 4096 x 4096 single solve, 1 Ohm: <= 1 s within 20 GB (peak device memory is printed; no CPU run);
* agreement: max |I_gpu - I_cpu| / max |I_cpu| <= 1e-10.

The CPU column runs whatever ``backend="auto"`` picks there (the compiled numba kernels when numba
is installed, else the torch path on all CPU threads); the column header says which. Each time is
the best of a few repeats after a warm-up, with ``torch.cuda.synchronize()`` around GPU work.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbar import _cg_numba  # noqa: E402
from xbar.crossbar import Crossbar  # noqa: E402

F64 = torch.float64


def wires(r: float) -> dict:
    return dict(r_row=r, r_col=r, r_source=r, r_sense=r)


def cells(n: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return 1e-6 + 99e-6 * torch.rand(n, n, dtype=F64, generator=gen, device=device)


def inputs(batch: int, n: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.rand(batch, n, dtype=F64, generator=gen, device=device)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int):
    """Best wall time (s) of ``fn(k)`` over ``repeats`` calls after one warm-up call, and the last output."""
    out = fn(0)
    best = math.inf
    for k in range(1, repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        out = fn(k)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu(), b.detach().cpu()
    return float((a - b).abs().max() / b.abs().max())


# ------------------------------------------------------------------ the cases
def single_solve(n: int, r: float, **kw):
    """Fresh conductances each repeat (seed k), one input vector; returns the output of seed 0."""
    def run(device, repeats):
        def once(k):
            g = cells(n, 100 + k, device)
            return Crossbar(g, **wires(r), **kw).solve(inputs(1, n, 7, device)[0])
        t, _ = timed(once, device, repeats)
        return t, Crossbar(cells(n, 100, device), **wires(r), **kw).solve(inputs(1, n, 7, device)[0])
    return run


def batch_solve(n: int, batch: int, r: float):
    def run(device, repeats):
        v = inputs(batch, n, 8, device)
        t, _ = timed(lambda k: Crossbar(cells(n, 200 + k, device), **wires(r)).solve(v), device, repeats)
        return t, Crossbar(cells(n, 200, device), **wires(r)).solve(v)
    return run


def transfer(n: int, r: float):
    def run(device, repeats):
        t, _ = timed(lambda k: Crossbar(cells(n, 300 + k, device), **wires(r)).transfer_matrix(), device, repeats)
        return t, Crossbar(cells(n, 300, device), **wires(r)).transfer_matrix()
    return run


CASES = [  # (name, target, runner, cpu repeats, gpu repeats, run on CPU)
    ("256x256 single solve, fresh G, 0.1 Ohm", "<= 3 ms", single_solve(256, 0.1), 3, 10, True),
    ("256x256 single solve, fresh G, 1 Ohm", "<= 3 ms", single_solve(256, 1.0), 3, 10, True),
    ("256x256 batch 1024, fresh G, 1 Ohm", "<= 20 ms", batch_solve(256, 1024, 1.0), 1, 5, True),
    ("256x256 transfer matrix, 1 Ohm", "<= 20 ms", transfer(256, 1.0), 1, 5, True),
    ("1024x1024 single solve, fresh G, 1 Ohm", "<= 20 ms", single_solve(1024, 1.0), 1, 5, True),
    ("4096x4096 single solve, fresh G, 1 Ohm", "<= 1 s, <= 20 GB", single_solve(4096, 1.0), 0, 2, False),
]


def cpu_backend() -> str:
    if _cg_numba.available():
        return "CPU (compiled numba kernels, 1 thread)"
    return f"CPU (torch path, {torch.get_num_threads()} threads; numba not installed)"


def run_case(runner, device, repeats):
    try:
        return runner(device, repeats)
    except Exception as exc:  # one failing row must not end the script
        traceback.print_exc(limit=3)
        return f"error: {type(exc).__name__}: {exc}".splitlines()[0][:120], None


def fmt(t) -> str:
    if isinstance(t, str):
        return t
    return f"{t * 1e3:.2f} ms" if t < 1.0 else f"{t:.2f} s"


def graph_mode(n: int, r: float, device) -> str:
    """The CG mode a fresh solve ends up in on ``device`` ("cuda-graph" or "eager")."""
    xb = Crossbar(cells(n, 1, device), **wires(r))
    xb.solve(inputs(1, n, 7, device)[0])
    return getattr(xb._cache["linear"][1], "mode", "?")


def main() -> int:
    cuda = torch.cuda.is_available()
    if _cg_numba.available():
        torch.set_num_threads(1)
    print(f"memxbar GPU benchmark, torch {torch.__version__}, float64; load average {os.getloadavg()[0]:.2f}")
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(0)}; CPU beside it: {os.cpu_count()} cores")
    print()
    header = f"| case | target | {cpu_backend()} | GPU, CUDA graphs | GPU, eager | GPU/CPU agreement |"
    print(header)
    print("|---|---|---|---|---|---|")
    for name, target, runner, cpu_rep, gpu_rep, on_cpu in CASES:
        cpu_t, cpu_out = run_case(runner, "cpu", cpu_rep) if on_cpu else ("not run (minutes)", None)
        gpu_cols, agree, notes = ["", ""], "", ""
        if cuda:
            outs = []
            for k, graphs in enumerate((True, False)):
                torch.cuda.reset_peak_memory_stats()
                t, out = run_case(lambda d, rep: runner(d, rep) if graphs else
                                  _eager(runner)(d, rep), "cuda", gpu_rep)
                gpu_cols[k] = fmt(t)
                outs.append(out)
                if k == 0:
                    notes = f"peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
            if cpu_out is not None and outs[0] is not None:
                agree = f"{agreement(outs[0], cpu_out):.1e}"
            elif outs[0] is not None and outs[1] is not None:
                agree = f"graphs vs eager {agreement(outs[0], outs[1]):.1e}"
            gpu_cols[0] = f"{gpu_cols[0]} ({notes})"
        else:
            gpu_cols = ["no GPU", "no GPU"]
        print(f"| {name} | {target} | {fmt(cpu_t)} | {gpu_cols[0]} | {gpu_cols[1]} | {agree} |", flush=True)
    if not cuda:
        print("\nno GPU: torch.cuda.is_available() is False on this machine; only the CPU rows ran "
              "(the GPU columns and bench/_gpu_training.py need a CUDA device)")
        return 0
    print(f"\nCG mode of a fresh 256x256 solve on the GPU: {graph_mode(256, 1.0, 'cuda')}")
    training_rows()
    return 0


def _eager(runner):
    """``runner`` with CUDA graphs switched off (cuda_graphs=False on every Crossbar it builds)."""
    def run(device, repeats):
        orig = Crossbar.__init__

        def init(self, conductances, *, config=None, gate_enable=None, **options):
            options.setdefault("cuda_graphs", False)
            orig(self, conductances, config=config, gate_enable=gate_enable, **options)
        Crossbar.__init__ = init
        try:
            return runner(device, repeats)
        finally:
            Crossbar.__init__ = orig
    return run


def training_rows() -> None:
    path = Path(__file__).with_name("_gpu_training.py")
    if not path.exists():
        print("\nbench/_gpu_training.py not found: no training rows")
        return
    try:
        sys.path.insert(0, str(path.parent))
        import _gpu_training
        rows = _gpu_training.rows("cuda")
    except Exception as exc:
        traceback.print_exc(limit=3)
        print(f"\ntraining rows failed: {type(exc).__name__}: {exc}")
        return
    print("\n| training quantity | measured | target | ok |")
    print("|---|---|---|---|")
    for row in rows:
        ok = row.get("ok")
        print(f"| {row.get('quantity', '')} | {row.get('measured', row.get('error', ''))} | {row.get('target', '')} "
              f"| {'' if ok is None else ('yes' if ok else 'NO')} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
