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

No user init file is ever read. At start-up ngspice sources its system ``spinit`` (from
``SPICE_LIB_DIR``/``SPICE_SCRIPTS`` or its install prefix) and then the first *user* init file
it finds: ``.spiceinit`` or ``spice.rc`` in ``$SPICE_USERINIT_DIR`` (the binary only), in the
**current directory**, in ``$HOME`` and in ``$USERPROFILE``. Such a file may hold ``shell``
commands, so validating inside a directory received from someone else would run them. Both
backends therefore start ngspice in a fresh, empty temporary directory with ``HOME``,
``USERPROFILE`` and ``SPICE_USERINIT_DIR`` pointing at it (:func:`clean_ngspice_environment`):
the shared library is loaded, and every command is sent, inside that sandbox (the
process-wide working directory and those variables are restored afterwards; the calls hold a
lock, but another thread of the same process that opens relative paths at that moment would
see the temporary directory), and ``ngspice -b`` additionally gets ``-n`` (no user init file).
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
#: environment variables through which ngspice finds a user init file (``.spiceinit``/``spice.rc``)
USER_INIT_VARIABLES = ("HOME", "USERPROFILE", "SPICE_USERINIT_DIR")


class NgspiceNotFoundError(RuntimeError):
    """ngspice (binary or shared library) is not available."""


class SpiceSimulationError(RuntimeError):
    """ngspice ran but reported an error or produced no result. The first line of the message
    says what failed (with ngspice's most telling error line); ngspice's log follows."""


#: ngspice log lines that say what failed, most telling first
_KEY_LINES = [re.compile(pattern, re.IGNORECASE) for pattern in (
    r"too small|singular|no convergence|not found|unknown|can't find|cannot", r"error", r"fail", r"abort")]


def simulation_error(headline: str, log: str) -> SpiceSimulationError:
    """A :class:`SpiceSimulationError` whose first line is ``headline`` plus ngspice's most
    telling failure line (e.g. ``doAnalyses: OP: Timestep too small; trouble with node ...``),
    followed by the log's last 2000 characters."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    key = next(([ln for ln in lines if pattern.search(ln)] for pattern in _KEY_LINES
                if any(pattern.search(ln) for ln in lines)), [])
    first = f"{headline}: {key[-1]}" if key else headline
    return SpiceSimulationError(f"{first}\n{log[-2000:]}" if log.strip() else first)


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


def clean_ngspice_environment(directory: str | os.PathLike) -> dict[str, str]:
    """A copy of ``os.environ`` in which every place ngspice looks for a user init file
    (:data:`USER_INIT_VARIABLES`) is the empty ``directory``."""
    env = dict(os.environ)
    env.update({name: str(directory) for name in USER_INIT_VARIABLES})
    return env


@contextlib.contextmanager
def _sandbox():
    """Run the body in a fresh empty directory with ``HOME``/``USERPROFILE``/``SPICE_USERINIT_DIR``
    pointing at it, so libngspice finds no ``.spiceinit``/``spice.rc``; restores the working
    directory and the variables afterwards (hold :data:`_LOCK`)."""
    try:
        saved_cwd = os.getcwd()
    except OSError:  # the working directory was removed: nothing to return to
        saved_cwd = None
    saved_env = {name: os.environ.get(name) for name in USER_INIT_VARIABLES}
    with tempfile.TemporaryDirectory(prefix="memxbar-ngspice-") as tmp:
        try:
            os.chdir(tmp)
            os.environ.update({name: tmp for name in USER_INIT_VARIABLES})
            yield tmp
        finally:
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if saved_cwd is not None:
                os.chdir(saved_cwd)


def _shared_instance():
    """The process-wide PySpice NgSpiceShared instance (libngspice is a process singleton);
    call inside :func:`_sandbox`, which is where ngspice looks for its init files."""
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


def _messages(ng) -> str:
    """ngspice's recent stdout and stderr lines (PySpice collects them per command)."""
    return "\n".join([*(getattr(ng, "_stdout", []) or []), *(getattr(ng, "_stderr", []) or [])])


def _run_shared(netlist: str) -> SpiceResult:
    start = time.perf_counter()
    with _LOCK, _keep_torch_threads(), _sandbox():
        ng = _shared_instance()
        try:
            ng.load_circuit(netlist)
        except Exception as exc:  # noqa: BLE001 - PySpice raises NgSpiceCircuitError / NameError
            raise simulation_error(f"ngspice could not load the netlist ({type(exc).__name__})", _messages(ng)) \
                from exc
        try:
            ng.run()
        except Exception as exc:  # noqa: BLE001 - PySpice raises NgSpiceCommandError
            stderr = "\n".join(getattr(ng, "_stderr", []) or [])
            ng.remove_circuit()
            raise simulation_error(f"ngspice failed ({exc})", stderr) from exc
        stderr = "\n".join(getattr(ng, "_stderr", []) or [])
        plot_name = ng.last_plot
        if plot_name in (None, "", "const"):
            raise simulation_error("ngspice produced no result", stderr)
        plot = ng.plot(None, plot_name)
        vectors = {name.lower(): np.asarray(vec._data).real.astype(np.float64).copy() for name, vec in plot.items()}
        ng.destroy()
        ng.remove_circuit()
    return SpiceResult(vectors, "shared", time.perf_counter() - start, stderr)


_CONTROL_RE = re.compile(r"^\s*\.control\b", re.IGNORECASE | re.MULTILINE)
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
        home = Path(tmp) / "home"  # empty: no user init file anywhere ngspice looks
        home.mkdir()
        proc = subprocess.run([exe, "-b", "-n", cir.name], cwd=tmp, capture_output=True, text=True,
                              env=clean_ngspice_environment(home))
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or not out.is_file():
            raise simulation_error(f"ngspice -b failed (exit {proc.returncode})", log)
        vectors = _parse_wrdata(out, transient)
    return SpiceResult(vectors, "batch", time.perf_counter() - start, log)


def run_netlist(netlist: str, *, backend: str = "auto", ngspice_binary: str = "ngspice") -> SpiceResult:
    """Simulate ``netlist`` (one ``.op`` or ``.tran`` card) and return its vectors.

    Args:
        backend: ``"auto"``, ``"shared"`` or ``"batch"``.
        ngspice_binary: the executable used by the batch backend (name on PATH or a path).
    Raises:
        ValueError: bad backend, or the netlist holds a ``.control`` block (refused: ngspice
            commands can run shell commands).
        NgspiceNotFoundError: ngspice is not installed (the message says how to install it).
        SpiceSimulationError: ngspice reported a failure.
    """
    if backend not in ("auto", "shared", "batch"):
        raise ValueError(f"backend must be 'auto', 'shared' or 'batch', got {backend!r}")
    if not isinstance(netlist, str):
        raise ValueError(f"netlist must be the netlist text (str), got {type(netlist).__name__}")
    if _CONTROL_RE.search(netlist):
        raise ValueError("netlist holds a .control block (ngspice commands, which can run shell commands): "
                         "run_netlist simulates plain netlists with one analysis card (export_crossbar(..., "
                         "print_currents=False) writes one)")
    if backend == "batch":
        return _run_batch(netlist, ngspice_binary)
    try:
        return _run_shared(netlist)
    except NgspiceNotFoundError:
        if backend == "shared":
            raise
        return _run_batch(netlist, ngspice_binary)
