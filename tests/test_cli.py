"""The ``xbar`` entry point: one-line errors with exit code 2, tracebacks only behind
MEMXBAR_DEBUG=1, writability checked before long work, Ctrl-C, progress helpers (issue 15/16)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices._io import atomic_write_bytes, check_writable
from training import cli
from training.cli import main

REPO = Path(__file__).resolve().parent.parent
#: a directory even root cannot create files in (sysfs refuses new files)
UNWRITABLE = Path("/sys/memxbar-test")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("xbar: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ argparse errors: one line, exit 2
@pytest.mark.parametrize("argv, needle", [
    (["train", "--epochs", "0"], "--epochs: must be an integer >= 1, got 0"),
    (["train", "--epochs", "two"], "--epochs: must be an integer >= 1, got 'two'"),
    (["spice", "export", "--rows", "-3"], "--rows: must be an integer >= 1"),
    (["spice", "validate", "--seed", "-1"], "--seed: must be an integer in [0, 2**63 - 1]"),
    (["report", "--timeout", "nan"], "--timeout: must be a number of seconds > 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required"),
])
def test_usage_errors_are_one_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = one_error_line(capsys)
    assert needle in line and "--help" in line


# ------------------------------------------------------------------ runtime errors: one line, exit 2
def test_runtime_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = '..'\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "name must be a plain directory name" in one_error_line(capsys)
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in one_error_line(capsys)
    monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    with pytest.raises(ValueError, match="name must be"):
        main(["train", "--config", str(bad), "--out", str(tmp_path / "out")])


def test_multi_line_errors_are_cut_to_their_first_line(capsys, monkeypatch):
    from circuits.spice.ngspice import SpiceSimulationError

    def failing(args):
        raise SpiceSimulationError("ngspice failed (run): Timestep too small\nline 2 of the log\nline 3")

    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    monkeypatch.setattr(cli, "_cmd_study", failing)
    assert main(["study"]) == 2
    line = one_error_line(capsys)
    assert "Timestep too small" in line and "MEMXBAR_DEBUG=1" in line and "line 2" not in line


def test_internal_bugs_keep_their_traceback(monkeypatch):
    def buggy(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_cmd_study", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["study"])


def test_ctrl_c_ends_with_exit_code_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    monkeypatch.setattr(cli, "_cmd_study", interrupted)
    assert main(["study"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_installed_entry_point_prints_one_line_without_traceback(tmp_path):
    """The real process: stderr is exactly one line, exit code 2 (no traceback)."""
    env = {k: v for k, v in os.environ.items() if k != cli.DEBUG_VARIABLE} | {"PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "training.cli", "spice", "export", "--rows", "2",
                           "--conductances", str(tmp_path / "nope.npy")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["xbar: error: --conductances: file not found: "
                                                f"{tmp_path / 'nope.npy'}"]


# ------------------------------------------------------------------ unwritable outputs, checked first
@pytest.mark.parametrize("argv", [
    ["spice", "export", "--rows", "2", "--out", str(UNWRITABLE / "a.cir")],
    ["spice", "validate", "--rows", "2", "--json", str(UNWRITABLE / "r.json")],
    ["spice", "validate-neuron", "--json", str(UNWRITABLE / "r.json")],
    ["spice", "validate-network", "--json", str(UNWRITABLE / "r.json")],
    ["train", "--out", str(UNWRITABLE / "run")],
    ["study", "--out", str(UNWRITABLE)],
    ["report", "--out", str(UNWRITABLE)],
])
def test_unwritable_outputs_fail_at_once_with_one_line(argv, capsys, monkeypatch):
    if not Path("/sys").is_dir():
        pytest.skip("needs Linux sysfs (a directory nobody can create files in)")
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < 5.0  # before any simulation or training
    assert "is not writable" in one_error_line(capsys)


def test_check_writable(tmp_path):
    target = tmp_path / "new" / "deeper" / "file.json"
    assert check_writable(target) == target and not (tmp_path / "new").exists()  # nothing created
    assert check_writable(tmp_path / "dir", directory=True) == tmp_path / "dir"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        check_writable(afile / "out.json", "--json")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        check_writable(afile, "--out", directory=True)
    with pytest.raises(ValueError, match="must be a file name"):
        check_writable(tmp_path, "--json")
    with pytest.raises(ValueError, match="must be a path"):
        check_writable(3, "--json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the probe files are gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory (the /sys case covers root)")
def test_check_writable_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            check_writable(ro / "out.json", "--out")
    finally:
        ro.chmod(0o755)


def test_permission_error_during_a_write_is_one_line(tmp_path, capsys, monkeypatch):
    """A write that fails after the check (disk full, permissions changed) is still one line."""
    import circuits.spice.crossbar_export as export

    def denied(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    monkeypatch.setattr(export, "write_atomic", denied)
    assert main(["spice", "export", "--rows", "2", "--out", str(tmp_path / "a.cir")]) == 2
    assert "Permission denied" in one_error_line(capsys)


def test_atomic_write_api_is_kept(tmp_path):
    path = atomic_write_bytes(tmp_path / "x" / "y.bin", b"abc")
    assert path.read_bytes() == b"abc"


# ------------------------------------------------------------------ report: notebook names
@pytest.mark.parametrize("name", ["../README.md", "/etc/passwd.ipynb", "sub/01_devices.ipynb", "nope.ipynb",
                                  ".hidden.ipynb"])
def test_report_refuses_notebooks_outside_notebooks_dir(name, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    assert main(["report", "--out", str(tmp_path), "--notebook", name]) == 2
    assert "notebook" in one_error_line(capsys)


# ------------------------------------------------------------------ progress helper
def test_elapsed_bar_counts_time_and_stops(capsys):
    from circuits.spice.progress import elapsed_bar

    with elapsed_bar("work", estimate_s=10.0, enable=True, interval=0.05) as bar:
        time.sleep(0.3)
        assert 0.1 < bar.n < 10.0
    err = capsys.readouterr().err
    assert "work:" in err and "(estimate)" in err
    with elapsed_bar("quiet", enable=False) as bar:
        time.sleep(0.1)
    assert "quiet" not in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # the bar is closed and the error passes through
        with elapsed_bar("boom", estimate_s=1.0, enable=True):
            raise RuntimeError("x")
