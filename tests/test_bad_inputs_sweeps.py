"""Hostile inputs to every sweep entry point (issue 15): specs, axes, values, spec files, CLI
arguments, result stores and checkpoints.

Each case runs ``xbar sweep ...`` in-process and is classified as

* a clear error: a non-zero exit code and an ``error:`` message on stderr, without a traceback,
  that contains the expected fragment (the file, key or value at fault and what is wrong);
* handled: exit code 0 and a one-line note naming the file (corrupt checkpoints are moved aside
  and their model retrained);
* a traceback (an exception escaping the CLI) or a silent answer (exit 0 without a word): both
  are defects, and no case may end in one.

Malicious files must not run code: a checkpoint whose pickle calls ``os.system`` and a database
row holding a pickle are refused (weights-only loading; the store holds JSON only).
"""
import io
import os
import pickle
import shutil
import socket
import sqlite3
import traceback

import pytest
import torch

from test_sweeps import TINY
from training.cli import main
from training.sweeps import Store, load_spec, run

GROWN = TINY.replace('"deploy.t" = [1.0, 86400.0]', '"deploy.t" = [1.0, 86400.0, 3600.0]')
HEAD = TINY.split("[grid]")[0] + "[grid]\n"


def outcome(argv, capsys):
    """``(kind, exit code, stderr)`` of ``xbar ARGV`` (module docstring)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    except BaseException:
        return "traceback", None, traceback.format_exc()
    captured = capsys.readouterr()
    if "Traceback (most recent call last)" in captured.err:
        return "traceback", code, captured.err
    if code != 0:
        return ("error" if "error" in captured.err else "silent"), code, captured.err
    return ("handled" if captured.err.strip() else "silent"), code, captured.err


def expect_error(argv, fragment, capsys):
    kind, code, err = outcome(argv, capsys)
    assert kind == "error", f"{kind} (exit {code}): {err}"
    assert fragment in err, err


# ---------------------------------------------------------------------------- specs
BAD_SPECS = {
    "invalid TOML": ("[study\nname = 1", "invalid TOML"),
    "study name not a string": (TINY.replace('name = "tiny"', "name = 5"), "[study] name must be a non-empty string"),
    "study name with a path separator": (TINY.replace('name = "tiny"', 'name = "a/b"'), "without path separators"),
    "negative study seed": (TINY.replace('name = "tiny"', 'name = "tiny"\nseed = -5'), "[study] seed must be"),
    "unknown top-level table": (TINY + "\n[foo]\nx = 1\n", "unknown top-level key(s) ['foo']"),
    "unknown deploy axis": (HEAD + '"deploy.foo" = [1, 2]\n', "unknown deployment axis 'deploy.foo'"),
    "negative inference time": (HEAD + '"deploy.t" = [-1.0]\n', "deploy.t must be a finite inference time"),
    "inference time as text": (HEAD + '"deploy.t" = ["1 day"]\n', "deploy.t must be a finite inference time"),
    "NaN inference time": (HEAD + '"deploy.t" = [nan]\n', "deploy.t must be a finite inference time"),
    "infinite inference time": (HEAD + '"deploy.t" = [inf]\n', "deploy.t must be a finite inference time"),
    "ADC bits 0": (HEAD + '"deploy.adc_bits" = [0]\n', "deploy.adc_bits must be an integer in [1, 32]"),
    "ADC bits boolean": (HEAD + '"deploy.adc_bits" = [true]\n', "deploy.adc_bits must be an integer in [1, 32]"),
    "ADC bits as text": (HEAD + '"deploy.adc_bits" = ["8"]\n', "deploy.adc_bits must be an integer in [1, 32]"),
    "negative repeat": (HEAD + '"deploy.repeat" = [-1]\n', "deploy.repeat must be an integer"),
    "deploy mode spice": (TINY.replace('mode = "noisy"\n\n[grid]', 'mode = "spice"\n\n[grid]'),
                          "deploy.mode must be one of"),
    "string device parameter": (TINY.replace('"hardware.family" = ["pcm", "rram"]',
                                             '"hardware.family" = ["rram"]\n"hardware.device_params.read_noise" = '
                                             '["0.01"]'),
                                "'hardware.device_params.read_noise': '0.01'}: read_noise must be a real number"),
    "huge d2d sigma": (HEAD + '"hardware.device_params.d2d_sigma" = [1e308]\n', "d2d_sigma must be"),
    "negative wire resistance": (HEAD + '"hardware.crossbar.r_row" = [-1.0]\n', "r_row"),
    "zero tile rows": (HEAD + '"hardware.tile_rows" = [0]\n', "tile_rows must be an integer"),
    "float tile rows": (HEAD + '"hardware.tile_rows" = [1e9]\n', "tile_rows must be an integer"),
    "unknown device family": (HEAD + '"hardware.family" = ["unobtainium"]\n', "must be one of ['rram', 'pcm'"),
    "table as an axis value": (HEAD + '"hardware.family" = [{ a = 1 }]\n', "must be one of ['rram', 'pcm'"),
    "empty axis": (HEAD + '"hardware.family" = []\n', "must be a non-empty list of values"),
    "axis not a list": (HEAD + '"hardware.family" = "pcm"\n', "must be a non-empty list of values"),
    "negative replicate label": (HEAD + '"seed" = [-1]\n', "'seed' values must be integers >= 0"),
    "zero replicates": (TINY.replace('name = "tiny"', 'name = "tiny"\nreplicates = 0'), "replicates must be"),
    "a billion replicates": (TINY.replace('name = "tiny"', 'name = "tiny"\nreplicates = 1000000000'),
                             "replicates must be at most 10,000"),
    "a billion random samples": (TINY + '\n[random]\nsamples = 1000000000\n"hardware.device_params.d2d_sigma" = '
                                 "{ uniform = [0.0, 0.1] }\n", "samples must be an integer in [1, 10000]"),
    "float random samples": (TINY + '\n[random]\nsamples = 1e9\n"hardware.device_params.d2d_sigma" = '
                             "{ uniform = [0.0, 0.1] }\n", "samples must be an integer in [1, 10000]"),
    "NaN distribution bound": (TINY + '\n[random]\nsamples = 2\n"hardware.device_params.d2d_sigma" = '
                               "{ uniform = [0.0, nan] }\n", "uniform needs [low, high]"),
    "log-uniform from zero": (TINY + '\n[random]\nsamples = 2\n"hardware.crossbar.r_row" = '
                              "{ log_uniform = [0.0, 1.0] }\n", "log_uniform needs low > 0"),
    "empty choice": (TINY + '\n[random]\nsamples = 2\n"hardware.family" = { choice = [] }\n',
                     "choice needs a non-empty list"),
    "unequal zip": (TINY + '\n[zip]\n"hardware.crossbar.r_row" = [1.0, 2.0]\n"hardware.crossbar.r_col" = [1.0]\n',
                    "must have equal lengths"),
    "grid of 20736 points": (HEAD + "".join(f'"{a}" = [{", ".join(str(0.01 * (i + 1)) for i in range(12))}]\n'
                                            for a in ("hardware.crossbar.r_row", "hardware.crossbar.r_col",
                                                      "hardware.crossbar.r_source", "deploy.t")),
                             "the spec expands to 20,736 points, more than the 10,000"),
    "name axis": (HEAD + '"name" = ["a"]\n', "'name' cannot be swept"),
    "hardware seed axis": (HEAD + '"hardware.seed" = [1]\n', "'hardware.seed' cannot be swept"),
    "zero epochs": (TINY.replace("epochs = 1", "epochs = 0"), "epochs must be an integer"),
    "hidden as text": (TINY.replace("hidden = [8]", 'hidden = "8"'), "hidden"),
    "nested junk in base": (TINY + "\n[base.network.x.y]\nz = 1\n", "x"),
    "evaluate axis": (HEAD + '"evaluate.times" = [[1.0]]\n', "[evaluate] section is not used"),
    "100 kB family name": (HEAD + '"hardware.family" = ["' + "x" * 100_000 + '"]\n', "give an invalid config"),
}


@pytest.mark.parametrize("name", list(BAD_SPECS))
def test_bad_spec_is_one_clear_error(name, tmp_path, capsys):
    text, fragment = BAD_SPECS[name]
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    expect_error(["sweep", "plan", spec], fragment, capsys)
    expect_error(["sweep", "run", spec, "--out", tmp_path / "out", "--workers", "0", "--quiet"], fragment, capsys)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_huge_value_gives_a_short_message(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(BAD_SPECS["100 kB family name"][0])
    kind, _, err = outcome(["sweep", "plan", spec], capsys)
    assert kind == "error" and max(len(line) for line in err.splitlines()) < 700, err[:2000]


def test_unknown_deploy_axis_is_reported_once(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(HEAD + '"deploy.foo" = [1, 2]\n')
    kind, _, err = outcome(["sweep", "plan", spec], capsys)
    assert kind == "error" and err.count("deploy.foo") == 1, err


SPEC_FILES = {
    "binary file": (lambda p: p.write_bytes(bytes(range(256)) * 4), "is not UTF-8 text (byte 0x80 at offset 128)"),
    "NUL bytes": (lambda p: p.write_bytes(b"[study]\0name = 1\n"), "invalid TOML"),
    "directory": (lambda p: p.mkdir(), "is a directory, not a spec file"),
    "missing file": (lambda p: None, "sweep spec not found"),
    "5 MB file": (lambda p: p.write_bytes(b"#" * (5 * 1024 * 1024)), "a spec is a small TOML text"),
}


@pytest.mark.parametrize("name", list(SPEC_FILES))
def test_bad_spec_file_names_the_file(name, tmp_path, capsys):
    make, fragment = SPEC_FILES[name]
    path = tmp_path / "spec.toml"
    make(path)
    expect_error(["sweep", "plan", path], fragment, capsys)
    kind, _, err = outcome(["sweep", "plan", path], capsys)
    assert str(path) in err


def test_plan_of_a_study_directory_points_to_its_spec(tmp_path, capsys):
    (tmp_path / "spec.toml").write_text(TINY)
    expect_error(["sweep", "plan", tmp_path], f"is a directory, not a spec file (a TOML file); its spec is "
                 f"{tmp_path / 'spec.toml'}", capsys)


# ---------------------------------------------------------------------------- CLI arguments
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CLI_ARGS = {
    "negative workers": (["--workers", "-1"], "workers must be an integer in [0,"),
    "a million workers": (["--workers", "1000000"], "workers must be an integer in [0,"),
    "workers not a number": (["--workers", "abc"], "invalid int value: 'abc'"),
    "empty scheduler": (["--scheduler", ""], "scheduler must be a Dask scheduler address"),
    "garbage scheduler": (["--scheduler", "garbage:xx"], "is not a Dask scheduler address"),
    "closed scheduler port": (["--scheduler", "tcp://127.0.0.1:{port}"], "Connection refused"),
    "out is a file": (["--out", "{file}"], "is a file, not a directory"),
    "out under /proc": (["--out", "/proc/memxbar-sweep-study"], "cannot create the study directory"),
}


@pytest.mark.parametrize("name", list(CLI_ARGS))
def test_bad_cli_arguments(name, tmp_path, capsys):
    if "scheduler" in name:
        pytest.importorskip("distributed")
    extra, fragment = CLI_ARGS[name]
    spec = tmp_path / "s.toml"
    spec.write_text(TINY)
    afile = tmp_path / "a_file"
    afile.write_text("x")
    extra = [a.format(port=_closed_port(), file=afile) for a in extra]
    argv = ["sweep", "run", spec, "--workers", "0", "--quiet", "--out", tmp_path / "out", *extra]
    expect_error(argv, fragment, capsys)


def test_bad_plan_and_missing_arguments(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(TINY)
    expect_error(["sweep", "plan", spec, "--show", "-1"], "--show must be an integer >= 0", capsys)
    expect_error(["sweep", "run", spec], "the following arguments are required: --out", capsys)
    expect_error(["sweep", "status", tmp_path / "nothing"], "no sweep results in", capsys)
    expect_error(["sweep", "report", tmp_path / "nothing"], "no sweep results in", capsys)
    expect_error(["sweep", "status", spec], "is a file, not a directory", capsys)


# ---------------------------------------------------------------------------- stores
@pytest.fixture
def study(tmp_path):
    """A study directory with a valid store (points recorded without training)."""
    out = tmp_path / "study"
    spec = load_spec(TINY)
    with Store(out) as store:
        store.set_meta("spec_text", spec.source)
        for p in spec.points:
            store.record_point(p, status="done", metrics={"accuracy": 0.5, "ideal_accuracy": 0.5,
                                                          "accuracy_drop": 0.0}, timings={}, versions={})
    (out / "spec.toml").write_text(TINY)
    return out


def _garbage(db):
    db.write_bytes(os.urandom(4096))


def _truncate(db):
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def _empty(db):
    db.write_bytes(b"")


def _schema(db):
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE points (a, b)")


def _sql(statement):
    def corrupt(db):
        with sqlite3.connect(db) as conn:
            conn.execute(statement)
    return corrupt


def _directory(db):
    db.unlink()
    db.mkdir()


#: (corruption, fragment of the message, status outcome): a damaged row does not stop `status`
#: (it counts points) but it warns in one line; `report` (which reads every row) stops
BAD_STORES = {
    "garbage bytes": (_garbage, "not an SQLite database", "error"),
    "truncated": (_truncate, "results.sqlite", "error"),
    "empty file": (_empty, "is not a sweep results database: it has no table 'points'", "error"),
    "another schema": (_schema, "table 'points' lacks column(s) ['key', 'train_key'", "error"),
    "bad JSON in metrics": (_sql("UPDATE points SET metrics = '{\"accuracy\": 0.5,' WHERE rowid = 1"),
                            "column 'metrics' holds invalid JSON", "handled"),
    "metrics not an object": (_sql("UPDATE points SET metrics = '[1, 2]' WHERE rowid = 1"),
                              "column 'metrics' must hold a JSON object", "handled"),
    "pickle in a row": (_sql("UPDATE points SET metrics = "  # pickle.dumps of os.system
                             "X'80049514000000000000008c05706f736978948c0673797374656d9493942e' WHERE rowid = 1"),
                        "column 'metrics' holds invalid JSON", "handled"),
    "bad JSON in meta": (_sql("UPDATE meta SET value = 'not json' WHERE key = 'spec_text'"),
                         "meta row 'spec_text': column 'value' holds invalid JSON", "error"),
    "database is a directory": (_directory, "is not a file", "error"),
}


@pytest.mark.parametrize("name", list(BAD_STORES))
def test_corrupt_store_is_one_line_naming_the_file(name, study, capsys):
    corrupt, fragment, status_kind = BAD_STORES[name]
    db = study / "results.sqlite"
    for leftover in study.glob("results.sqlite-*"):
        leftover.unlink()
    corrupt(db)
    for argv, expected in ((["sweep", "status", study], status_kind), (["sweep", "report", study], "error")):
        kind, code, err = outcome(argv, capsys)
        assert kind == expected, f"{argv[1]}: {kind} (exit {code}): {err}"
        assert fragment in err and str(db) in err and len(err.strip().splitlines()) == 1, err
        if name == "bad JSON in metrics" and argv[1] == "report":
            assert "points row '" in err  # the row's key


# ---------------------------------------------------------------------------- checkpoints
MARKER = "memxbar_malicious_checkpoint_ran"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(marker) -> bytes:
    buf = io.BytesIO()
    torch.save({"config": {}, "model": {}, "x": _Evil(marker)}, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    run(TINY, out, workers=0, progress=False)
    return out


BAD_CHECKPOINTS = {
    "empty": (lambda path, data, marker: b"", "is empty (0 bytes)"),
    "truncated": (lambda path, data, marker: data[: len(data) // 2], "cannot be loaded (truncated or corrupt)"),
    "garbage": (lambda path, data, marker: os.urandom(len(data)), "is not a torch checkpoint (not a zip archive"),
    "plain pickle": (lambda path, data, marker: pickle.dumps({"config": {}}), "is not a torch checkpoint"),
    "malicious pickle": (lambda path, data, marker: _evil_checkpoint(marker), "was refused by the weights-only loader"),
    "another model's checkpoint": (None, "holds another configuration than the model it stands for"),
}


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_bad_final_checkpoint_is_named_and_the_model_retrained(name, trained, tmp_path, capsys):
    out = tmp_path / "study"
    shutil.copytree(trained, out)
    make, fragment = BAD_CHECKPOINTS[name]
    finals = sorted((out / "models").glob("*/checkpoints/epoch_0001.pt"))
    marker = tmp_path / MARKER
    data = finals[1].read_bytes() if make is None else make(finals[0], finals[0].read_bytes(), marker)
    finals[0].write_bytes(data)
    spec = tmp_path / "grown.toml"
    spec.write_text(GROWN)
    kind, code, err = outcome(["sweep", "run", spec, "--out", out, "--workers", "0", "--quiet"], capsys)
    assert kind == "handled" and code == 0, err
    assert f"checkpoint {finals[0]} " in err and fragment in err and f"retraining model {finals[0].parts[-3]}" in err
    assert not marker.exists(), "a malicious checkpoint ran code"
    assert finals[0].with_name("epoch_0001.pt.corrupt").read_bytes() == data
    with Store(out, readonly=True) as store:
        assert {r["status"] for r in store.rows()} == {"done"} and len(store.rows()) == 6


def test_malicious_resume_checkpoint_sent_to_a_worker_runs_no_code(tmp_path):
    """The Dask path sends checkpoint bytes to a worker: refused weights-only, no code runs."""
    from training.sweeps.workers import train_task

    marker = tmp_path / MARKER
    config = load_spec(TINY).points[0].train
    result = train_task(config, None, ("epoch_0001.pt", _evil_checkpoint(marker)))
    assert result["ok"]  # the refused checkpoint was set aside; the model trained from scratch
    assert any("refused by the weights-only loader" in note for note in result["notes"])
    assert not marker.exists()
