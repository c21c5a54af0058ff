"""Run netlists in ngspice: PySpice's shared-library interface, with a batch-mode fallback.

Backends:

* ``"shared"`` — ``PySpice.Spice.NgSpice.Shared.NgSpiceShared`` (libngspice in-process); the
  vectors come back as float64 arrays at full precision. PySpice 1.5 looks for
  ``libngspice.so`` but Debian's ``libngspice0`` ships only ``libngspice.so.0``; memxbar points
  ``NGSPICE_LIBRARY_PATH`` at the real file (found with ``ldconfig -p``) before PySpice is
  imported, and silences PySpice's harmless "Unsupported Ngspice version" notice. libngspice
  is built with OpenMP and sets the process-wide OpenMP thread count when it sets a circuit up,
  which silently overrode ``torch.set_num_threads`` (measured: a 16×16 memxbar solve went from
  3.5 ms at 1 thread to 128 ms at the 2 spin-waiting threads ngspice left behind on a loaded
  2-core machine); the runner restores torch's thread count after every call.
* ``"batch"`` — ``ngspice -b`` in a temporary directory; results are written by ``wrdata``
  with 16 significant digits (``option numdgt=16``), so no precision is lost there either.
* ``"auto"`` (default) — shared if the library loads, otherwise batch.

A missing ngspice raises :class:`NgspiceNotFoundError`, whose message says how to install it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

INSTALL_HINT = ("install it with `apt-get install ngspice libngspice0` (Debian/Ubuntu, as root) "
                "or run `make setup`")

_LOCK = threading.Lock()
_SHARED = None


class NgspiceNotFoundError(RuntimeError):
    """ngspice (binary or shared library) is not available."""


class SpiceSimulationError(RuntimeError):
    """ngspice ran but reported an error or produced no result."""


@dataclass
class SpiceResult:
    """Vectors of one analysis: node voltages (V) by lower-case node name, source branch
    currents (A) as ``"<source>#branch"``, and ``"time"`` (s) for transients."""

    vectors: dict[str, np.ndarray]
    backend: str
    wall_time: float
    log: str = field(default="", repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        key = name.lower()
        if key not in self.vectors:
            raise KeyError(f"no vector {name!r} in the ngspice result (have {len(self.vectors)} vectors)")
        return self.vectors[key]


def find_libngspice() -> str | None:
    """Path of the ngspice shared library, or None."""
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env and Path(env).is_file():
        return env
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        m = re.search(r"libngspice\.so(\.\d+)*\s.*=>\s*(\S+)", line)
        if m and Path(m.group(2)).is_file():
            return m.group(2)
    for candidate in ("/usr/lib/x86_64-linux-gnu/libngspice.so.0", "/usr/lib/aarch64-linux-gnu/libngspice.so.0",
                      "/usr/lib/libngspice.so.0", "/usr/local/lib/libngspice.so"):
        if Path(candidate).is_file():
            return candidate
    return None


def _shared_instance():
    """The process-wide PySpice NgSpiceShared instance (libngspice is a process singleton)."""
    global _SHARED
    if _SHARED is not None:
        return _SHARED
    lib = find_libngspice()
    if lib is None:
        raise NgspiceNotFoundError(f"the ngspice shared library (libngspice) was not found; {INSTALL_HINT}")
    os.environ["NGSPICE_LIBRARY_PATH"] = lib
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared
    except ImportError as exc:  # pragma: no cover - PySpice is a core dependency
        raise NgspiceNotFoundError(f"PySpice is not installed ({exc}); run `make setup`") from exc
    try:
        _SHARED = NgSpiceShared.new_instance()
    except OSError as exc:
        raise NgspiceNotFoundError(f"could not load {lib}: {exc}; {INSTALL_HINT}") from exc
    return _SHARED


@contextlib.contextmanager
def _keep_torch_threads():
    """Restore torch's intra-op thread count after libngspice changed the OpenMP setting."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if torch is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _run_shared(netlist: str) -> SpiceResult:
    start = time.perf_counter()
    with _LOCK, _keep_torch_threads():
        ng = _shared_instance()
        ng.load_circuit(netlist)
        try:
            ng.run()
        except Exception as exc:  # noqa: BLE001 - PySpice raises NgSpiceCommandError
            stderr = "\n".join(getattr(ng, "_stderr", []) or [])
            ng.remove_circuit()
            raise SpiceSimulationError(f"ngspice failed: {exc}\n{stderr[-2000:]}") from exc
        stderr = "\n".join(getattr(ng, "_stderr", []) or [])
        plot_name = ng.last_plot
        if plot_name in (None, "", "const"):
            raise SpiceSimulationError(f"ngspice produced no result; its messages:\n{stderr[-2000:]}")
        plot = ng.plot(None, plot_name)
        vectors = {name.lower(): np.asarray(vec._data).real.astype(np.float64).copy() for name, vec in plot.items()}
        ng.destroy()
        ng.remove_circuit()
    return SpiceResult(vectors, "shared", time.perf_counter() - start, stderr)


_ANALYSIS_RE = re.compile(r"^\s*\.(op|tran|dc|ac)\b.*$", re.IGNORECASE | re.MULTILINE)


def _batch_netlist(netlist: str, out_file: str) -> str:
    """Move the analysis card into a .control block that writes every vector with wrdata."""
    analyses = [m.group(0).strip()[1:] for m in _ANALYSIS_RE.finditer(netlist)]
    if len(analyses) != 1:
        raise ValueError(f"netlist must contain exactly one analysis card (.op or .tran), found {len(analyses)}")
    body = _ANALYSIS_RE.sub("", netlist)
    body = re.sub(r"^\s*\.end\s*$", "", body, flags=re.IGNORECASE | re.MULTILINE).rstrip()
    control = ("\n.control\nset wr_singlescale\nset wr_vecnames\noption numdgt=16\n"
               f"{analyses[0]}\nwrdata {out_file} all\nquit\n.endc\n.end\n")
    return body + control


def _parse_wrdata(path: Path, transient: bool) -> dict[str, np.ndarray]:
    lines = path.read_text().splitlines()
    header = lines[0].split()
    data = np.loadtxt(lines[1:], ndmin=2)
    vectors: dict[str, np.ndarray] = {}
    for k, name in enumerate(header):
        if k == 0 and not transient:
            continue  # the operating point's scale column repeats the first vector
        vectors.setdefault(name.lower(), data[:, k].copy())
    return vectors


def _run_batch(netlist: str, binary: str) -> SpiceResult:
    exe = shutil.which(binary) if os.sep not in binary else (binary if Path(binary).is_file() else None)
    if exe is None:
        raise NgspiceNotFoundError(f"the ngspice binary {binary!r} was not found; {INSTALL_HINT}")
    transient = bool(re.search(r"^\s*\.tran\b", netlist, re.IGNORECASE | re.MULTILINE))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memxbar-ngspice-") as tmp:
        out = Path(tmp) / "vectors.txt"
        cir = Path(tmp) / "circuit.cir"
        cir.write_text(_batch_netlist(netlist, out.name))
        proc = subprocess.run([exe, "-b", cir.name], cwd=tmp, capture_output=True, text=True)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or not out.is_file():
            raise SpiceSimulationError(f"ngspice -b failed (exit {proc.returncode}):\n{log[-2000:]}")
        vectors = _parse_wrdata(out, transient)
    return SpiceResult(vectors, "batch", time.perf_counter() - start, log)


def run_netlist(netlist: str, *, backend: str = "auto", ngspice_binary: str = "ngspice") -> SpiceResult:
    """Simulate ``netlist`` (one ``.op`` or ``.tran`` card) and return its vectors.

    Args:
        backend: ``"auto"``, ``"shared"`` or ``"batch"``.
        ngspice_binary: the executable used by the batch backend (name on PATH or a path).
    Raises:
        NgspiceNotFoundError: ngspice is not installed (the message says how to install it).
        SpiceSimulationError: ngspice reported a failure.
    """
    if backend not in ("auto", "shared", "batch"):
        raise ValueError(f"backend must be 'auto', 'shared' or 'batch', got {backend!r}")
    if backend == "batch":
        return _run_batch(netlist, ngspice_binary)
    try:
        return _run_shared(netlist)
    except NgspiceNotFoundError:
        if backend == "shared":
            raise
        return _run_batch(netlist, ngspice_binary)
